// Runs one system call inside a stopped thread of the tracee (as gdb's `call` and CRIU's parasite
// do): the thread's registers are set to the call, it single-steps one `syscall` instruction, and
// its registers (and the siginfo of its stop) are put back exactly. The other threads stay stopped.
//
// Where the `syscall` instruction comes from: by default, two bytes 0f 05 found in the vDSO (any
// such pair is a `syscall` when jumped to, whatever the vDSO's own code decodes there). Nothing of
// the program is written then: no copy-on-write of a text page, nothing to undo if the tracee dies
// midway, no interplay with our int3 bytes (a pair under one of our sites is skipped). Without a
// vDSO, the two bytes at the thread's pc are replaced for the step and put back after.
import { InjectError, ProcessStateError, TimeoutError } from '../errors.js'
import type { Arch } from '../native/arch/index.js'
import { PTRACE_EVENT, SIG, errnoName, signalName, wPtraceEvent, wStopSig, wifStopped } from '../native/constants.js'
import {
  ptraceInterrupt,
  ptraceRestoreSiginfo,
  ptraceSaveSiginfo,
  ptraceSiginfo,
  ptraceStep,
  ptraceSyscallOp,
  sendThreadSignal,
} from '../native/ptrace.js'
import type { BreakpointTable } from './breakpoints.js'
import { hex, type MemoryMap } from './maps.js'
import type { TraceeMemory } from './memory.js'
import type { TracedThread } from './thread.js'
import { Waiter } from './waiter.js'

/** x86_64's `syscall` instruction. */
const SYSCALL_INSN = Uint8Array.of(0x0f, 0x05)
/** Argument registers of a system call, in order (x86_64 syscall ABI). */
const ARG_REGISTERS = ['rdi', 'rsi', 'rdx', 'r10', 'r8', 'r9'] as const
/** PTRACE_GET_SYSCALL_INFO ops where the thread is inside a syscall's entry (its syscall would run, not ours). */
const AT_ENTRY = new Set([1, 3])

/** Where the `syscall` instruction is taken from: the vDSO (default) or the thread's own pc. */
export type InjectSite = 'vdso' | 'pc'

/** What the injector needs of the process. */
export interface InjectHost {
  readonly pid: number
  readonly arch: Arch
  readonly table: BreakpointTable
  readonly memory: TraceeMemory
  maps(): readonly MemoryMap[]
}

export class SyscallInjector {
  private readonly host: InjectHost
  /** Address of a 0f 05 pair in the vDSO; null when there is none (looked for once per address space). */
  private vdsoSite: bigint | null | undefined = undefined

  constructor(host: InjectHost) {
    this.host = host
  }

  /** The address space was replaced (execve): look for the vDSO's pair again. */
  forget(): void {
    this.vdsoSite = undefined
  }

  /** Whether a system call can be injected into `t` now: stopped, and not at the entry of a syscall of its own. */
  usable(t: TracedThread): boolean {
    return t.state === 'stopped' && !AT_ENTRY.has(ptraceSyscallOp(t.tid))
  }

  /**
   * Runs system call `nr` with up to six arguments in the stopped thread `t`, and returns what it
   * returned (rax, as a signed value: -errno on failure). `deadline` is a performance.now() time.
   * Throws InjectError (ERR_INJECT_FAILED) with the thread left as it was.
   */
  async run(
    t: TracedThread,
    nr: number,
    args: readonly bigint[],
    deadline: number,
    where: InjectSite = 'vdso',
  ): Promise<bigint> {
    const { arch } = this.host
    if (arch.name !== 'x86_64')
      throw new InjectError(`Injecting a system call is written for x86_64 only, not ${arch.name}.`)
    if (args.length > ARG_REGISTERS.length)
      throw new InjectError(`A system call takes at most 6 arguments; got ${args.length}.`)
    if (t.state !== 'stopped')
      throw new InjectError(
        `Thread ${t.index} (tid ${t.tid}) is not stopped: a system call is injected into a stopped thread.`,
      )
    if (AT_ENTRY.has(ptraceSyscallOp(t.tid)))
      throw new InjectError(
        `Thread ${t.index} (tid ${t.tid}) is stopped at the entry of a system call of its own: ` +
          `inject into another thread, or after it stops elsewhere.`,
      )
    const saved = t.block().slice()
    const siginfo = ptraceSaveSiginfo(t.tid)
    const site = where === 'vdso' ? this.findVdsoSite() : undefined
    const at = site ?? saved[arch.registers.indexOf(arch.pc)] ?? 0n
    const original = site === undefined ? this.patch(at) : undefined
    const queued: number[] = []
    try {
      const words = t.block()
      const reg = (name: string): number => arch.registers.indexOf(name)
      words[reg('rax')] = BigInt(nr)
      // -1: no syscall is being restarted, so the kernel's restart logic leaves our registers alone.
      words[reg('orig_rax')] = BigInt.asUintN(64, -1n)
      for (const [i, name] of ARG_REGISTERS.entries()) words[reg(name)] = BigInt.asUintN(64, args[i] ?? 0n)
      words[reg(arch.pc)] = at
      t.commit()
      await this.stepOnce(t, at, deadline, queued)
      const result = BigInt.asIntN(64, t.regs.rax)
      this.restore(t, saved, siginfo, at, original, queued)
      return result
    } catch (error) {
      try {
        this.restore(t, saved, siginfo, at, original, queued)
      } catch {
        // the thread is gone: the first error says so
      }
      throw error
    }
  }

  /** Single-steps `t` until it has executed the `syscall` at `at`; other stops are absorbed (signals kept in `queued`). */
  private async stepOnce(t: TracedThread, at: bigint, deadline: number, queued: number[]): Promise<void> {
    const waiter = new Waiter(t.tid)
    let timedOut = false
    for (;;) {
      t.invalidate()
      const err = ptraceStep(t.tid, 0)
      if (err !== 0) throw this.gone(t, `single-stepping it failed (${errnoName(err)})`)
      const w = await waiter.next(deadline, () => {
        timedOut = true
        ptraceInterrupt(t.tid)
      })
      if (!w || !wifStopped(w.status)) throw this.gone(t, 'it ended during the system call')
      const event = wPtraceEvent(w.status)
      const sig = wStopSig(w.status)
      if (timedOut) {
        // The interrupt's stop, or any stop after the deadline: the call did not return in time.
        throw new TimeoutError(
          `The system call injected into thread ${t.index} (tid ${t.tid}) did not return before the ` +
            `deadline (it blocks?): it was interrupted and the thread is as it was. Raise { timeout }.`,
        )
      }
      // A seccomp stop of the call itself, or a late interrupt: step on.
      if (event === PTRACE_EVENT.SECCOMP || event === PTRACE_EVENT.STOP) continue
      if (event !== 0)
        throw new InjectError(`The injected system call caused a ptrace event (${event}): not supported.`)
      if (sig === SIG.TRAP && (ptraceSiginfo(t.tid)?.code ?? 0) > 0) {
        const pc = t.pc
        if (pc === at + 2n) return
        throw new InjectError(
          `Thread ${t.index} trapped at ${hex(pc)} instead of after the injected syscall at ${hex(at)}.`,
        )
      }
      // A signal for the thread (a child's SIGCHLD, a timer): kept for later, not delivered now.
      queued.push(sig)
      if (queued.length > 64) throw new InjectError(`Thread ${t.index} keeps receiving ${signalName(sig)}: gave up.`)
    }
  }

  /** Puts the thread back as it was: code bytes, registers, the siginfo of its stop, its signals. */
  private restore(
    t: TracedThread,
    saved: BigUint64Array,
    siginfo: Uint8Array | undefined,
    at: bigint,
    original: Uint8Array | undefined,
    queued: readonly number[],
  ): void {
    if (original) this.host.memory.writeRaw(at, original)
    t.block().set(saved)
    t.commit()
    if (siginfo) ptraceRestoreSiginfo(t.tid, siginfo)
    // Signals that arrived during the step are made pending again: the thread receives them when it runs.
    for (const sig of queued) sendThreadSignal(this.host.pid, t.tid, sig)
  }

  /** Replaces the 2 bytes at `at` with `syscall`; returns the bytes as they were (an int3 of ours included). */
  private patch(at: bigint): Uint8Array {
    const original = new Uint8Array(SYSCALL_INSN.length)
    this.host.memory.readRaw(at, original)
    this.host.memory.writeRaw(at, SYSCALL_INSN)
    return original
  }

  /** A 0f 05 pair in the vDSO that none of our int3 sites covers, or undefined. */
  /** Address of a `syscall` instruction in the vDSO that no breakpoint covers, or undefined without a vDSO. */
  syscallSite(): bigint | undefined {
    return this.findVdsoSite()
  }

  private findVdsoSite(): bigint | undefined {
    const cached = this.vdsoSite
    if (cached !== undefined && cached !== null && this.clear(cached)) return cached
    if (cached === null) return undefined
    const vdso = this.host.maps().find((m) => m.path === '[vdso]')
    this.vdsoSite = null
    if (!vdso) return undefined
    const code = new Uint8Array(Number(vdso.end - vdso.start))
    try {
      this.host.memory.readRaw(vdso.start, code)
    } catch {
      return undefined
    }
    for (let i = 0; i + 1 < code.length; i++) {
      if (code[i] !== 0x0f || code[i + 1] !== 0x05) continue
      const address = vdso.start + BigInt(i)
      if (!this.clear(address)) continue
      this.vdsoSite = address
      return address
    }
    return undefined
  }

  /** No int3 of ours on either byte of the pair at `address`. */
  private clear(address: bigint): boolean {
    const { table } = this.host
    return !table.siteAt(address)?.inserted && !table.siteAt(address + 1n)?.inserted
  }

  private gone(t: TracedThread, why: string): ProcessStateError {
    return new ProcessStateError(
      'ERR_PROCESS_ENDED',
      `Thread ${t.index} (tid ${t.tid}) could not run an injected system call: ${why}. The process ` +
        `was killed or ended (a SIGKILL from elsewhere?); await proc.wait() to learn how.`,
    )
  }
}
