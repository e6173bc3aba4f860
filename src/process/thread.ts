// One traced thread: its run state and a cached copy of its registers, read on first use after each stop.
import { ProcessStateError, PtraceError, RegisterError } from '../errors.js'
import type { Arch } from '../native/arch/index.js'
import { ERRNO, errnoName } from '../native/constants.js'
import { createRegisters, type Registers, type RegisterSource } from './registers.js'
import { writeThreadRegisters } from './write-registers.js'

export type ThreadRunState = 'running' | 'stopped' | 'exited'

export class TracedThread implements RegisterSource {
  readonly tid: number
  /** 1 for the main thread, then 2, 3, ... in creation order. */
  readonly index: number
  readonly arch: Arch
  state: ThreadRunState = 'stopped'
  /** Signal to deliver when the thread next runs (a stop at signal delivery keeps it here). */
  pendingSignal = 0
  /** We sent PTRACE_INTERRUPT and its PTRACE_EVENT_STOP has not been seen yet. */
  interruptPending = false
  /** The thread is single-stepping: its next SIGTRAP is a step. */
  stepping = false
  /** The thread stopped on a breakpoint that was not reported (its pc was rewound): let it hit again. */
  rewound = false
  /** Resume with PTRACE_SYSCALL: the owner watches this syscall's result (the virtual clock's timed waits). */
  traceExit = false
  /** Virtual time (clock.ts): the virtual deadline of the timed wait or sleep it is in, on the clock's elapsed scale. */
  deadline: bigint | undefined = undefined
  /** A sleep not executed: the thread stays stopped at its seccomp stop until the virtual clock reaches its deadline. */
  parked = false
  readonly regs: Registers
  private readonly bytes: Uint8Array
  private readonly words: BigUint64Array
  private valid = false
  private readonly guard: () => void

  constructor(tid: number, index: number, arch: Arch, guard: () => void) {
    this.tid = tid
    this.index = index
    this.arch = arch
    this.guard = guard
    this.bytes = new Uint8Array(arch.regsSize)
    this.words = new BigUint64Array(this.bytes.buffer)
    this.regs = createRegisters(this)
  }

  block(): BigUint64Array {
    this.guard()
    if (!this.valid) {
      const err = this.arch.readRegs(this.tid, this.bytes)
      if (err !== 0 && this.state === 'running') {
        throw new ProcessStateError(
          'ERR_PROCESS_RUNNING',
          `Thread ${this.tid} is running: await the pending cont()/step() before reading registers.`,
        )
      }
      if (err === ERRNO.ESRCH)
        throw new ProcessStateError(
          'ERR_PROCESS_ENDED',
          `Cannot read the registers of thread ${this.index} (tid ${this.tid}): it is gone. The ` +
            `process was killed or ended outside procsnap since its last stop (a SIGKILL from ` +
            `elsewhere, the OOM killer); await proc.wait() to learn how it ended.`,
        )
      if (err !== 0)
        throw new PtraceError(
          'ERR_PTRACE',
          err,
          `Reading the registers of thread ${this.tid} failed (${errnoName(err)}): the thread is gone or not stopped.`,
        )
      this.valid = true
    }
    return this.words
  }

  commit(): void {
    const err = this.arch.writeRegs(this.tid, this.bytes)
    if (err !== 0)
      throw new PtraceError(
        'ERR_PTRACE',
        err,
        `Writing the registers of thread ${this.tid} failed (${errnoName(err)}).`,
      )
  }

  /** Sets several full registers with one PTRACE_SETREGS (each `regs.x = v` writes them all). */
  setRegisters(values: Readonly<Record<string, bigint>>): void {
    const words = this.block()
    for (const [name, value] of Object.entries(values)) {
      const i = this.arch.registers.indexOf(name)
      if (i < 0) throw new RegisterError(`No register ${name} in the ${this.arch.name} general register block.`)
      words[i] = BigInt.asUintN(64, value)
    }
    this.commit()
  }

  /** Throws the process's typed error unless it is stopped and alive (what every register access checks first). */
  ensureStopped(): void {
    this.guard()
  }

  extendedRegister(name: string): bigint | undefined {
    this.guard()
    return this.arch.readExtendedRegs?.(this.tid)[name]
  }

  explainMissing(name: string): string | undefined {
    return this.arch.explainMissingRegister?.(this.tid, name)
  }

  writeRegisters(values: Readonly<Record<string, bigint>>): void {
    writeThreadRegisters(this, values)
  }

  /** Forget cached registers: the thread is about to run. */
  invalidate(): void {
    this.valid = false
  }

  get pc(): bigint {
    return this.regs[this.arch.pc as 'rip']
  }

  set pc(value: bigint) {
    this.regs[this.arch.pc as 'rip'] = value
  }
}
