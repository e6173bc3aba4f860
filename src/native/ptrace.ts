// ptrace requests and waitpid as small functions that return 0 or an errno; callers decide what a failure means.
import { PTRACE, WAIT } from './constants.js'
import { lastErrno, sys } from './libc.js'

function check(result: number | bigint): number {
  return Number(result) === -1 ? lastErrno() : 0
}

export function ptraceSeize(pid: number, options: number): number {
  return check(sys.ptraceWord(PTRACE.SEIZE, pid, 0, options))
}
export function ptraceCont(tid: number, signal = 0): number {
  return check(sys.ptraceWord(PTRACE.CONT, tid, 0, signal))
}
export function ptraceStep(tid: number, signal = 0): number {
  return check(sys.ptraceWord(PTRACE.SINGLESTEP, tid, 0, signal))
}
/** Resume, stopping at the next syscall entry or exit (SIGTRAP|0x80 with TRACESYSGOOD). */
export function ptraceSyscall(tid: number, signal = 0): number {
  return check(sys.ptraceWord(PTRACE.SYSCALL, tid, 0, signal))
}
export function ptraceInterrupt(tid: number): number {
  return check(sys.ptraceWord(PTRACE.INTERRUPT, tid, 0, 0))
}
export function ptraceDetach(tid: number, signal = 0): number {
  return check(sys.ptraceWord(PTRACE.DETACH, tid, 0, signal))
}

const eventMsg = new BigUint64Array(1)
const eventMsgBytes = new Uint8Array(eventMsg.buffer)

/** PTRACE_GETEVENTMSG: the new tid of a clone/fork event, the exit status of an exit event. */
export function ptraceEventMsg(tid: number): bigint | undefined {
  return check(sys.ptraceBuf(PTRACE.GETEVENTMSG, tid, 0, eventMsgBytes)) === 0 ? eventMsg[0] : undefined
}

/** 0 if `tid` is in a ptrace stop of ours; ESRCH once it is gone or was killed (a harmless GETEVENTMSG). */
export function ptraceProbe(tid: number): number {
  return check(sys.ptraceBuf(PTRACE.GETEVENTMSG, tid, 0, eventMsgBytes))
}

const syscallInfo = new Uint8Array(88)

/** PTRACE_GET_SYSCALL_INFO's op: 1 at a syscall entry, 2 at its exit, 3 at a seccomp stop, 0 at any other stop. */
export function ptraceSyscallOp(tid: number): number {
  syscallInfo[0] = 0
  return check(sys.ptraceBuf(PTRACE.GET_SYSCALL_INFO, tid, syscallInfo.length, syscallInfo)) === 0
    ? (syscallInfo[0] ?? 0)
    : 0
}

/** The siginfo_t of the signal that stopped a thread: number, code, and fault address (si_addr). */
export interface SigInfo {
  signo: number
  code: number
  address: bigint
}

const siginfo = Buffer.alloc(128)

export function ptraceSiginfo(tid: number): SigInfo | undefined {
  if (check(sys.ptraceBuf(PTRACE.GETSIGINFO, tid, 0, siginfo)) !== 0) return undefined
  // siginfo_t: int si_signo, si_errno, si_code; then (64-bit) padding and the union at offset 16.
  return { signo: siginfo.readInt32LE(0), code: siginfo.readInt32LE(8), address: siginfo.readBigUInt64LE(16) }
}

/** The raw siginfo_t (128 bytes) of the stop a thread is in, to put back later; undefined outside a signal-delivery stop. */
export function ptraceSaveSiginfo(tid: number): Uint8Array | undefined {
  const raw = new Uint8Array(128)
  return check(sys.ptraceBuf(PTRACE.GETSIGINFO, tid, 0, raw)) === 0 ? raw : undefined
}

/** PTRACE_SETSIGINFO: the siginfo the signal of this stop is delivered with. 0 or an errno. */
export function ptraceRestoreSiginfo(tid: number, raw: Uint8Array): number {
  return check(sys.ptraceBuf(PTRACE.SETSIGINFO, tid, 0, raw))
}

export interface WaitResult {
  pid: number
  status: number
}

const statusSync = new Int32Array(1)

/** Non-blocking waitpid(pid, __WALL|WNOHANG): undefined when nothing is ready, an errno number on failure. */
export function waitNoHang(pid: number): WaitResult | undefined | number {
  const r = sys.waitpid(pid, statusSync, WAIT.__WALL | WAIT.WNOHANG)
  if (r === 0) return undefined
  if (r < 0) return lastErrno()
  return { pid: r, status: statusSync[0] ?? 0 }
}

/** Blocking waitpid on this thread, for cleanup paths where the event loop cannot run (process exit). */
export function waitBlocking(pid: number): WaitResult | undefined {
  const r = sys.waitpid(pid, statusSync, WAIT.__WALL)
  return r > 0 ? { pid: r, status: statusSync[0] ?? 0 } : undefined
}

export function sendSignal(pid: number, signal: number): number {
  return check(sys.kill(pid, signal))
}

export function sendThreadSignal(tgid: number, tid: number, signal: number): number {
  return check(sys.tgkill(tgid, tid, signal))
}

export function yieldCpu(): void {
  sys.sched_yield()
}

const NO_FDS = new Uint8Array(8)

/** Sleeps this thread in the kernel for `ms`, or less: a signal handler that runs on it (SIGCHLD) ends the sleep. */
export function napUntilSignal(ms: number): void {
  sys.poll(NO_FDS, 0, ms)
}
