// pidfd_open and pidfd_getfd (Linux >= 5.6): a copy of another process's file descriptor, taken
// by its tracer (pidfd_getfd needs PTRACE_MODE_ATTACH_REALCREDS, which a tracer has); and a wait
// for a process's end that wakes when it ends, not at the next tick of a poll.
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

const POLLIN = 0x1
const pollFd = Buffer.alloc(8) // struct pollfd: int fd, short events, short revents

/** Waits at most `ms` for the process behind `pidfd` to end (its pidfd reads then); true once it has. */
export function pidfdEnded(pidfd: number, ms: number): boolean {
  pollFd.writeInt32LE(pidfd, 0)
  pollFd.writeInt16LE(POLLIN, 4)
  pollFd.writeInt16LE(0, 6)
  return sys.poll(pollFd, 1, ms) > 0
}
