// Linux ABI constants for ptrace, wait and signals (the same on x86_64, aarch64 and i386 unless noted).

export const PTRACE = {
  CONT: 7,
  SYSCALL: 24,
  KILL: 8,
  SINGLESTEP: 9,
  GETREGS: 12, // x86 only; other arches use GETREGSET
  SETREGS: 13,
  GETFPREGS: 14,
  ATTACH: 16,
  DETACH: 17,
  SETOPTIONS: 0x4200,
  GETEVENTMSG: 0x4201,
  GETSIGINFO: 0x4202,
  SETSIGINFO: 0x4203,
  GETREGSET: 0x4204,
  SETREGSET: 0x4205,
  SEIZE: 0x4206,
  INTERRUPT: 0x4207,
  LISTEN: 0x4208,
  GET_SYSCALL_INFO: 0x420e,
} as const

export const PTRACE_O = {
  TRACESYSGOOD: 0x1,
  TRACEFORK: 0x2,
  TRACEVFORK: 0x4,
  TRACECLONE: 0x8,
  TRACEEXEC: 0x10,
  TRACEVFORKDONE: 0x20,
  TRACEEXIT: 0x40,
  TRACESECCOMP: 0x80,
  EXITKILL: 0x100000,
} as const

export const PTRACE_EVENT = {
  FORK: 1,
  VFORK: 2,
  CLONE: 3,
  EXEC: 4,
  VFORK_DONE: 5,
  EXIT: 6,
  SECCOMP: 7,
  STOP: 128,
} as const

export const WAIT = {
  WNOHANG: 1,
  WUNTRACED: 2,
  __WALL: 0x40000000,
} as const

export const SIGNALS: Readonly<Record<number, string>> = {
  1: 'SIGHUP',
  2: 'SIGINT',
  3: 'SIGQUIT',
  4: 'SIGILL',
  5: 'SIGTRAP',
  6: 'SIGABRT',
  7: 'SIGBUS',
  8: 'SIGFPE',
  9: 'SIGKILL',
  10: 'SIGUSR1',
  11: 'SIGSEGV',
  12: 'SIGUSR2',
  13: 'SIGPIPE',
  14: 'SIGALRM',
  15: 'SIGTERM',
  16: 'SIGSTKFLT',
  17: 'SIGCHLD',
  18: 'SIGCONT',
  19: 'SIGSTOP',
  20: 'SIGTSTP',
  21: 'SIGTTIN',
  22: 'SIGTTOU',
  23: 'SIGURG',
  24: 'SIGXCPU',
  25: 'SIGXFSZ',
  26: 'SIGVTALRM',
  27: 'SIGPROF',
  28: 'SIGWINCH',
  29: 'SIGIO',
  30: 'SIGPWR',
  31: 'SIGSYS',
}

export const SIG = { TRAP: 5, KILL: 9, SEGV: 11, STOP: 19, CONT: 18, CHLD: 17 } as const

/** Signal name for a number: 'SIGSEGV', or 'SIGRT3' for real-time signals. */
export function signalName(signo: number): string {
  return SIGNALS[signo] ?? (signo >= 34 ? `SIGRT${signo - 34}` : `SIG${signo}`)
}

/** Signal number for a name ('SIGSEGV' -> 11); undefined for a name it does not know. */
export function signalNumber(name: string): number | undefined {
  const found = Object.entries(SIGNALS).find(([, n]) => n === name)
  return found ? Number(found[0]) : undefined
}

/** Signals that stop nobody by default, as in gdb's `handle` table: passed straight through. */
export const PASS_THROUGH_SIGNALS: ReadonlySet<number> = new Set([14, 17, 23, 26, 27, 28, 29])

// si_code values that tell a breakpoint trap from a single-step trap on SIGTRAP.
export const SI_KERNEL = 0x80
export const TRAP_BRKPT = 1
export const TRAP_TRACE = 2

export const ADDR_NO_RANDOMIZE = 0x0040000

export const ERRNO: Readonly<Record<string, number>> = {
  EPERM: 1,
  ENOENT: 2,
  ESRCH: 3,
  EINTR: 4,
  EIO: 5,
  ENXIO: 6,
  E2BIG: 7,
  ENOEXEC: 8,
  ECHILD: 10,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  EBUSY: 16,
  ENODEV: 19,
  EINVAL: 22,
  ENFILE: 23,
  EMFILE: 24,
  ENOTTY: 25,
  ETXTBSY: 26,
  ENOSPC: 28,
}

const ERRNO_NAMES = new Map(Object.entries(ERRNO).map(([k, v]) => [v, k]))

export function errnoName(errno: number): string {
  return ERRNO_NAMES.get(errno) ?? `errno ${errno}`
}

// Decoding of a wait status word.
export function wifExited(s: number): boolean {
  return (s & 0x7f) === 0
}
export function wExitStatus(s: number): number {
  return (s >> 8) & 0xff
}
export function wifSignaled(s: number): boolean {
  return (s & 0x7f) !== 0 && (s & 0x7f) !== 0x7f
}
export function wTermSig(s: number): number {
  return s & 0x7f
}
export function wifStopped(s: number): boolean {
  return (s & 0xff) === 0x7f
}
export function wStopSig(s: number): number {
  return (s >> 8) & 0xff
}
/** The PTRACE_EVENT_* number of a stop, 0 if the stop is not an event stop. */
export function wPtraceEvent(s: number): number {
  return (s >> 16) & 0xff
}
