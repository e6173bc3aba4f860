// The stress runner as a child subreaper (prctl PR_SET_CHILD_SUBREAPER): what its runs orphan is
// reparented to it rather than to pid 1 (which, in this container, never reaps), so that strays can
// be killed and their zombies reaped, and every run starts clean.
import koffi from 'koffi'

const libc = koffi.load('libc.so.6')
const prctl = libc.func(
  'int prctl(int option, unsigned long a, unsigned long b, unsigned long c, unsigned long d)',
) as (option: number, a: number, b: number, c: number, d: number) => number
const waitpid = libc.func('int waitpid(int pid, _Out_ int *status, int options)') as (
  pid: number,
  status: number[],
  options: number,
) => number

const PR_SET_CHILD_SUBREAPER = 36
const WNOHANG = 1

export function becomeSubreaper(): void {
  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) !== 0) throw new Error('prctl(PR_SET_CHILD_SUBREAPER) failed')
}

/** Reaps `pid` if it is a dead child of ours; libuv's own children are never passed here. */
export function reap(pid: number): void {
  waitpid(pid, [0], WNOHANG)
}
