// pidfd_open and pidfd_getfd (Linux >= 5.6): a copy of another process's file descriptor, taken
// by its tracer (pidfd_getfd needs PTRACE_MODE_ATTACH_REALCREDS, which a tracer has).
import { lastErrno, sys } from './libc.js'

/** Syscall numbers from arch/x86/entry/syscalls/syscall_64.tbl (the same on every arch: new syscalls share numbers). */
const SYS_PIDFD_OPEN = 434
const SYS_PIDFD_GETFD = 438

/** A pidfd (close-on-exec, as pidfd_open always makes it) for `pid` as this process sees it; -errno on failure. */
export function pidfdOpen(pid: number): number {
  const r = Number(sys.syscall2(SYS_PIDFD_OPEN, pid, 0))
  return r < 0 ? -lastErrno() : r
}

/** A duplicate, in this process (close-on-exec), of descriptor `fd` of the process behind `pidfd`; -errno on failure. */
export function pidfdGetfd(pidfd: number, fd: number): number {
  const r = Number(sys.syscall3(SYS_PIDFD_GETFD, pidfd, fd, 0))
  return r < 0 ? -lastErrno() : r
}
