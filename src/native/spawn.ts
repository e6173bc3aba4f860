// posix_spawn of the launcher with the tracee's stdio, cwd, env, process group and personality.
// Never child_process: libuv's SIGCHLD handler would reap ptrace stops (DESIGN.md §2).
import { ADDR_NO_RANDOMIZE } from './constants.js'
import { sys } from './libc.js'
import { launcherExecutable } from './launcher.js'

export interface SpawnRequest {
  /** The target executable; argv[0] is passed separately. */
  path: string
  argv: readonly string[]
  env: readonly string[]
  cwd: string | undefined
  /** Parent fds that become the child's 0, 1, 2; undefined means /dev/null. */
  stdin: number | undefined
  stdout: number | undefined
  stderr: number | undefined
  /** Read end of the go pipe: becomes the launcher's fd 3. */
  goFd: number
  aslr: boolean
  arch: string
}

const POSIX_SPAWN_SETPGROUP = 0x02
const POSIX_SPAWN_SETSIGDEF = 0x04
const POSIX_SPAWN_SETSIGMASK = 0x08
const O_RDONLY = 0
const O_WRONLY = 1

const fileActions = Buffer.alloc(256) // posix_spawn_file_actions_t is 80 bytes on glibc
const attr = Buffer.alloc(512) // posix_spawnattr_t is 336 bytes
const sigset = Buffer.alloc(128)
const pidOut = new Int32Array(1)

function addStdio(fd: number | undefined, target: number): void {
  if (fd === undefined)
    sys.posix_spawn_file_actions_addopen(fileActions, target, '/dev/null', target === 0 ? O_RDONLY : O_WRONLY, 0)
  else sys.posix_spawn_file_actions_adddup2(fileActions, fd, target)
}

/** Spawns the launcher (which waits on fd 3 before exec); returns the pid, or a negative errno. */
export function spawnLauncher(req: SpawnRequest): number {
  const launcher = launcherExecutable(req.arch)
  sys.posix_spawn_file_actions_init(fileActions)
  sys.posix_spawnattr_init(attr)
  const persona = sys.personality(0xffffffff)
  try {
    addStdio(req.stdin, 0)
    addStdio(req.stdout, 1)
    addStdio(req.stderr, 2)
    sys.posix_spawn_file_actions_adddup2(fileActions, req.goFd, 3)
    if (req.cwd !== undefined) sys.posix_spawn_file_actions_addchdir_np(fileActions, req.cwd)
    // Node ignores SIGPIPE and SIGXFSZ: the tracee gets every signal at its default and none blocked.
    sys.sigfillset(sigset)
    sys.posix_spawnattr_setsigdefault(attr, sigset)
    sys.sigemptyset(sigset)
    sys.posix_spawnattr_setsigmask(attr, sigset)
    sys.posix_spawnattr_setpgroup(attr, 0)
    sys.posix_spawnattr_setflags(attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK)
    // personality is inherited through fork and exec: set it for the spawn only.
    sys.personality(req.aslr ? persona & ~ADDR_NO_RANDOMIZE : persona | ADDR_NO_RANDOMIZE)
    const argv = ['procsnap-launcher', req.path, ...req.argv, null]
    const env = [...req.env, null]
    const err = sys.posix_spawn(pidOut, launcher, fileActions, attr, argv, env)
    return err === 0 ? (pidOut[0] ?? -1) : -err
  } finally {
    sys.personality(persona)
    sys.posix_spawn_file_actions_destroy(fileActions)
    sys.posix_spawnattr_destroy(attr)
  }
}
