// launch's fixedRandom: the program gets the same randomness on every run. AT_RANDOM is overwritten
// at exec, getrandom() is answered by the tracer at its seccomp stop, and rdtsc (which faults, see
// launcher.ts) is emulated with a counter until the entry point, where the real counter comes back.
import { ptraceStep, waitBlocking } from '../native/ptrace.js'
import { SIG, wifStopped, wStopSig } from '../native/constants.js'
import type { TraceeMemory } from './memory.js'
import { emulateTimestamp } from './rdtsc.js'
import type { TracedThread } from './thread.js'

/** What AT_RANDOM points to after exec: 16 recognisable, non-zero bytes. */
export const FIXED_AT_RANDOM = new TextEncoder().encode('procsnap-random!')

const SYS_GETRANDOM = 318n
const SYS_PRCTL = 157n
const PR_SET_TSC = 26n
const PR_TSC_ENABLE = 1n
const EFAULT = 14n
const MASK64 = (1n << 64n) - 1n
/** Skip the syscall: at a seccomp stop, a syscall number of -1 is not executed. */
const NO_SYSCALL = MASK64
/** Largest getrandom() answered in one stop; the kernel caps a call at 32 MiB too, callers loop. */
const MAX_GETRANDOM = 1 << 20
/** Granule of the dead-stack scan below the entry point's sp. */
/** A stack mapping's bounds. */
type StackRange = { readonly start: bigint; readonly end: bigint }

const DEAD_STACK_PAGE = 4096
const ZERO_PAGE = Buffer.alloc(DEAD_STACK_PAGE)
/** Fake time-stamp counter ticks per rdtsc. */
const TSC_STEP = 1000n

export class FixedRandom {
  private state = 0x9e3779b97f4a7c15n
  private tsc = 0n

  /** Where the fixed stream and the fake counter are: a restore puts them back (snapshot/restore.ts). */
  get position(): readonly [bigint, bigint] {
    return [this.state, this.tsc]
  }

  set position([state, tsc]: readonly [bigint, bigint]) {
    this.state = state
    this.tsc = tsc
  }

  /** At a seccomp stop for getrandom(buf, len, flags): fills buf from a fixed stream and skips the call. */
  answerGetrandom(t: TracedThread, memory: TraceeMemory): void {
    const regs = t.regs
    if (regs.orig_rax !== SYS_GETRANDOM) return
    const length = Number(regs.rsi < BigInt(MAX_GETRANDOM) ? regs.rsi : BigInt(MAX_GETRANDOM))
    let result = BigInt(length)
    try {
      memory.writeRaw(regs.rdi, this.bytes(length))
    } catch {
      result = -EFAULT & MASK64
    }
    t.setRegisters({ orig_rax: NO_SYSCALL, rax: result })
  }

  /** A SIGSEGV at rdtsc or rdtscp (TSC faulting is on until the entry point): emulates it. False for any other fault. */
  emulateRdtsc(t: TracedThread, memory: TraceeMemory): boolean {
    return emulateTimestamp(t, memory, () => (this.tsc += TSC_STEP))
  }

  /**
   * Turns TSC faulting off again: injects prctl(PR_SET_TSC, PR_TSC_ENABLE) into the stopped thread
   * (a syscall instruction written at its pc, one step, bytes and registers put back). The program
   * then reads the real counter, as clocks in the vDSO need.
   */
  restoreTsc(t: TracedThread, memory: TraceeMemory): void {
    const saved = t.block().slice()
    const pc = t.pc
    const original = new Uint8Array(2)
    memory.readRaw(pc, original)
    memory.writeRaw(pc, Uint8Array.of(0x0f, 0x05))
    try {
      t.setRegisters({ rax: SYS_PRCTL, rdi: PR_SET_TSC, rsi: PR_TSC_ENABLE })
      t.invalidate()
      if (ptraceStep(t.tid) !== 0) return
      for (;;) {
        const w = waitBlocking(t.tid)
        if (!w || !wifStopped(w.status) || wStopSig(w.status) === SIG.TRAP) break
      }
    } finally {
      memory.writeRaw(pc, original)
      t.invalidate()
      t.block().set(saved)
      t.commit()
    }
  }

  /**
   * Zeroes the stack below the entry point's stack pointer, as the kernel handed it out: the dynamic
   * loader's dead frames (and the libraries' constructors') hold addresses, random under ASLR, that
   * the program's uninitialized locals would otherwise show. Nothing there is live at the entry
   * point. `stack` is the mapping as the caller last read it; `current` reads it again, for when sp
   * is outside it or the dirt reaches its start (the stack grew down since).
   */
  clearDeadStack(
    t: TracedThread,
    memory: TraceeMemory,
    stack: StackRange | undefined,
    current: () => StackRange | undefined,
  ): void {
    const sp = t.regs.rsp
    const holds = (s: StackRange | undefined): s is StackRange => s !== undefined && sp > s.start && sp <= s.end
    const first = holds(stack) ? stack : current()
    if (!holds(first)) return
    let bounds: StackRange = first
    let reread = first !== stack
    // Only what was dirtied, page by page down from sp to the first page still all zeros:
    // touching the untouched pages below would allocate them (reading them too: ~10 µs each here).
    const page = Buffer.alloc(DEAD_STACK_PAGE)
    let low = sp
    for (;;) {
      if (low === bounds.start) {
        if (reread) break
        reread = true
        const now = current()
        if (!now || now.start >= low) break
        bounds = now
      }
      const from = low - BigInt(DEAD_STACK_PAGE) > bounds.start ? low - BigInt(DEAD_STACK_PAGE) : bounds.start
      const chunk = page.subarray(0, Number(low - from))
      memory.readRaw(from, chunk)
      if (chunk.equals(ZERO_PAGE.subarray(0, chunk.length))) break // memcmp, not a call per byte
      low = from
    }
    if (low < sp) memory.writeRaw(low, new Uint8Array(Number(sp - low)))
  }

  /** The next `length` bytes of the fixed stream (xorshift64*). */
  private bytes(length: number): Uint8Array {
    const out = new Uint8Array(length)
    for (let i = 0; i < length; i += 8) {
      this.state ^= this.state >> 12n
      this.state ^= (this.state << 25n) & MASK64
      this.state ^= this.state >> 27n
      let word = (this.state * 0x2545f4914f6cdd1dn) & MASK64
      for (let k = i; k < Math.min(i + 8, length); k++) {
        out[k] = Number(word & 0xffn)
        word >>= 8n
      }
    }
    return out
  }
}
