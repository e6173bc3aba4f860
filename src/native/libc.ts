// koffi bindings to the libc calls procsnap needs; the only file that loads libc.
// Every wrapper returns the raw result and leaves errno to `lastErrno()`.
import koffi from 'koffi'

const libc = koffi.load('libc.so.6')

/** errno of the last libc call made on this thread through koffi. */
export function lastErrno(): number {
  return koffi.errno()
}

type Int = number
type Word = number | bigint

interface Libc {
  ptraceWord(request: Int, pid: Int, addr: Word, data: Word): Word
  ptraceBuf(request: Int, pid: Int, addr: Word, data: Uint8Array): Word
  waitpid(pid: Int, status: Int32Array, options: Int): Int
  kill(pid: Int, sig: Int): Int
  tgkill(tgid: Int, tid: Int, sig: Int): Int
  sched_yield(): Int
  poll(fds: Uint8Array, nfds: Int, timeout: Int): Int
  sched_setaffinity(pid: Int, size: Int, mask: Uint8Array): Int
  sched_getaffinity(pid: Int, size: Int, mask: Uint8Array): Int
  personality(persona: Int): Int
  pipe2(fds: Int32Array, flags: Int): Int
  close(fd: Int): Int
  write(fd: Int, buf: Uint8Array, n: Int): Int
  /** fcntl with an int argument (F_SETPIPE_SZ); variadic in C, an int is passed the same way on x86_64 and aarch64. */
  fcntl(fd: Int, cmd: Int, arg: Int): Int
  open(path: string, flags: Int, mode: Int): Int
  pread64(fd: Int, buf: Uint8Array, n: Word, off: Word): Word
  lseek(fd: Int, offset: Word, whence: Int): Word
  getdents64(fd: Int, buf: Uint8Array, n: Word): Word
  readlinkat(dirfd: Int, path: string, buf: Uint8Array, n: Word): Word
  pwrite64(fd: Int, buf: Uint8Array, n: Word, off: Word): Word
  memfd_create(name: string, flags: Int): Int
  posix_spawn(
    pid: Int32Array,
    path: string,
    fa: Uint8Array,
    attr: Uint8Array,
    argv: (string | null)[],
    envp: (string | null)[],
  ): Int
  posix_spawn_file_actions_init(fa: Uint8Array): Int
  posix_spawn_file_actions_destroy(fa: Uint8Array): Int
  posix_spawn_file_actions_adddup2(fa: Uint8Array, fd: Int, newfd: Int): Int
  posix_spawn_file_actions_addopen(fa: Uint8Array, fd: Int, path: string, flags: Int, mode: Int): Int
  posix_spawn_file_actions_addchdir_np(fa: Uint8Array, path: string): Int
  posix_spawnattr_init(attr: Uint8Array): Int
  posix_spawnattr_destroy(attr: Uint8Array): Int
  posix_spawnattr_setflags(attr: Uint8Array, flags: Int): Int
  posix_spawnattr_setpgroup(attr: Uint8Array, pgroup: Int): Int
  posix_spawnattr_setsigdefault(attr: Uint8Array, set: Uint8Array): Int
  posix_spawnattr_setsigmask(attr: Uint8Array, set: Uint8Array): Int
  sigfillset(set: Uint8Array): Int
  sigemptyset(set: Uint8Array): Int
  process_vm_readv(pid: Int, local: Uint8Array, liovcnt: Int, remote: Uint8Array, riovcnt: Int, flags: Int): Word
  strerror(errnum: Int): string
  sched_getcpu(): Int
  madvise(addr: Word, length: Word, advice: Int): Int
  /** Returns an opaque koffi pointer (MAP_FAILED is address ~0). */
  mmap(addr: null, length: Word, prot: Int, flags: Int, fd: Int, offset: Word): unknown
  mprotect(addr: unknown, length: Word, prot: Int): Int
  munmap(addr: unknown, length: Word): Int
  memcpy(dst: unknown, src: Uint8Array, n: Word): unknown
  posix_openpt(flags: Int): Int
  grantpt(fd: Int): Int
  unlockpt(fd: Int): Int
  ptsname_r(fd: Int, buf: Uint8Array, len: Int): Int
  tcgetattr(fd: Int, termios: Uint8Array): Int
  tcsetattr(fd: Int, when: Int, termios: Uint8Array): Int
  cfmakeraw(termios: Uint8Array): void
  /** ioctl with a pointer argument (variadic in C; a pointer is passed the same way on x86_64 and aarch64). */
  ioctlBuf(fd: Int, request: Int, arg: Uint8Array): Int
  /** syscall(2) with two integer arguments (variadic in C; integers pass the same way on x86_64 and aarch64). */
  syscall2(nr: Int, a: Int, b: Int): Word
  /** syscall(2) with three integer arguments. */
  syscall3(nr: Int, a: Int, b: Int, c: Int): Word
}

function bind<K extends keyof Libc>(name: K, decl: string): Libc[K] {
  return libc.func(decl) as Libc[K]
}

// ptrace and process_vm_readv take raw pointers; iovecs are built by hand in Buffers (see memory.ts).
export const sys: Libc = {
  ptraceWord: libc.func('ptrace', 'long', ['int', 'int', 'uintptr_t', 'uintptr_t']) as Libc['ptraceWord'],
  ptraceBuf: libc.func('ptrace', 'long', ['int', 'int', 'uintptr_t', 'void *']) as Libc['ptraceBuf'],
  waitpid: bind('waitpid', 'int waitpid(int pid, int *status, int options)'),
  kill: bind('kill', 'int kill(int pid, int sig)'),
  tgkill: bind('tgkill', 'int tgkill(int tgid, int tid, int sig)'),
  sched_yield: bind('sched_yield', 'int sched_yield()'),
  poll: bind('poll', 'int poll(void *fds, unsigned long nfds, int timeout)'),
  sched_setaffinity: bind('sched_setaffinity', 'int sched_setaffinity(int pid, size_t size, void *mask)'),
  sched_getaffinity: bind('sched_getaffinity', 'int sched_getaffinity(int pid, size_t size, void *mask)'),
  personality: bind('personality', 'int personality(unsigned long persona)'),
  pipe2: bind('pipe2', 'int pipe2(int *fds, int flags)'),
  close: bind('close', 'int close(int fd)'),
  write: bind('write', 'intptr_t write(int fd, void *buf, size_t n)'),
  fcntl: bind('fcntl', 'int fcntl(int fd, int cmd, int arg)'),
  open: bind('open', 'int open(const char *path, int flags, int mode)'),
  pread64: bind('pread64', 'intptr_t pread64(int fd, void *buf, size_t n, int64_t off)'),
  lseek: bind('lseek', 'int64_t lseek(int fd, int64_t offset, int whence)'),
  getdents64: bind('getdents64', 'intptr_t getdents64(int fd, void *buf, size_t n)'),
  readlinkat: bind('readlinkat', 'intptr_t readlinkat(int dirfd, const char *path, void *buf, size_t n)'),
  pwrite64: bind('pwrite64', 'intptr_t pwrite64(int fd, void *buf, size_t n, int64_t off)'),
  memfd_create: bind('memfd_create', 'int memfd_create(const char *name, unsigned int flags)'),
  posix_spawn: bind(
    'posix_spawn',
    'int posix_spawn(int *pid, const char *path, void *fa, void *attr, const char **argv, const char **envp)',
  ),
  posix_spawn_file_actions_init: bind('posix_spawn_file_actions_init', 'int posix_spawn_file_actions_init(void *fa)'),
  posix_spawn_file_actions_destroy: bind(
    'posix_spawn_file_actions_destroy',
    'int posix_spawn_file_actions_destroy(void *fa)',
  ),
  posix_spawn_file_actions_adddup2: bind(
    'posix_spawn_file_actions_adddup2',
    'int posix_spawn_file_actions_adddup2(void *fa, int fd, int newfd)',
  ),
  posix_spawn_file_actions_addopen: bind(
    'posix_spawn_file_actions_addopen',
    'int posix_spawn_file_actions_addopen(void *fa, int fd, const char *path, int flags, int mode)',
  ),
  posix_spawn_file_actions_addchdir_np: bind(
    'posix_spawn_file_actions_addchdir_np',
    'int posix_spawn_file_actions_addchdir_np(void *fa, const char *path)',
  ),
  posix_spawnattr_init: bind('posix_spawnattr_init', 'int posix_spawnattr_init(void *attr)'),
  posix_spawnattr_destroy: bind('posix_spawnattr_destroy', 'int posix_spawnattr_destroy(void *attr)'),
  posix_spawnattr_setflags: bind('posix_spawnattr_setflags', 'int posix_spawnattr_setflags(void *attr, short flags)'),
  posix_spawnattr_setpgroup: bind('posix_spawnattr_setpgroup', 'int posix_spawnattr_setpgroup(void *attr, int pgroup)'),
  posix_spawnattr_setsigdefault: bind(
    'posix_spawnattr_setsigdefault',
    'int posix_spawnattr_setsigdefault(void *attr, void *set)',
  ),
  posix_spawnattr_setsigmask: bind(
    'posix_spawnattr_setsigmask',
    'int posix_spawnattr_setsigmask(void *attr, void *set)',
  ),
  sigfillset: bind('sigfillset', 'int sigfillset(void *set)'),
  sigemptyset: bind('sigemptyset', 'int sigemptyset(void *set)'),
  process_vm_readv: bind(
    'process_vm_readv',
    'intptr_t process_vm_readv(int pid, void *local, unsigned long liovcnt, void *remote, unsigned long riovcnt, unsigned long flags)',
  ),
  strerror: bind('strerror', 'const char *strerror(int errnum)'),
  sched_getcpu: bind('sched_getcpu', 'int sched_getcpu()'),
  madvise: bind('madvise', 'int madvise(uintptr_t addr, size_t length, int advice)'),
  mmap: bind('mmap', 'void *mmap(void *addr, size_t length, int prot, int flags, int fd, intptr_t offset)'),
  mprotect: bind('mprotect', 'int mprotect(void *addr, size_t length, int prot)'),
  munmap: bind('munmap', 'int munmap(void *addr, size_t length)'),
  memcpy: bind('memcpy', 'void *memcpy(void *dst, void *src, size_t n)'),
  posix_openpt: bind('posix_openpt', 'int posix_openpt(int flags)'),
  grantpt: bind('grantpt', 'int grantpt(int fd)'),
  unlockpt: bind('unlockpt', 'int unlockpt(int fd)'),
  ptsname_r: bind('ptsname_r', 'int ptsname_r(int fd, char *buf, size_t len)'),
  tcgetattr: bind('tcgetattr', 'int tcgetattr(int fd, void *termios)'),
  tcsetattr: bind('tcsetattr', 'int tcsetattr(int fd, int when, void *termios)'),
  cfmakeraw: bind('cfmakeraw', 'void cfmakeraw(void *termios)'),
  ioctlBuf: libc.func('ioctl', 'int', ['int', 'unsigned long', 'void *']) as Libc['ioctlBuf'],
  syscall2: libc.func('syscall', 'long', ['long', 'long', 'long']) as Libc['syscall2'],
  syscall3: libc.func('syscall', 'long', ['long', 'long', 'long', 'long']) as Libc['syscall3'],
}

/** Calls a function pointer of ours (see cpuid.ts) with a koffi prototype. */
export function callPointer(pointer: unknown, prototype: string, ...args: unknown[]): unknown {
  return koffi.call(pointer, protoOf(prototype), ...args) as unknown
}

/**
 * A function pointer of ours made a JS function, for one called many times: ~70 ns a call with
 * number arguments here, where callPointer (koffi.call) takes ~300.
 */
export function functionAt(pointer: unknown, prototype: string): (...args: unknown[]) => unknown {
  return koffi.decode(pointer, protoOf(prototype)) as (...args: unknown[]) => unknown
}

function protoOf(prototype: string): ReturnType<typeof koffi.proto> {
  let type = prototypes.get(prototype)
  if (!type) {
    type = koffi.proto(prototype)
    prototypes.set(prototype, type)
  }
  return type
}
const prototypes = new Map<string, ReturnType<typeof koffi.proto>>()

/** Address a koffi pointer holds. */
export function pointerAddress(pointer: unknown): bigint {
  return koffi.address(pointer)
}

/** Address of a Buffer's memory, for building iovecs by hand. */
export function addressOf(buf: Uint8Array): bigint {
  return koffi.address(buf)
}
