// Public shapes of stop events and exit results.
import type { Registers } from './registers.js'
import type { Breakpoint } from './breakpoints.js'

/** A thread of the tracee. Its registers are readable whenever the process is stopped (all-stop). */
export interface Thread {
  readonly tid: number
  /** 1 for the main thread, then 2, 3, ... in creation order. */
  readonly index: number
  readonly regs: Registers
  readonly pc: bigint
  /**
   * Writes registers by name, general and extended (`{ rax: 1n, xmm0: 2n, zmm16: 3n, st0: ... }`, the
   * names and widths of a snapshot's `regs`); those not named keep their values. Checks every name and
   * value before writing any: ERR_UNKNOWN_REGISTER (also for a register this CPU lacks), ERR_BAD_VALUE.
   */
  setRegisters(values: Readonly<Record<string, bigint>>): void
}

interface StopAt {
  readonly thread: Thread
  readonly pc: bigint
  /** Symbolized pc: 'counter!bump', 'libc.so.6!write+0x14', or a hex address outside any module. */
  readonly location: string
}

export type StopEvent =
  | (StopAt & { readonly kind: 'breakpoint'; readonly breakpoint: Breakpoint })
  | (StopAt & {
      readonly kind: 'step'
      /** Set by finish(): the function's return value register (rax on x86_64). */
      readonly returnValue?: bigint
    })
  | (StopAt & {
      readonly kind: 'signal'
      /** 'SIGSEGV', 'SIGABRT', ... The signal is delivered by the next cont(). */
      readonly signal: string
      readonly signo: number
      /** si_code of the signal (SEGV_MAPERR = 1, SEGV_ACCERR = 2, SI_USER = 0, SI_TKILL = -6, ...). */
      readonly code: number
      /** si_addr, for SIGSEGV, SIGBUS, SIGILL, SIGFPE. */
      readonly faultAddress?: bigint
    })
  /** proc.interrupt() stopped the process while a cont/runTo/finish/step was pending; `thread` is the one that was running. */
  | (StopAt & { readonly kind: 'interrupted' })
  | {
      readonly kind: 'exited'
      readonly exitCode: number
      /** Present when breakpoints were still pending at the end: one line each, saying why and what loaded. */
      readonly warnings?: readonly string[]
    }
  | { readonly kind: 'killed'; readonly signal: string; readonly warnings?: readonly string[] }

/** A stop at a signal: the one cont() reports, before the signal is delivered. */
export type SignalStop = Extract<StopEvent, { kind: 'signal' }>

/** How a process ended. */
export type ExitResult =
  | { readonly exitCode: number; readonly signal?: undefined }
  | { readonly signal: string; readonly exitCode?: undefined }
