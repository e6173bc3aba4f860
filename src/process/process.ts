// The live tracee as users see it: breakpoints by symbol, cont/step/finish/runTo, registers,
// memory, maps, threads and captured output. One operation at a time; every wait has a deadline.
import { readlinkSync } from 'node:fs'
import { basename } from 'node:path'
import { readElf } from '../elf/index.js'
import { BinaryError, ProcessStateError, ProcsnapError, TimeoutError } from '../errors.js'
import type { Arch } from '../native/arch/index.js'
import { ERRNO, SIG, errnoName, signalName } from '../native/constants.js'
import { closeFd, openProcessMem, pwriteMem } from '../native/memory.js'
import { checkOptions, integerIn, isBoolean, isTimeout, rule, type OptionSchema } from '../options.js'
import { AddressSpace } from './address-space.js'
import { FIXED_AT_RANDOM, FixedRandom } from './entropy.js'
import { SyscallInjector, type InjectSite } from './inject.js'
import { VirtualClock } from './clock.js'
import { Family } from './family.js'
import { Breakpoint, BreakpointTable } from './breakpoints.js'
import type { ExitResult, SignalStop, StopEvent, Thread } from './events.js'
import { x86ReturnSiteAt, type ReturnSite } from './finish.js'
import { hex, type MemoryMap } from './maps.js'
import { readStackAuxv, type StackAuxv } from './initial-stack.js'
import { FdDirectory } from '../native/fd-directory.js'
import { TraceeMemory } from './memory.js'
import { ModuleNotLoaded, findModule, moduleAt, whyNotLoaded, type Location, type Module } from './modules.js'
import { normalAffinity, unpinThread } from './pinning.js'
import { setAffinity } from '../native/affinity.js'
import type { Registers } from './registers.js'
import { KILL_NOW, RELEASE, reapGroup, reapWhenDone, untrack } from './registry.js'
import { droppedNote, type OutputDropped, type Stdio, type StdioModes } from './stdio.js'
import type { TracedThread } from './thread.js'
import type { Schedule } from './schedule.js'
import type { Isolation } from './isolate.js'
import { sendSignal } from '../native/ptrace.js'
import { Tracer, type Stop } from './tracer.js'
import { writeExtendedArea, writeThreadRegisters } from './write-registers.js'
import { stopNaps } from './waiter.js'

export interface WaitOptions {
  /** Milliseconds before the wait gives up, interrupts the process and rejects; default: launch's timeout. */
  timeout?: number
}

export interface ContOptions extends WaitOptions {
  /** Deliver this signal instead of the pending one (0 or null suppresses it). */
  signal?: number | null
}

export interface BreakAtOptions {
  /** Removed after its first hit, as gdb's tbreak. */
  temporary?: boolean
}

const BREAK_AT_OPTIONS: OptionSchema = { temporary: isBoolean }
const WAIT_OPTIONS: OptionSchema = { timeout: isTimeout }
const CONT_OPTIONS: OptionSchema = {
  ...WAIT_OPTIONS,
  signal: rule('a signal number from 0 to 64, or null', (v) => v === null || integerIn(0, 64).test(v)),
}

export interface ProcessInit {
  pid: number
  /** Its process group: the pid, or the init of its PID namespace when isolated. */
  group: number
  /** The executable as the program sees it. */
  path: string
  argv: readonly string[]
  arch: Arch
  timeout: number
  stdio: Stdio
  /** The calling thread was pinned for this process (launch's `pin`): unpin when it ends. */
  pinned: boolean
  emulateStepOver: boolean
  /** launch's `schedule`: how the threads run. */
  schedule: Schedule
  /** Launched with address-space randomization on. */
  aslr: boolean
  /** The same randomness on every run (AT_RANDOM, getrandom, rdtsc before the entry point): see entropy.ts. */
  fixedRandom: boolean
  /** launch's clock is 'virtual': see clock.ts. */
  virtualClock: boolean
  /** launch's clock is 'simulated': sleeps and timed waits of a multi-threaded process expire in virtual time. */
  simulatedTime: boolean
  /** The calling thread was pinned for this process until its entry point (launch): unpin there. */
  startupPinned: boolean
  isolation: Isolation
  /** A path the program sees as one this process can open (isolated: under the inner cwd); default: itself. */
  hostPath?: ((path: string) => string) | undefined
  /** launch's `crash`: 'snapshot' captures the process at a fatal signal, before the signal is delivered. */
  crash?: 'snapshot' | undefined
  /** Made by attach(): not our child; the end of a test or of this process detaches it instead of killing it. */
  attached?: boolean
}

/** @internal Options of Process.injectSyscall. */
export interface InjectOptions extends WaitOptions {
  /** The tid of the thread to run it in; default: the thread of the last stop (another one if that one cannot). */
  tid?: number
  /** Where the `syscall` instruction comes from (inject.ts); default 'vdso'. */
  site?: InjectSite
}

/** @internal Why an address space is gone: the program called execve, or ended. */
export type AddressSpaceEnd = 'exec' | 'end'

const MAX_FINISH_STEPS = 1_000_000
/** Operations that interrupt() leaves alone. */
const UNINTERRUPTIBLE = new Set(['launch', 'attach', 'injectSyscall'])
const AT_RANDOM = 25n

export class Process implements AsyncDisposable {
  /** The pid of the program, as this process sees it (inside its PID namespace it is proc.isolation.pid). */
  readonly pid: number
  /**
   * Absolute path of the executable the process runs now (after an exec too), as the program sees
   * it: isolated, under /tmp/procsnap when it lies under the working directory.
   */
  get path(): string {
    return this.exePath
  }
  private exePath: string
  readonly argv: readonly string[]
  readonly arch: Arch
  /** Default deadline of every wait, in milliseconds. */
  readonly timeout: number
  /** Address-space layout randomization was on for this process (launch's `aslr`). */
  readonly aslr: boolean
  /** What the program sees of its surroundings (launch's `isolate`), or why it sees the real ones. */
  readonly isolation: Isolation
  private readonly group: number
  private readonly hostPath: (path: string) => string
  /** Set when launched with fixedRandom. */
  private readonly entropy: FixedRandom | undefined
  /** Set when launched with clock: 'virtual'. */
  private readonly clock: VirtualClock | undefined
  private readonly stdio: Stdio
  private readonly pinned: boolean
  private startupPinned: boolean
  private readonly table: BreakpointTable
  private readonly memory: TraceeMemory
  private readonly fdDirectory: FdDirectory
  private readonly tracer: Tracer
  private readonly space: AddressSpace
  private exitResult: ExitResult | undefined
  /** Set by kill() until the process is reaped: operations it overtakes resolve with the end. */
  private killing: Promise<ExitResult> | undefined
  private last: StopEvent | undefined
  private busy: string | undefined
  private launching = true
  private rendezvous: Breakpoint | undefined
  /** Breakpoints waiting for their library, with why (for the messages that report them). */
  private readonly pending = new Map<Breakpoint, string>()
  /** Every module loaded at some point of this run (a dlclose'd library too), for those messages. */
  private readonly seenModules = new Set<string>()
  private readonly injector: SyscallInjector
  /** Told when the address space goes (exec, end): what holds a handle on it (written-pages.ts) lets go. */
  private readonly spaceListeners = new Set<(why: AddressSpaceEnd) => void>()
  /** launch's `crash` option. */
  private readonly crashMode: 'snapshot' | undefined
  /**
   * @internal Set by the crash layer (src/crash/capture.ts): runs at every signal stop of a process
   * launched with { crash: 'snapshot' }, which it snapshots when the signal is a fatal one.
   */
  static atCrash: ((proc: Process, stop: SignalStop) => void) | undefined
  /** Work for the next resume, done while the process is still stopped (atNextResume). */
  private readonly resumeTasks: (() => Promise<void>)[] = []
  /** Set while resumeTasks run: they may inject system calls though an operation is under way. */
  private preparing = false
  /** Memory writes through writeMemory so far: a capture notes it, to know whether memory changed since. */
  private writes = 0
  /** Made by attach() (a process we did not start): detached, never killed, at the end of a test. */
  readonly attached: boolean
  /** detach() let it go: it runs on untraced, and this handle is ended. */
  private detached = false
  /** Settles when the operation under way ends (detach waits for an interrupted one). */
  private idle: Promise<void> = Promise.resolve()

  /** @internal Use launch(). */
  constructor(init: ProcessInit) {
    this.attached = init.attached ?? false
    this.launching = !this.attached
    this.pid = init.pid
    this.exePath = init.path
    this.argv = init.argv
    this.arch = init.arch
    this.timeout = init.timeout
    this.aslr = init.aslr
    this.isolation = init.isolation
    this.group = init.group
    this.hostPath = init.hostPath ?? ((path) => path)
    this.entropy = init.fixedRandom ? new FixedRandom() : undefined
    this.clock = init.virtualClock ? new VirtualClock() : undefined
    this.crashMode = init.crash
    this.stdio = init.stdio
    this.pinned = init.pinned
    this.startupPinned = init.startupPinned
    this.space = new AddressSpace(this.pid, this.path, () => this.ensureRendezvous(), this.hostPath)
    this.memory = new TraceeMemory(this.pid, () => this.space.maps())
    this.fdDirectory = new FdDirectory(this.pid)
    this.table = new BreakpointTable(
      this.arch.breakpoint,
      (address, length) => {
        const buf = new Uint8Array(length)
        this.memory.readRaw(address, buf)
        return buf
      },
      (address, bytes) => {
        // Once the process has ended there is no memory to restore (a temporary breakpoint removed after the exit).
        if (!this.exitResult) this.memory.writeRaw(address, bytes)
      },
    )
    this.memory.table = this.table
    this.injector = new SyscallInjector({
      pid: this.pid,
      arch: this.arch,
      table: this.table,
      memory: this.memory,
      maps: () => this.space.maps(),
    })
    this.tracer = new Tracer(
      this.pid,
      this.arch,
      this.table,
      {
        onInternalHit: (bp) => this.internalHit(bp),
        onExec: () => this.afterExec(),
        onSeccomp: (t) => {
          const simulate = this.tracer.simulatesTime()
          if (!this.clock?.answerSyscall(t, this.memory, simulate)) this.entropy?.answerGetrandom(t, this.memory)
        },
        onSyscallExit: (t) => this.clock?.syscallExit(t),
        ...(this.clock && init.simulatedTime && { onDeadline: (t: TracedThread) => this.clock?.expire(t) ?? false }),
        // The virtual clock keeps TSC faulting on and answers every rdtsc; fixedRandom alone, those before the entry point.
        onFault: (t) => (this.clock ?? this.entropy)?.emulateRdtsc(t, this.memory) ?? false,
      },
      () => this.assertAlive('read registers'),
      this.group,
      this.attached,
    )
    this.tracer.emulate = init.emulateStepOver
    this.tracer.family = new Family(
      this.pid,
      this.clock,
      this.arch,
      (pid) => this.cleanForkedChild(pid),
      (t) => this.tracer.passSharedSite(t),
    )
    this.tracer.family.detachChildren = this.attached
    this.tracer.schedule = init.schedule
  }

  // ---- state -------------------------------------------------------------------------------

  /** How the process ended, or undefined while it lives. */
  get exit(): ExitResult | undefined {
    return this.exitResult
  }

  /** The event of the last cont/step/finish/runTo: why the process is stopped (undefined right after launch or attach). */
  get lastStop(): StopEvent | undefined {
    return this.last
  }

  /** Registers of the thread of the last stop (the main thread at launch). */
  get regs(): Registers {
    this.assertStopped('read registers')
    return this.tracer.current.regs
  }

  /** Every thread, in creation order; all are stopped whenever the process is. */
  get threads(): Thread[] {
    this.assertStopped('list threads')
    return [...this.tracer.threads.values()].sort((a, b) => a.index - b.index).map((t) => this.publicThread(t))
  }

  /**
   * How many times the serial schedule switched threads at the end of a time slice (a thread that
   * ran 30 ms of CPU without a stop), since launch: such switches are not deterministic. 0 under 'free'.
   */
  get timeSlices(): number {
    return this.tracer.preemptions
  }

  /** The thread of the last stop. */
  get thread(): Thread {
    this.assertStopped('read the current thread')
    return this.publicThread(this.tracer.current)
  }

  /** The memory maps, read from /proc/PID/maps at this stop. */
  get maps(): MemoryMap[] {
    return [...this.sharedMaps()]
  }

  /** @internal The maps as read at this stop, not copied: the same array while the layout's text is the same. */
  sharedMaps(): readonly MemoryMap[] {
    this.assertStopped('read the memory maps')
    return this.space.maps()
  }

  /** Loaded ELF modules: the executable, ld.so, shared libraries. */
  get modules(): Module[] {
    this.assertStopped('list modules')
    return [...this.space.modules()]
  }

  /** Breakpoints set with breakAt, still in place (pending ones included). */
  get breakpoints(): Breakpoint[] {
    return this.table.userBreakpoints()
  }

  /**
   * What the process wrote to stdout so far (when stdout is 'pty', the default, or 'pipe'): all of
   * it, or its newest launch's outputLimit bytes (outputDropped says how many came before). Always ''
   * for an attached process: its streams are wherever its starter put them (stdioModes reads 'ignore').
   */
  get stdout(): string {
    return this.stdio.stdout
  }

  get stderr(): string {
    return this.stdio.stderr
  }

  /** Bytes dropped from the front of stdout and stderr to keep each within launch's outputLimit: 0 when none. */
  get outputDropped(): OutputDropped {
    return this.stdio.dropped
  }

  /** ' Its stderr: ...' with its last `chars` characters, and what was dropped before them; '' when it is empty. */
  private stderrTail(chars: number): string {
    const stderr = this.stdio.stderr
    return stderr ? ` Its stderr${droppedNote(this.stdio.dropped.stderr)}: ${stderr.slice(-chars).trim()}` : ''
  }

  /**
   * How stdout and stderr were connected: 'pty', 'pipe', 'inherit' or 'ignore'. A default pty that
   * could not be made here reads 'pipe', and `ptyFallback` says why.
   */
  get stdioModes(): StdioModes {
    return this.stdio.modes
  }

  // ---- locations and memory ----------------------------------------------------------------

  /** The address a location names: 'bump', 'libc.so.6!write', 'counter+0x1139', or a bigint. */
  resolve(location: Location): bigint {
    this.assertStopped('resolve a location')
    return this.space.resolve(location).address
  }

  /** 'module!symbol+0xoff' for an address. */
  symbolize(address: bigint): string {
    this.assertStopped('symbolize')
    return this.space.symbolize(address)
  }

  readMemory(location: Location, length: number): Uint8Array {
    this.assertStopped('read memory')
    checkLength(length)
    return this.memory.read(this.space.resolve(location).address, length)
  }

  /**
   * @internal Reads at an address the caller knows is mapped (capture's unwinder, block by block):
   * readMemory without resolving and symbolizing the location first.
   */
  readMapped(address: bigint, length: number): Uint8Array {
    this.assertStopped('read memory')
    checkLength(length)
    return this.memory.read(address, length)
  }

  /** Reads into a buffer the caller owns and reuses: no allocation, for large or repeated reads. */
  readMemoryInto(location: Location, target: Uint8Array): Uint8Array {
    this.assertStopped('read memory')
    this.memory.readInto(this.space.resolve(location).address, target)
    return target
  }

  /** @internal The open fds and their targets (readlink), through /proc/PID/fd kept open; undefined if unreadable. */
  openFds(): Map<number, string> | undefined {
    this.assertStopped('list the open files')
    return this.fdDirectory.list()
  }

  /** @internal /proc/PID/pagemap's fd, kept open with the process's memory (undefined if refused). */
  pagemapFd(): number | undefined {
    this.assertStopped('read the page map')
    return this.memory.pagemapFd()
  }

  /**
   * @internal Reads several ranges at once, one after another into `target` (restore compares what a
   * process touched, a few pages in many places); false when one could not be read whole.
   */
  readMemoryRanges(ranges: readonly (readonly [address: bigint, length: number])[], target: Uint8Array): boolean {
    this.assertStopped('read memory')
    return this.memory.readRanges(ranges, target)
  }

  /**
   * @internal readMemoryInto begun now and completed by `finish()`, with each page's crc32 into
   * `crcs`: a helper thread reads while the caller writes the previous chunk (a dump, snapshot/dump.ts).
   */
  startMemoryRead(address: bigint, target: Uint8Array, crcs?: Uint32Array): { finish(): void } {
    this.assertStopped('read memory')
    return this.memory.startRead(address, target, crcs)
  }

  writeMemory(location: Location, bytes: Uint8Array): void {
    this.writeMemoryAt(this.space.resolve(location).address, bytes)
  }

  /** @internal writeMemory at an address known to be mapped (restore's pages): no lookup of what it is. */
  writeMemoryAt(address: bigint, bytes: Uint8Array): void {
    this.assertStopped('write memory')
    this.writes++
    this.memory.write(address, bytes)
  }

  /**
   * @internal The state of what procsnap answers for the program (fixedRandom's stream, the virtual
   * clock's time): part of a snapshot to restore, since the program's next reads depend on it.
   */
  get answers(): TracerAnswers {
    return { random: this.entropy?.position, clockNs: this.clock?.elapsedNs }
  }

  set answers(state: TracerAnswers) {
    if (this.entropy && state.random) this.entropy.position = state.random
    if (this.clock && state.clockNs !== undefined) this.clock.elapsedNs = state.clockNs
  }

  /**
   * @internal Restore: ends thread `tid` now, as its own exit(0) would (the others stay stopped), and
   * makes `current` (a tid) the thread whose registers proc.regs shows.
   */
  async endThread(tid: number): Promise<void> {
    const t = this.tracer.threads.get(tid)
    if (!t || t.state === 'exited') return
    const site = this.injector.syscallSite()
    if (site === undefined)
      throw new ProcsnapError('ERR_INJECT_FAILED', `No vDSO in process ${this.pid}: thread ${tid} cannot be ended.`)
    await this.operation('restore', () => this.tracer.endThread(t, site, this.deadline({})))
  }

  /** @internal Restore: the thread `tid` becomes the current one (proc.regs, the next step). */
  focusThread(tid: number): void {
    const t = this.tracer.threads.get(tid)
    if (t) this.tracer.focus(t)
  }

  /** @internal Throws as every operation does when the process is not stopped (ended, detached, or running). */
  checkStopped(what: string): void {
    this.assertStopped(what)
  }

  /** @internal A path as the program sees it (its maps, its fds) as one this process can open. */
  hostFile(path: string): string {
    return this.hostPath(path)
  }

  /**
   * @internal Restore changed memory and maps behind writeMemory: the maps are read again (and the
   * modules, when `modules`: a file was mapped or unmapped), and captures see a write.
   */
  restored(modules: boolean): void {
    this.writes++
    if (modules) this.space.reload()
    else this.space.ran()
  }

  /** @internal How many writeMemory calls were made: equal counts mean procsnap wrote nothing in between. */
  get memoryWrites(): number {
    return this.writes
  }

  /**
   * @internal Runs `task` at the next cont, step, finish or runTo, before the process runs: it is
   * still stopped then, and may inject system calls. A task that fails changes nothing else.
   */
  atNextResume(task: () => Promise<void>): void {
    this.resumeTasks.push(task)
  }

  /**
   * @internal Runs system call `nr` in a stopped thread of the process (see inject.ts) and returns
   * its result (-errno on failure); registers and memory are as they were after it.
   */
  async injectSyscall(nr: number, args: readonly bigint[] = [], options: InjectOptions = {}): Promise<bigint> {
    if (!this.preparing) this.assertStopped('inject a system call')
    const current = this.tracer.current
    const others = [...this.tracer.threads.values()].filter((t) => t !== current)
    const thread =
      options.tid === undefined
        ? ([current, ...others].find((t) => this.injector.usable(t)) ?? current)
        : this.tracer.threads.get(options.tid)
    if (!thread)
      throw new ProcsnapError('ERR_BAD_ARGUMENT', `No thread with tid ${String(options.tid)} in process ${this.pid}.`)
    const run = (): Promise<bigint> =>
      this.injector.run(thread, nr, args, this.deadline(options), options.site ?? 'vdso')
    return this.preparing ? run() : this.operation('injectSyscall', run)
  }

  /**
   * Sets the current thread's pc to `location`, as gdb's `jump` does but without resuming: the next
   * cont, step or runTo starts there (a breakpoint there is stepped over, not hit). Nothing else
   * changes: the stack and the other registers stay as they are. Returns the address.
   */
  jump(location: Location): bigint {
    this.assertStopped('jump')
    const address = this.space.resolve(location, true).address
    const t = this.tracer.current
    t.pc = address
    t.rewound = false
    return address
  }

  /** @internal Calls `listener` once when this address space is gone (exec or end); returns a function that unsubscribes. */
  onAddressSpaceEnd(listener: (why: AddressSpaceEnd) => void): () => void {
    this.spaceListeners.add(listener)
    return () => this.spaceListeners.delete(listener)
  }

  private spaceEnded(why: AddressSpaceEnd): void {
    const listeners = [...this.spaceListeners]
    this.spaceListeners.clear()
    for (const listener of listeners) listener(why)
  }

  // ---- breakpoints -------------------------------------------------------------------------

  /**
   * A breakpoint at a location. A 'module!symbol' whose module is not loaded yet stays pending
   * and is armed when the library loads (dlopen).
   */
  breakAt(location: Location, options?: BreakAtOptions): Breakpoint {
    checkOptions('breakAt', options, BREAK_AT_OPTIONS)
    this.assertStopped('set a breakpoint')
    const bp = this.table.create(location, { temporary: options?.temporary ?? false })
    try {
      this.arm(bp)
    } catch (error) {
      if (error instanceof ModuleNotLoaded) {
        this.pending.set(bp, this.whyPending(bp, error))
        this.ensureRendezvous()
        return bp
      }
      bp.remove()
      throw error
    }
    return bp
  }

  private arm(bp: Breakpoint): void {
    const resolved = this.space.resolve(bp.location, true)
    this.table.arm(bp, resolved.address, resolved.description)
  }

  // ---- running -----------------------------------------------------------------------------

  /** Runs until a breakpoint, a signal, or the end of the process. */
  async cont(options: ContOptions = {}): Promise<StopEvent> {
    checkOptions('cont', options, CONT_OPTIONS)
    return this.settled(() =>
      this.operation('cont', async () => {
        if (options.signal !== undefined) this.tracer.current.pendingSignal = options.signal ?? 0
        return this.toEvent(await this.tracer.cont(this.deadline(options)))
      }),
    )
  }

  /** Executes one instruction of the current thread; the other threads stay stopped. */
  async step(options: WaitOptions = {}): Promise<StopEvent> {
    checkOptions('step', options, WAIT_OPTIONS)
    return this.settled(() =>
      this.operation('step', async () => this.toEvent(await this.tracer.step(this.deadline(options)))),
    )
  }

  /** Runs to a location (a temporary breakpoint), stopping earlier at other breakpoints or signals. */
  async runTo(location: Location, options: WaitOptions = {}): Promise<StopEvent> {
    checkOptions('runTo', options, WAIT_OPTIONS)
    return this.settled(
      () => this.runToLocation(location, options),
      (end) => this.unreached(end, typeof location === 'bigint' ? hex(location) : location),
    )
  }

  private async runToLocation(location: Location, options: WaitOptions): Promise<StopEvent> {
    this.assertStopped('runTo')
    const resolved = this.space.resolve(location)
    const temp = this.table.create(location, { temporary: true, internal: true })
    this.table.arm(temp, resolved.address, resolved.description)
    try {
      const event = await this.cont(options)
      // Ended by kill() meanwhile: it resolves like every operation kill() overtakes.
      if ((event.kind === 'exited' || event.kind === 'killed') && !this.killing) {
        throw this.unreached(event, resolved.description)
      }
      return event
    } finally {
      temp.remove()
    }
  }

  /** runTo's failure: the process ended before reaching `where`. */
  private unreached(end: StopEvent, where: string): ProcessStateError {
    const how =
      end.kind === 'exited'
        ? `exited with code ${end.exitCode}`
        : end.kind === 'killed'
          ? `was killed by ${end.signal}`
          : 'ended'
    const hint = this.stderrTail(300) || ' Check that this run of the program reaches that code.'
    const notes = this.pendingNotes('stayed').map((n) => `\n${n}`)
    return new ProcessStateError(
      'ERR_PROCESS_EXITED',
      `The process ${how} before reaching ${where}.${hint}${notes.join('')}`,
    )
  }

  /** Runs until the current function returns to its caller; the event carries the return value. */
  async finish(options: WaitOptions = {}): Promise<StopEvent> {
    checkOptions('finish', options, WAIT_OPTIONS)
    return this.settled(() => this.finishFunction(options))
  }

  private async finishFunction(options: WaitOptions): Promise<StopEvent> {
    this.assertStopped('finish')
    const thread = this.tracer.current
    const site = this.returnSite(thread)
    if (!site) return this.finishByStepping(thread, options)
    const sp = this.arch.sp as 'rsp'
    const temp = this.table.create(site.returnAddress, {
      temporary: true,
      internal: true,
      condition: (tid) => tid === thread.tid && thread.regs[sp] >= site.cfa,
    })
    this.table.arm(temp, site.returnAddress, this.space.symbolize(site.returnAddress))
    try {
      const event = await this.cont(options)
      if (event.kind === 'breakpoint' && event.breakpoint === temp) return this.finished(event.thread)
      return event
    } finally {
      temp.remove()
    }
  }

  /** Removes every breakpoint and runs the process to its end. */
  async wait(options: WaitOptions = {}): Promise<ExitResult> {
    checkOptions('wait', options, WAIT_OPTIONS)
    if (this.exitResult) return this.exitResult
    const event = await this.settled(async () => {
      for (const bp of [...this.table.all]) bp.remove()
      this.pending.clear()
      this.rendezvous = undefined
      for (;;) {
        const event = await this.cont(options)
        if (event.kind === 'exited' || event.kind === 'killed') return event
        if (event.kind === 'interrupted')
          throw new ProcessStateError(
            'ERR_INTERRUPTED',
            `wait() was interrupted (proc.interrupt()): the process is stopped at ${event.location}, ` +
              `its breakpoints removed. cont() or wait() again to let it run on.`,
          )
        // A signal stop: cont() delivers it; a fatal one ends the process.
      }
    })
    return this.exitResult ?? (event.kind === 'exited' ? { exitCode: event.exitCode } : { exitCode: -1 })
  }

  /**
   * Kills the process and reaps it; safe to call any time, any number of times. An operation still
   * running (a cont() nobody awaited) resolves with the `killed` event.
   */
  async kill(): Promise<ExitResult> {
    if (this.exitResult) return this.exitResult
    if (this.detached) this.assertAlive('kill')
    this.killing ??= this.tracer.kill().then((stop) => this.ended(stop))
    return this.killing
  }

  /** @internal The registry's synchronous end, where the event loop will not turn again (exit, a closed IPC channel). */
  [KILL_NOW](): void {
    if (this.exitResult || this.detached) return
    if (this.attached) return this.release()
    sendSignal(this.pid, SIG.KILL)
    this.tracer.family?.killAll(this.group) // descendants, and the group's members
    reapGroup(this.group)
    this.ended({ kind: 'killed', signal: SIG.KILL })
  }

  /** Ends it at `await using`'s end: an attached process is detached (left running), a launched one killed. */
  async [Symbol.asyncDispose](): Promise<void> {
    if (this.detached || this.exitResult) return
    if (this.attached) return this.detach()
    await this.kill()
  }

  /** @internal The registry's end of a test: detach what was attached, kill what was launched. */
  async [RELEASE](): Promise<unknown> {
    if (this.detached || this.exitResult) return undefined
    return this.attached ? this.detach() : this.kill()
  }

  /**
   * Stops the process now while a cont(), step(), runTo(), finish() or wait() is pending: every
   * thread is interrupted (one blocked in a system call too: the call restarts, or returns EINTR
   * where it would for a signal with SA_RESTART unset, when the process is continued, as under
   * gdb's Ctrl-C), and the pending operation resolves with `{ kind: 'interrupted' }` (wait() rejects
   * with ERR_INTERRUPTED). A no-op when nothing is pending (the process is stopped already) or it ended.
   * A step() of a thread interrupted in a blocking call runs the whole restarted call, as gdb's stepi.
   */
  interrupt(): void {
    // launch and attach stop the process anyway; an injected system call is procsnap's own, and short.
    if (!this.busy || this.exitResult || this.detached || UNINTERRUPTIBLE.has(this.busy)) return
    this.tracer.interrupt()
  }

  /**
   * Lets the process go: every breakpoint is removed (original bytes back), each thread is detached
   * with the signal it stopped with (when the program should still get one), and the process runs
   * on untraced; a pending operation is interrupted first. This handle is then ended (its
   * operations throw ERR_PROCESS_ENDED). A launched process can be detached only when it was
   * launched with { clock: 'real', fixedRandom: false, isolate: false }: otherwise its seccomp filter
   * and TSC faulting, or its PID namespace, need procsnap. It stays this process's child, and its
   * stdout and stderr are still captured until it closes them.
   */
  async detach(): Promise<void> {
    if (this.detached) return
    this.assertAlive('detach')
    if (!this.attached && (this.entropy || this.clock || this.group !== this.pid)) {
      throw new ProcsnapError(
        'ERR_BAD_ARGUMENT',
        `Cannot detach process ${this.pid}: it was launched with ` +
          `${this.clock ? "the virtual clock (launch's clock)" : this.entropy ? 'fixedRandom' : 'isolate'}, which ` +
          `needs procsnap for as long as it runs. Launch it with { clock: 'real', fixedRandom: false, isolate: false } ` +
          `to detach it, or kill() it.`,
      )
    }
    if (this.busy) {
      this.tracer.interrupt()
      await this.idle
    }
    if (this.exitResult || this.detached) return
    this.release()
  }

  /** detach()'s work, synchronous (also the registry's end at exit): breakpoints out, every thread let go. */
  private release(): void {
    this.tracer.halt()
    for (const bp of [...this.table.all]) bp.remove()
    this.pending.clear()
    this.rendezvous = undefined
    // A site left in (an internal breakpoint mid-removal): its original bytes go back too.
    for (const site of this.table.sites.values()) if (site.inserted) this.table.lift(site)
    this.tracer.detachAll()
    this.tracer.family?.detachAll()
    this.detached = true
    this.spaceEnded('end')
    this.memory.close()
    this.fdDirectory.close()
    this.space.close()
    if (this.pinned) unpinThread()
    untrack(this.pid, this)
    if (!this.attached) reapWhenDone(this.pid) // still our child: its zombie is ours to reap
  }

  /** @internal Called once by attach(): every thread of the seized process stopped; `tids` from /proc/PID/task. */
  async startAttached(tids: readonly number[]): Promise<void> {
    const end = await this.operation('attach', () => this.tracer.seized(tids))
    this.space.reload()
    if (end) {
      this.ended(end)
      throw new ProcessStateError(
        'ERR_PROCESS_EXITED',
        `Process ${this.pid} (${this.path}) ended while procsnap attached to it ` +
          `(${end.kind === 'exited' ? `exit code ${end.exitCode}` : signalName(end.signal)}).`,
      )
    }
  }

  /** @internal Called once by launch(): waits for the exec and the stop at the entry point. */
  async start(): Promise<void> {
    let stop: Stop
    const sharedCpu = this.pinned || this.startupPinned
    try {
      stop = await this.operation('launch', () => this.tracer.start(this.deadline({})))
    } finally {
      this.endStartupPin()
      if (sharedCpu) stopNaps()
    }
    // The maps were read at the exec, before ld.so mapped the libraries: read them again at this stop.
    this.space.reload()
    if (stop.kind === 'breakpoint') {
      for (const bp of stop.hit) if (bp.internal) bp.remove()
      if (!this.clock) this.entropy?.restoreTsc(stop.thread, this.memory)
      // The stack as the exec made it: reading the maps again costs 5 lines per library, so only if it grew.
      this.entropy?.clearDeadStack(stop.thread, this.memory, this.space.stackAtExec(), () =>
        this.space.maps().find((m) => m.path === '[stack]'),
      )
      return
    }
    if (stop.kind === 'exited' || stop.kind === 'killed') {
      const neverRan = this.launching
      this.ended(stop)
      if (neverRan && stop.kind === 'exited') throw execFailure(this.path, stop.exitCode, this.hostPath(this.path))
      throw new ProcessStateError(
        'ERR_PROCESS_EXITED',
        `${this.path} ended before its entry point ` +
          `(${stop.kind === 'exited' ? `exit code ${stop.exitCode}` : signalName(stop.signal)}).` +
          this.stderrTail(500),
      )
    }
    this.toEvent(stop) // a timeout throws; a signal before the entry point leaves the process stopped there
  }

  // ---- internals ---------------------------------------------------------------------------

  /** The program reached its entry point (or never will): it and this thread may run anywhere again. */
  private endStartupPin(): void {
    if (!this.startupPinned) return
    this.startupPinned = false
    setAffinity(normalAffinity(), this.pid)
    unpinThread()
  }

  private deadline(options: WaitOptions): number {
    return performance.now() + (options.timeout ?? this.timeout)
  }

  /**
   * Runs a public operation (cont, step, finish, runTo, wait). One that the end of the process
   * overtakes resolves with the end event instead of failing on a dead process: kill() during it
   * (an un-awaited cont() when its test ends), or a SIGKILL from outside, seen as ESRCH from every
   * thread we hold. Never a raw ESRCH, never a rejection after its test is over.
   */
  private async settled(run: () => Promise<StopEvent>, unreached?: (end: StopEvent) => Error): Promise<StopEvent> {
    const endedBefore = this.exitResult !== undefined || this.killing !== undefined
    try {
      const event = await run()
      // launch's { crash: 'snapshot' }: captured once the operation is over, still stopped at the signal.
      if (event.kind === 'signal' && this.crashMode === 'snapshot' && this.busy === undefined)
        Process.atCrash?.(this, event)
      return event
    } catch (error) {
      if (endedBefore) throw error // used after its end: ERR_PROCESS_ENDED
      if (this.killing) {
        await this.killing
        return this.endEvent()
      }
      if (this.busy === undefined && !isInputError(error) && this.tracer.vanished()) {
        this.ended(await this.tracer.collectExit())
        const end = this.endEvent()
        if (unreached) throw unreached(end)
        return end
      }
      throw error
    }
  }

  /** The exited or killed event of a process that ended; it becomes lastStop. */
  private endEvent(): StopEvent {
    const result = this.exitResult ?? { signal: 'SIGKILL' }
    this.last =
      result.signal !== undefined
        ? { kind: 'killed', signal: result.signal }
        : { kind: 'exited', exitCode: result.exitCode }
    return this.last
  }

  private async operation<T>(name: string, run: () => Promise<T>): Promise<T> {
    this.assertStopped(name)
    this.busy = name
    this.tracer.clearInterrupt()
    let done = (): void => undefined
    this.idle = new Promise((resolve) => (done = resolve))
    try {
      if (name !== 'injectSyscall') await this.prepareResume()
      this.space.ran()
      return await run()
    } finally {
      this.busy = undefined
      done()
    }
  }

  /** Runs the tasks atNextResume queued, in order; their failures are theirs (a task is an optimization). */
  private async prepareResume(): Promise<void> {
    const tasks = this.resumeTasks.splice(0)
    if (tasks.length === 0) return
    this.preparing = true
    try {
      for (const task of tasks) await task().catch(() => undefined)
    } finally {
      this.preparing = false
    }
  }

  private assertAlive(what: string): void {
    if (this.detached) {
      throw new ProcessStateError(
        'ERR_PROCESS_ENDED',
        `Cannot ${what}: process ${this.pid} (${this.path}) was detached (proc.detach()) and runs on ` +
          `without procsnap. attach(${this.pid}) to trace it again.`,
      )
    }
    if (this.exitResult) {
      const how = this.exitResult.signal
        ? `was killed by ${this.exitResult.signal}`
        : `exited with code ${this.exitResult.exitCode}`
      throw new ProcessStateError(
        'ERR_PROCESS_ENDED',
        `Cannot ${what}: process ${this.pid} (${this.path}) ${how}. Launch it again, or inspect it before it ends.`,
      )
    }
  }

  private assertStopped(what: string): void {
    this.assertAlive(what)
    // While atNextResume's tasks run the process is still stopped: they may read it and inject.
    if (this.busy && !this.preparing) {
      throw new ProcessStateError(
        'ERR_PROCESS_RUNNING',
        `Cannot ${what} while ${this.busy}() is running: await it first.`,
      )
    }
  }

  private publicThread(t: TracedThread): Thread {
    return new ProcessThread(this, t)
  }

  private toEvent(stop: Stop): StopEvent {
    this.last = this.eventOf(stop)
    return this.last
  }

  private eventOf(stop: Stop): StopEvent {
    this.space.ran()
    switch (stop.kind) {
      case 'exited':
      case 'killed': {
        const result = this.ended(stop)
        // Breakpoints that never armed: most often a typo in a library name ('libcc!write').
        const notes = this.killing ? [] : this.pendingNotes('stayed')
        const warnings = notes.length > 0 ? { warnings: notes } : {}
        return result.signal !== undefined
          ? { kind: 'killed', signal: result.signal, ...warnings }
          : { kind: 'exited', exitCode: result.exitCode, ...warnings }
      }
      case 'timeout': {
        const pc = stop.thread.pc
        const location = this.space.symbolize(pc)
        const notes = this.pendingNotes('is still')
        throw new TimeoutError(
          `Timed out: the process did not stop within the deadline. It was interrupted in thread ` +
            `${stop.thread.index} (tid ${stop.thread.tid}) at ${hex(pc)} ${location} and is stopped ` +
            `there. Raise { timeout } or check that the program reaches the ` +
            `breakpoint.${notes.map((n) => `\n${n}`).join('')}`,
          pc,
          location,
        )
      }
      case 'breakpoint': {
        const bp = stop.hit.find((b) => !b.internal) ?? stop.hit[0]
        const thread = this.publicThread(stop.thread)
        if (!bp) return { kind: 'step', thread, pc: thread.pc, location: this.space.symbolize(thread.pc) }
        if (bp.temporary && !bp.internal) bp.remove()
        return { kind: 'breakpoint', thread, pc: stop.site.address, location: bp.description, breakpoint: bp }
      }
      case 'step':
      case 'interrupted': {
        const pc = stop.thread.pc
        return { kind: stop.kind, thread: this.publicThread(stop.thread), pc, location: this.space.symbolize(pc) }
      }
      case 'signal': {
        const pc = stop.thread.pc
        const info = stop.info
        const faulting = stop.signal === 4 || stop.signal === 7 || stop.signal === 8 || stop.signal === 11
        return {
          kind: 'signal',
          thread: this.publicThread(stop.thread),
          pc,
          location: this.space.symbolize(pc),
          signal: signalName(stop.signal),
          signo: stop.signal,
          code: info?.code ?? 0,
          ...(faulting && info ? { faultAddress: info.address } : {}),
        }
      }
    }
  }

  private ended(stop: { kind: 'exited'; exitCode: number } | { kind: 'killed'; signal: number }): ExitResult {
    if (!this.exitResult) {
      this.exitResult = stop.kind === 'exited' ? { exitCode: stop.exitCode } : { signal: signalName(stop.signal) }
      // An attached process's children are not ours to kill (nor its group, which may be ours).
      if (this.attached) this.tracer.family?.detachAll()
      else this.tracer.family?.killAll(this.group)
      this.spaceEnded('end')
      this.memory.close()
      this.fdDirectory.close()
      this.space.close()
      this.stdio.close()
      if (this.pinned) unpinThread()
      this.endNamespace()
      untrack(this.pid, this)
    }
    return this.exitResult
  }

  /**
   * An isolated program ended: end its PID namespace too (its init, and whatever the program left
   * running there) and reap the init. Every tracee left in the group is dead or dying then.
   */
  private endNamespace(): void {
    if (this.group === this.pid) return
    sendSignal(this.group, 9)
    reapGroup(this.group)
  }

  private finished(thread: Thread): StopEvent {
    const pc = thread.pc
    return {
      kind: 'step',
      thread,
      pc,
      location: this.space.symbolize(pc),
      returnValue: thread.regs[this.arch.returnValue as 'rax'],
    }
  }

  private returnSite(thread: TracedThread): ReturnSite | undefined {
    if (this.arch.name !== 'x86_64') return undefined // prologue reading is x86_64's; others step
    const { rsp, rbp } = thread.regs
    return x86ReturnSiteAt(thread.pc, { rsp, rbp }, this.space.modules(), (address, length) =>
      this.memory.read(address, length),
    )
  }

  /** No frame to read the return address from: step until the stack pointer rises above this frame. */
  private async finishByStepping(thread: TracedThread, options: WaitOptions): Promise<StopEvent> {
    const sp = this.arch.sp as 'rsp'
    const startSp = thread.regs[sp]
    const mod = moduleAt(this.space.modules(), thread.pc)
    const hit = mod?.elf.symbolize(thread.pc - mod.bias)
    const deadline = options.timeout ?? this.timeout
    const until = performance.now() + deadline
    for (let i = 0; i < MAX_FINISH_STEPS; i++) {
      const wasRet = this.memory.read(thread.pc, 1)[0] === 0xc3
      const event = await this.step({ timeout: Math.max(1, until - performance.now()) })
      if (event.kind !== 'step') return event
      if (wasRet && thread.regs[sp] > startSp) return this.finished(event.thread)
      if (performance.now() > until) break
    }
    throw new TimeoutError(
      `finish() from ${hit ? hit.symbol.name : hex(thread.pc)} did not return within ${deadline} ` +
        `ms of single-stepping (this code has no frame pointer to find the return address). Set a ` +
        `breakpoint after the call instead.`,
      thread.pc,
      this.space.symbolize(thread.pc),
    )
  }

  /** dlopen support: ld.so calls _dl_debug_state after each change to the link map. */
  private ensureRendezvous(): void {
    if (this.rendezvous) return
    const modules = this.space.modules()
    const exe = this.space.exe()
    const interp = exe?.elf.interpreter
    // PT_INTERP names a symlink (/lib64/ld-linux-x86-64.so.2); maps show the real path: match base names.
    const ld = (interp && findModule(modules, basename(interp))) || modules.find((m) => m.name.startsWith('ld-'))
    const sym = ld?.elf.findSymbol('_dl_debug_state')
    if (!ld || !sym) return // static binary: no dynamic loader, pending breakpoints stay pending
    const address = ld.bias + sym.value
    this.rendezvous = this.table.create(address, { internal: true })
    this.table.arm(this.rendezvous, address, `${ld.name}!_dl_debug_state`)
  }

  /** Why `bp` could not be armed now, in words that stay true after the process ends. */
  private whyPending(bp: Breakpoint, error: unknown): string {
    const location = typeof bp.location === 'bigint' ? hex(bp.location) : bp.location
    const modules = this.space.modules()
    for (const m of modules) this.seenModules.add(m.name)
    if (!(error instanceof ModuleNotLoaded)) return error instanceof Error ? error.message : String(error)
    // Its library came and went (dlclose) without the symbol: that says more than 'not loaded'.
    const earlier = this.pending.get(bp)
    if (earlier !== undefined && earlier.startsWith('No symbol')) return earlier
    return whyNotLoaded(error.module, location, modules, this.space.exe(), [...this.seenModules])
  }

  /**
   * One line per breakpoint still waiting for its library (set, enabled, never armed), saying why
   * and what loaded: for the end of the process, a timeout, or runTo's ERR_PROCESS_EXITED.
   */
  private pendingNotes(state: 'stayed' | 'is still'): string[] {
    const notes: string[] = []
    for (const [bp, why] of this.pending) {
      if (!bp.pending || !bp.enabled) continue
      const location = typeof bp.location === 'bigint' ? hex(bp.location) : bp.location
      notes.push(`Breakpoint ${bp.id} at '${location}' ${state} pending: ${why}`)
    }
    return notes
  }

  private internalHit(bp: Breakpoint): void {
    if (bp !== this.rendezvous) return
    this.space.reload()
    this.space.modules() // re-read now: the rendezvous stays armed through it
    for (const p of [...this.pending.keys()]) {
      if (p.removed) {
        this.pending.delete(p)
        continue
      }
      try {
        this.arm(p)
        this.pending.delete(p)
      } catch (error) {
        // still not loaded (or the library lacks the symbol): stays pending
        this.pending.set(p, this.whyPending(p, error))
      }
    }
  }

  private afterExec(): void {
    // An open /proc/PID/mem or /proc/PID/maps belongs to the old address space: reopen them.
    this.memory.close()
    this.injector.forget()
    this.spaceEnded('exec')
    const exe = readlinkSync(`/proc/${this.pid}/exe`)
    // The seize can land while the launcher's own execve is finishing (posix_spawn returns as
    // soon as the vfork'ed child releases our memory): that exec is reported too, and skipped.
    const launcherExec = this.launching && exe.startsWith('/memfd:procsnap-launcher')
    // The auxiliary vector from the new stack (sp points at argc), for AT_RANDOM, the vDSO and AT_ENTRY.
    const thread = this.tracer.threads.get(this.pid)
    const auxv = thread && !launcherExec ? readStackAuxv(this.memory, thread.regs.rsp) : undefined
    this.space.execed(exe, auxv?.bytes)
    if (this.launching) {
      if (launcherExec) return
      // The target's exec: stop at the program's entry point, which the kernel put in the auxv.
      this.launching = false
      this.fixAtRandom()
      this.patchVdso(auxv)
      const entry = this.space.entryPoint()
      const bp = this.table.create(entry, { temporary: true, internal: true })
      this.table.arm(bp, entry, 'entry point')
      return
    }
    // A later execve: the old address space and every int3 in it are gone. Re-arm by name.
    this.exePath = exe
    this.fixAtRandom()
    this.patchVdso(auxv)
    this.table.dropAllSites()
    this.rendezvous = undefined
    for (const bp of this.table.byName()) {
      try {
        this.arm(bp)
      } catch (error) {
        this.pending.set(bp, this.whyPending(bp, error))
      }
    }
    this.space.reload()
  }

  /** AT_RANDOM seeds the stack canary and pointer guard: fixed bytes make two runs' memory comparable. */
  private fixAtRandom(): void {
    if (!this.entropy) return
    const at = this.space.auxvValue(AT_RANDOM)
    if (at !== undefined) this.memory.writeRaw(at, FIXED_AT_RANDOM)
  }

  /** The virtual clock: the vDSO's clocks read the real time without a syscall; they must make one. */
  private patchVdso(auxv: StackAuxv | undefined): void {
    const t = this.tracer.threads.get(this.pid)
    if (this.clock && t) this.clock.patchVdso(auxv ?? t.regs.rsp, this.memory)
  }

  private cleanForkedChild(pid: number): void {
    const fd = openProcessMem(pid)
    if (fd < 0) return
    try {
      for (const site of this.table.sites.values()) if (site.inserted) pwriteMem(fd, site.address, site.original)
    } finally {
      closeFd(fd)
    }
  }
}

/** A launcher that exited before exec: its exit status is the execve errno. */
function execFailure(path: string, errno: number, hostPath: string): Error {
  if (errno === ERRNO.ENOENT) {
    let interp: string | undefined
    try {
      interp = readElf(hostPath).interpreter
    } catch {
      // unreadable now: say it without the name
    }
    return new BinaryError(
      'ERR_NOT_EXECUTABLE',
      path,
      `execve(${path}) failed (ENOENT): its ELF interpreter (dynamic ` +
        `loader)${interp ? ` ${interp}` : ''} is missing on this machine. Install it, or build the ` +
        `binary on this machine (or statically).`,
    )
  }
  return new BinaryError(
    'ERR_NOT_EXECUTABLE',
    path,
    `The kernel cannot execute ${path} (${errnoName(errno)}). Is it a complete, valid executable for this machine?`,
  )
}

/** A mistake in what the caller asked, which the end of the process does not explain. */
function isInputError(error: unknown): boolean {
  return error instanceof ProcsnapError && (error.code === 'ERR_SYMBOL_NOT_FOUND' || error.code === 'ERR_BAD_LOCATION')
}

function checkLength(length: number): void {
  if (!Number.isSafeInteger(length) || length < 0) {
    throw new ProcsnapError('ERR_BAD_LOCATION', `A length is a non-negative integer; got ${String(length)}.`)
  }
}

/**
 * A thread as users see it: `tid` and `index` are its data (what prints, clones and serializes);
 * `regs` and `pc` read the live thread, valid while the process is stopped.
 */
/** @internal What procsnap answers for the program and where it is: see Process.answers. */
export interface TracerAnswers {
  readonly random: readonly [bigint, bigint] | undefined
  readonly clockNs: bigint | undefined
}

export class ProcessThread implements Thread {
  readonly tid: number
  readonly index: number
  readonly #process: Process
  readonly #traced: TracedThread

  /** @internal */
  constructor(process: Process, traced: TracedThread) {
    this.#process = process
    this.#traced = traced
    this.tid = traced.tid
    this.index = traced.index
  }

  /** @internal The process this thread belongs to (for capture). */
  get process(): Process {
    return this.#process
  }

  get regs(): Registers {
    return this.#traced.regs
  }

  get pc(): bigint {
    return this.#traced.pc
  }

  setRegisters(values: Readonly<Record<string, bigint>>): void {
    writeThreadRegisters(this.#traced, values)
  }

  /**
   * @internal Restore (snapshot/restore.ts): writes a snapshot's registers, general and extended
   * (checked before any is written), then `area` when given (a whole extended area); a pc that
   * lands on a breakpoint then steps over it at the next resume, as gdb does.
   */
  restoreRegisters(values: Readonly<Record<string, bigint>>, area?: Uint8Array): void {
    writeThreadRegisters(this.#traced, values)
    if (area) writeExtendedArea(this.#traced, area)
    this.#traced.rewound = false
  }

  /** @internal The thread's extended area (x86_64: xsave) as the kernel gives it, for encoding a restore once. */
  extendedArea(): Uint8Array | undefined {
    this.#traced.ensureStopped()
    return this.#traced.arch.readExtendedArea?.(this.#traced.tid)
  }

  /** @internal A copy of the general register block as PTRACE_GETREGS gave it (read once per stop), for capture. */
  registerBlock(): BigUint64Array {
    return this.#traced.block().slice()
  }
}
