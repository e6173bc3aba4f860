// The all-stop engine: resumes the tracee's threads, turns wait statuses into stops, handles
// clone/fork/exec events and breakpoint step-over, and stops every thread before a stop is reported.
// Under the serial schedule (the default), one thread of a multi-threaded tracee runs at a time and
// the runner changes only when it blocks in a syscall, yields, exits or stops, or after a time slice.
import { PtraceError } from '../errors.js'
import type { Arch } from '../native/arch/index.js'
import {
  ERRNO,
  PASS_THROUGH_SIGNALS,
  PTRACE_EVENT,
  SIG,
  errnoName,
  wExitStatus,
  wPtraceEvent,
  wStopSig,
  wTermSig,
  wifExited,
  wifSignaled,
} from '../native/constants.js'
import {
  ptraceCont,
  ptraceDetach,
  ptraceEventMsg,
  ptraceInterrupt,
  ptraceProbe,
  ptraceSiginfo,
  ptraceStep,
  ptraceSyscall,
  ptraceSyscallOp,
  sendSignal,
  type SigInfo,
  type WaitResult,
  waitNoHang,
} from '../native/ptrace.js'
import type { Breakpoint, BreakpointTable, Site } from './breakpoints.js'
import type { Family } from './family.js'
import { pauseMs } from './registry.js'
import {
  SLEEP_TICKS,
  SLICE_NS,
  SYS_SCHED_YIELD,
  TICK_MS,
  cpuTime,
  nextThread,
  pollThread,
  taskState,
  type Schedule,
} from './schedule.js'
import { TracedThread } from './thread.js'
import { Waiter } from './waiter.js'

/** Why the tracee stopped, before symbolization (the Process turns it into a StopEvent). */
export type Stop =
  | { kind: 'breakpoint'; thread: TracedThread; site: Site; hit: Breakpoint[] }
  | { kind: 'step'; thread: TracedThread }
  | { kind: 'signal'; thread: TracedThread; signal: number; info: SigInfo | undefined }
  | { kind: 'exited'; exitCode: number }
  | { kind: 'killed'; signal: number }
  | { kind: 'timeout'; thread: TracedThread }
  | { kind: 'interrupted'; thread: TracedThread }

export type ExitStop = Extract<Stop, { kind: 'exited' | 'killed' }>

/** A syscall stop: SIGTRAP with bit 7 set (PTRACE_O_TRACESYSGOOD). */
const SYSCALL_STOP = SIG.TRAP | 0x80
/** PTRACE_GET_SYSCALL_INFO ops. */
const SYSCALL_ENTRY = 1
const SYSCALL_EXIT = 2
const SYSCALL_SECCOMP = 3

/** The only running thread exited without a stop, and every other thread is stopped. */
interface Vanished {
  kind: 'vanished'
}

/** What the engine asks of its owner when the address space changes. */
export interface TracerHooks {
  /** An internal breakpoint was hit (library load, ...): handle it; the tracee then continues. */
  onInternalHit(bp: Breakpoint, thread: TracedThread): void
  /** The tracee called execve: every breakpoint site is gone with the old address space. */
  onExec(): void
  /** A seccomp filter stopped the thread at a syscall (launch's fixedRandom: getrandom). */
  onSeccomp(thread: TracedThread): void
  /** A SIGSEGV the owner may handle (an rdtsc while TSC faulting is on): true when it did, and the thread goes on. */
  onFault(thread: TracedThread): boolean
  /** The exit of a syscall whose thread had traceExit set at its seccomp stop. */
  onSyscallExit(thread: TracedThread): void
  /**
   * Virtual time: no thread can run, and `thread` has the earliest virtual deadline (thread.deadline).
   * True when the thread is ready to run (a parked sleep); false when it must be interrupted in its wait.
   */
  onDeadline?: (thread: TracedThread) => boolean
}

export class Tracer {
  readonly pid: number
  readonly arch: Arch
  readonly threads = new Map<number, TracedThread>()
  /** The thread of the last reported stop. */
  current: TracedThread
  exit: ExitStop | undefined = undefined
  /** Stops found while stopping the other threads, reported by the next resume instead of running. */
  private readonly queued: Stop[] = []
  private readonly waiter: Waiter
  private readonly table: BreakpointTable
  private readonly hooks: TracerHooks
  private nextIndex = 1
  private timedOut = false
  /** proc.interrupt() asked to stop the pending wait: it ends as a timeout does, reported as 'interrupted'. */
  private interruptRequested = false

  private readonly guard: () => void
  /** Step over simple instructions at breakpoints by emulating them (launch's `emulateStepOver`). */
  emulate = true
  /** Forked children kept traced and served (the virtual clock); without it they are detached. */
  family: Family | undefined
  /** launch's `schedule`: 'serial' runs one thread at a time, 'free' every thread at once. */
  schedule: Schedule = 'serial'
  /** Times the serial schedule switched threads because the runner used up its time slice (not deterministic). */
  preemptions = 0

  /** Serial schedule: the one thread we let run (others are stopped, or asleep in a syscall). */
  private runner: TracedThread | undefined
  /** Index of the last runner, where round robin goes on from. */
  private lastIndex = 0
  /** The runner just entered a syscall: see whether it returns or blocks before anything else. */
  private entered: TracedThread | undefined
  /** The runner entered a syscall and neither stopped nor slept while it was polled: the tick watches it. */
  private inSyscall: TracedThread | undefined
  /** The runner was interrupted at the end of its time slice: its next stop hands over. */
  private preempt = false
  /** The runner's CPU time at the first tick since it last stopped (its time slice counts from there). */
  private sliceStart: number | undefined
  /** Ticks in a row that found the runner asleep without a syscall entry seen. */
  private asleepTicks = 0
  /**
   * Virtual time: the runner used up its time slice while the other threads only wait for the clock
   * (a busy wait on a flag that a sleeping thread sets): the earliest deadline expires at the next choice.
   */
  private lapse = false

  /**
   * `guard` runs before any register access and throws if the process can no longer be used;
   * `group` is the tracee's process group (an isolated tracee's init leads it). `byTid`: wait on
   * the tracee's threads one by one, never on a group (an attached process's group may hold our own children).
   */
  constructor(
    pid: number,
    arch: Arch,
    table: BreakpointTable,
    hooks: TracerHooks,
    guard: () => void,
    group = pid,
    byTid = false,
  ) {
    this.pid = pid
    this.arch = arch
    this.table = table
    this.hooks = hooks
    this.guard = guard
    // Threads and descendants that left the group (setsid) are polled by tid.
    this.waiter = new Waiter(byTid ? pid : -group, undefined, () => [
      ...this.threads.keys(),
      ...(this.family?.tids() ?? []),
    ])
    this.current = this.addThread(pid)
  }

  private addThread(tid: number): TracedThread {
    const t = new TracedThread(tid, this.nextIndex++, this.arch, this.guard)
    this.threads.set(tid, t)
    return t
  }

  /** The launcher was let go: wait for its exec and the stop at the entry breakpoint. */
  async start(deadline: number): Promise<Stop> {
    this.current.state = 'running'
    this.runner = this.current
    return this.report(await this.waitRunning(deadline))
  }

  /**
   * attach(): the threads of a process seized while it ran (`tids`, the leader's included) are
   * interrupted, and each one's stop awaited; threads they create meanwhile are seized by
   * PTRACE_O_TRACECLONE and stopped too. Signals that arrive meanwhile are reported by the next resume.
   */
  async seized(tids: readonly number[]): Promise<ExitStop | undefined> {
    for (const tid of tids) if (!this.threads.has(tid)) this.addThread(tid)
    for (const t of this.threads.values()) t.state = 'running'
    await this.stopOthers(undefined)
    return this.exit
  }

  /**
   * proc.interrupt(), while an operation is pending: its wait (this one, or the next if no thread
   * runs right now) stops every thread and reports 'interrupted'; a stop that comes first wins.
   */
  interrupt(): void {
    if (this.exit) return
    this.interruptRequested = true
    this.timedOut = true
    this.interruptAll()
  }

  /** A new operation begins: an interrupt asked for during the last one is spent. */
  clearInterrupt(): void {
    this.interruptRequested = false
  }

  /**
   * detach(), first step: every thread stopped (at the end of a test each is; at exit one may still
   * run, and is interrupted for at most `ms`), a thread stopped on one of our int3s rewound to it.
   */
  halt(ms = 1000): void {
    const until = performance.now() + ms
    this.interruptAll()
    for (;;) {
      const running = [...this.threads.values()].filter((t) => t.state === 'running')
      if (running.length === 0 || this.exit || performance.now() > until) break
      let progressed = false
      for (const t of running) {
        const w = waitNoHang(t.tid)
        if (w === undefined) continue
        progressed = true
        if (typeof w === 'number' || wifExited(w.status) || wifSignaled(w.status)) {
          t.state = 'exited'
          continue
        }
        this.haltedBy(t, w.status)
      }
      if (!progressed) pauseMs(1)
    }
  }

  /** A stop met while halting for detach: what the thread must still get or redo once let go. */
  private haltedBy(t: TracedThread, status: number): void {
    t.state = 'stopped'
    t.invalidate()
    t.interruptPending = false
    const sig = wStopSig(status)
    const event = wPtraceEvent(status)
    if (event === PTRACE_EVENT.CLONE) {
      const child = Number(ptraceEventMsg(t.tid) ?? 0n)
      if (child > 0 && !this.threads.has(child)) {
        const nt = this.addThread(child)
        nt.state = 'running' // its first stop is on its way
        if (ptraceInterrupt(child) === 0) nt.interruptPending = true
      }
      return
    }
    if (event !== 0 || sig === SYSCALL_STOP) return
    if (sig === SIG.TRAP) {
      // Our int3 executed: back to it, so that the original instruction runs once the int3 is gone.
      const site = t.stepping ? undefined : this.table.siteAt(t.pc - this.arch.pcAfterTrap)
      if (site?.inserted) t.pc = site.address
      else if (!t.stepping) t.pendingSignal = sig
      t.stepping = false
      return
    }
    t.pendingSignal = sig
  }

  /**
   * detach(), last step: PTRACE_DETACH every stopped thread, with the signal it stopped with when the
   * program should still get it. Breakpoints must be out of memory by then. Returns how many were let go.
   */
  detachAll(): number {
    let n = 0
    for (const t of this.threads.values()) {
      if (t.state !== 'stopped') continue
      if (ptraceDetach(t.tid, t.pendingSignal) === 0) n++
      t.pendingSignal = 0
      t.state = 'exited'
    }
    this.queued.length = 0
    return n
  }

  /** waitForStop, for callers that let every thread run: a vanished thread means nothing is left. */
  private async waitRunning(deadline: number): Promise<Stop> {
    const stop = await this.waitForStop(deadline, this.schedule === 'serial')
    return stop.kind === 'vanished' ? this.processGone() : stop
  }

  /** Let the tracee run: every stopped thread, or under the serial schedule one, from `first` in index order. */
  private runAll(first: TracedThread): void {
    if (this.schedule === 'free') return this.resumeAll()
    this.runner = undefined
    this.lastIndex = first.index - 1
    if (this.liveThreads() !== 1) return
    // One thread: it simply runs, as under 'free' (no syscall stops, nothing to choose).
    const only = nextThread(this.threads.values(), this.lastIndex)
    if (!only) return
    this.runner = only
    this.lastIndex = only.index
    this.resume(only)
    // A wait on virtual time, entered while another thread lived: watched, so that it expires once it sleeps.
    if (only.deadline !== undefined) this.entered = only
  }

  /** Continue every thread until the next stop worth reporting. */
  async cont(deadline: number): Promise<Stop> {
    const queued = this.queued.shift()
    if (queued) return this.report(queued)
    const stepped = await this.stepOverAll(deadline)
    if (stepped) return this.report(stepped)
    this.runAll(this.current)
    return this.report(await this.waitRunning(deadline))
  }

  /** Every stopped thread that reported a breakpoint steps over it before anything runs, current thread first. */
  private async stepOverAll(deadline: number): Promise<Stop | undefined> {
    const order = [this.current, ...[...this.threads.values()].filter((t) => t !== this.current)]
    for (const t of order) {
      if (t.state !== 'stopped') continue
      const stop = await this.stepOverBreakpoint(t, deadline)
      if (stop) return stop
    }
    return undefined
  }

  /**
   * Ends the stopped thread `t` now, as its own exit(0) would, the other threads staying stopped:
   * its registers are set to the system call exit at `site` (a `syscall` instruction), and it runs
   * alone until it is gone. A stop of another kind on its way (a signal) is queued for the next cont.
   */
  async endThread(t: TracedThread, site: bigint, deadline: number): Promise<void> {
    t.setRegisters({ rax: 60n, rdi: 0n, orig_rax: BigInt.asUintN(64, -1n), rip: site })
    t.pendingSignal = 0
    t.rewound = false
    this.resume(t, false)
    const stop = await this.waitForStop(deadline, false, t)
    if (stop.kind !== 'vanished' && t.state !== 'exited') this.queued.push(stop)
  }

  /** The thread of the next stop's registers (proc.regs): a restore makes the snapshot's current thread current again. */
  focus(t: TracedThread): void {
    this.current = t
  }

  /** One instruction in the current thread; the other threads stay stopped. */
  async step(deadline: number): Promise<Stop> {
    const queued = this.queued.shift()
    if (queued) return this.report(queued)
    const t = this.current
    const site = this.siteUnder(t)
    if (site) this.table.lift(site)
    try {
      this.resume(t, true)
      const stop = await this.waitForStop(deadline, false, t)
      if (stop.kind !== 'vanished') return this.report(stop)
    } finally {
      if (site && !this.exit) this.table.reinsert(site)
    }
    // The stepped thread exited (its instruction ended it): the others carry on.
    this.runAll(t)
    return this.report(await this.waitRunning(deadline))
  }

  /** SIGKILL the tracee and reap every thread. */
  async kill(): Promise<ExitStop> {
    if (this.exit) return this.exit
    sendSignal(this.pid, SIG.KILL)
    return this.collectExit()
  }

  /**
   * The threads we hold stopped were killed under us (a SIGKILL from outside, the OOM killer):
   * each answers ESRCH. An operation that failed on that collects the exit instead.
   */
  vanished(): boolean {
    if (this.exit) return false
    const stopped = [...this.threads.values()].filter((t) => t.state === 'stopped')
    return stopped.length > 0 && stopped.every((t) => ptraceProbe(t.tid) === ERRNO.ESRCH)
  }

  /** Waits until the process is gone and reaped (after a SIGKILL, ours or not), and reports how it ended. */
  async collectExit(): Promise<ExitStop> {
    for (const t of this.threads.values()) if (t.state === 'stopped') t.state = 'running'
    while (!this.exit) {
      // A process that is dying reports soon; one that somehow is not gets our SIGKILL after 5 s.
      const w = await this.waiter.next(performance.now() + 5000, () => sendSignal(this.pid, SIG.KILL))
      if (!w) return this.processGone()
      try {
        this.handle(w, true)
      } catch {
        // a stop that raced with the SIGKILL: the thread is already dying
      }
    }
    return this.exit
  }

  private report(stop: Stop): Stop {
    if ('thread' in stop) this.current = stop.thread
    if (stop.kind === 'interrupted') this.interruptRequested = false
    // Every thread is stopped now: the next cont() chooses the runner afresh.
    this.runner = undefined
    this.entered = undefined
    this.inSyscall = undefined
    this.preempt = false
    this.lapse = false
    return stop
  }

  /** The inserted site at a thread's pc, if the thread must step over it rather than hit it. */
  private siteUnder(t: TracedThread): Site | undefined {
    if (t.rewound) return undefined
    if (this.table.sites.size === 0) return undefined
    const site = this.table.siteAt(t.pc)
    return site?.inserted ? site : undefined
  }

  /**
   * A thread that reported a breakpoint sits on its int3: put the original bytes back, single-step
   * it alone (the others stay stopped, so none can run through the lifted site), and re-insert.
   * Returns a stop if the step itself stopped for another reason (a signal, an exit).
   */
  private async stepOverBreakpoint(t: TracedThread, deadline: number): Promise<Stop | undefined> {
    const site = this.siteUnder(t)
    if (!site) return undefined
    if (this.emulate && this.emulateOver(t, site)) return undefined
    this.table.lift(site)
    try {
      this.resume(t, true)
      const stop = await this.waitForStop(deadline, false, t)
      if (stop.kind === 'vanished' || (stop.kind === 'step' && stop.thread === t)) return undefined
      return stop
    } finally {
      if (!this.exit) this.table.reinsert(site)
    }
  }

  /**
   * A vforked child (sharing the tracee's memory, int3s included) trapped: when it sits on one of
   * our sites, execute the instruction there for it (the sites stay in, so no thread of the tracee
   * can run through them) and return true; it then runs on as if there were no breakpoint.
   */
  passSharedSite(t: TracedThread): boolean {
    const site = this.table.siteAt(t.pc - this.arch.pcAfterTrap)
    if (!site?.inserted) return false
    const pc = t.pc
    t.pc = site.address
    if (this.emulateOver(t, site)) return true
    t.pc = pc
    return false
  }

  /** Executes the instruction under the int3 in the tracer (push, endbr64, ...) when it is that simple. */
  private emulateOver(t: TracedThread, site: Site): boolean {
    const { decodeEmulation, applyEmulation } = this.arch
    if (!decodeEmulation || !applyEmulation) return false
    if (site.emulation === undefined) {
      const code = this.table.codeAt(site, 5)
      site.emulation = (code && decodeEmulation(code)) ?? null
    }
    if (!site.emulation) return false
    const word = new Uint8Array(8)
    const store = (address: bigint, value: bigint): boolean => {
      new DataView(word.buffer).setBigUint64(0, value, true)
      try {
        this.table.store(address, word)
        return true
      } catch {
        return false
      }
    }
    if (!applyEmulation(site.emulation, t.block(), store)) return false
    t.commit()
    return true
  }

  private resume(t: TracedThread, step = false): void {
    t.invalidate()
    t.stepping = step
    const signal = t.pendingSignal
    t.pendingSignal = 0
    // A step loses a watched syscall's exit: the single-step trap comes instead.
    if (step) t.traceExit = false
    const err = step
      ? ptraceStep(t.tid, signal)
      : t.traceExit
        ? ptraceSyscall(t.tid, signal)
        : ptraceCont(t.tid, signal)
    // ESRCH: the thread was killed while stopped (SIGKILL, ours or not): it is on its way out, and
    // its exit status is what the wait reports next.
    if (err !== 0 && err !== ERRNO.ESRCH) {
      throw new PtraceError('ERR_PTRACE', err, `Resuming thread ${t.tid} failed (${errnoName(err)}).`)
    }
    t.state = 'running'
  }

  /** Serial schedule: the runner goes on, stopping at syscalls while another thread lives. */
  private resumeRunner(t: TracedThread): void {
    if (this.liveThreads() < 2) return this.resume(t)
    t.invalidate()
    t.stepping = false
    const signal = t.pendingSignal
    t.pendingSignal = 0
    const err = ptraceSyscall(t.tid, signal)
    if (err !== 0 && err !== ERRNO.ESRCH) {
      throw new PtraceError('ERR_PTRACE', err, `Resuming thread ${t.tid} failed (${errnoName(err)}).`)
    }
    t.state = 'running'
    this.sliceStart = undefined
    this.inSyscall = undefined
    this.asleepTicks = 0
  }

  /** Whether sleeps and timed waits entered now run on virtual time (clock.ts): the serial schedule with two threads or more. */
  simulatesTime(): boolean {
    return this.schedule === 'serial' && this.hooks.onDeadline !== undefined && this.liveThreads() > 1
  }

  /**
   * Virtual time, when no thread can run (each is asleep in a syscall or parked): the earliest virtual
   * deadline (ties: the lowest index) expires. True when its thread is ready now; false when there is
   * none, or the thread was interrupted in its wait (its syscall exit comes next).
   */
  private expireEarliest(lapse = false): boolean {
    const onDeadline = this.hooks.onDeadline
    if (!onDeadline || this.schedule !== 'serial' || this.timedOut) return false
    let first: TracedThread | undefined
    for (const t of this.threads.values()) {
      if (t.state === 'exited') continue
      if (t.interruptPending) return false // a wait that expired (or an all-stop) on its way to a stop
      const d = t.deadline
      if (d === undefined) continue
      if (t.state === 'stopped' && !t.parked && !lapse) return false // ready: not the moment to move the clock
      if (!first || d < (first.deadline ?? d) || (d === first.deadline && t.index < first.index)) first = t
    }
    if (!first) return false
    if (onDeadline(first)) return true
    if (ptraceInterrupt(first.tid) === 0) first.interruptPending = true
    return false
  }

  private liveThreads(): number {
    let n = 0
    for (const t of this.threads.values()) if (t.state !== 'exited') n++
    return n
  }

  /**
   * A thread whose stop was handled inside the engine goes on. Free: at once. Serial: a stepping
   * thread and the runner do (the runner hands over when its slice is used up); any other waits for its turn.
   */
  private proceed(t: TracedThread, op = 0): void {
    if (t.stepping || this.schedule === 'free') return this.resume(t, t.stepping)
    if (t.parked) {
      // A sleep on virtual time: the thread stays stopped until the clock reaches its deadline.
      if (t === this.runner) this.runner = undefined
      return
    }
    if (t !== this.runner || this.timedOut) return
    if (this.preempt) {
      this.preempt = false
      this.runner = undefined
      return
    }
    const multi = this.liveThreads() > 1
    if (op === SYSCALL_ENTRY && multi && t.regs.orig_rax === SYS_SCHED_YIELD) {
      this.runner = undefined // it yields at its entry stop: the syscall runs when its turn comes again
      return
    }
    this.resumeRunner(t)
    if (multi && (op === SYSCALL_ENTRY || op === SYSCALL_SECCOMP)) this.entered = t
  }

  private anyReady(except: TracedThread): boolean {
    for (const t of this.threads.values()) if (t !== except && t.state === 'stopped' && !t.parked) return true
    return false
  }

  /**
   * Serial schedule, between two waits: the runner that entered a syscall either stops again soon
   * or falls asleep in it (then it hands over); without a runner, threads woken meanwhile reach
   * their stops and the next thread in round robin runs. Returns a stop met on the way.
   */
  private scheduleNext(): Stop | undefined {
    for (;;) {
      const t = this.entered
      if (t) {
        this.entered = undefined
        if (t !== this.runner || t.state !== 'running') continue
        const r = pollThread(this.pid, t)
        if (r.kind === 'status') {
          const stop = this.handle(r.w)
          if (stop) return stop
          continue
        }
        if (r.kind === 'zombie') t.state = 'exited'
        if (r.kind === 'asleep' || r.kind === 'zombie') this.runner = undefined
        if (r.kind === 'running') this.inSyscall = t
      }
      if (this.runner || this.timedOut) return undefined
      const { got, pending } = this.settle()
      for (const w of got) {
        const stop = this.handle(w)
        if (stop) return stop
      }
      // A thread on its way to a stop (on a busy machine it may wait long for a CPU): choose after it.
      if (pending) return undefined
      if (this.lapse) {
        this.lapse = false
        this.expireEarliest(true)
      }
      const next = nextThread(this.threads.values(), this.lastIndex)
      if (!next) {
        if (this.expireEarliest()) continue
        return undefined
      }
      this.runner = next
      this.lastIndex = next.index
      // Switched out at a syscall entry or seccomp stop: the syscall runs now, and may block.
      const op = this.liveThreads() > 1 ? ptraceSyscallOp(next.tid) : 0
      this.resumeRunner(next)
      if (op === SYSCALL_ENTRY || op === SYSCALL_SECCOMP) this.entered = next
    }
  }

  /**
   * Threads that run other than the runner (woken in their syscall, just created) reach their next
   * stop, so that which threads are ready does not depend on timing; those asleep stay asleep.
   * Returns the statuses collected, in thread order, and whether a thread is still on its way.
   */
  private settle(): { got: WaitResult[]; pending: boolean } {
    const got: WaitResult[] = []
    let pending = false
    for (const t of [...this.threads.values()].sort((a, b) => a.index - b.index)) {
      if (t.state !== 'running' || t === this.runner) continue
      const r = pollThread(this.pid, t)
      if (r.kind === 'status') got.push(r.w)
      else if (r.kind === 'zombie') t.state = 'exited'
      else if (r.kind === 'running') pending = true
    }
    return { got, pending }
  }

  /**
   * Serial schedule, every TICK_MS while waiting: a runner past its time slice is interrupted if
   * another thread is ready. CPU time, not wall time, so that a loaded machine does not preempt sooner.
   * True when the wait should end early: the runner fell asleep in a syscall that it entered long ago.
   */
  private tick(): boolean {
    const r = this.runner
    if (!r || r.state !== 'running' || this.preempt || this.timedOut || r.interruptPending) return false
    if (this.inSyscall === r && taskState(this.pid, r.tid) === 'S') {
      this.inSyscall = undefined
      this.entered = r
      return true
    }
    const ready = this.anyReady(r)
    if (!ready && !this.anyDeadline(r)) return false
    // Asleep where no syscall entry was seen (a page fault on userfaultfd, ...): it uses no CPU, so
    // the slice below would never end; after SLEEP_TICKS ticks it is interrupted all the same.
    const asleep = taskState(this.pid, r.tid) === 'S'
    this.asleepTicks = asleep ? this.asleepTicks + 1 : 0
    if (asleep && this.asleepTicks < SLEEP_TICKS) return false
    if (!asleep) {
      const cpu = cpuTime(this.pid, r.tid)
      if (cpu === undefined) return false
      this.sliceStart ??= cpu
      if (cpu - this.sliceStart < SLICE_NS) return false
    }
    if (ptraceInterrupt(r.tid) !== 0) return false
    r.interruptPending = true
    this.preempt = true
    this.preemptions++
    // Nothing else can run before the clock moves: the slice moves it (as a preemption, not deterministic).
    if (!ready) this.lapse = true
    return false
  }

  /** Virtual time: a thread other than `except` waits for a virtual deadline. */
  private anyDeadline(except: TracedThread): boolean {
    if (!this.hooks.onDeadline) return false
    for (const t of this.threads.values())
      if (t !== except && t.state !== 'exited' && t.deadline !== undefined) return true
    return false
  }

  private resumeAll(): void {
    for (const t of this.threads.values()) if (t.state === 'stopped') this.resume(t)
  }

  /** The leader called pthread_exit and every other thread is gone: the process's exit status is on its way. */
  private leaderLast(): boolean {
    return this.liveThreads() === 0 && this.threads.get(this.pid)?.state === 'exited'
  }

  /**
   * A leader that called pthread_exit is a zombie that never stops: not to be waited for. Checked
   * (one /proc read) only when it is the last thread still to stop.
   */
  private leaderZombie(): void {
    const leader = this.threads.get(this.pid)
    if (leader?.state !== 'running') return
    for (const t of this.threads.values()) if (t !== leader && t.state === 'running') return
    if (taskState(this.pid, this.pid) === 'Z') leader.state = 'exited'
  }

  private anyRunning(): boolean {
    for (const t of this.threads.values()) if (t.state === 'running') return true
    return false
  }

  private interruptAll(): void {
    for (const t of this.threads.values()) {
      if (t.state !== 'running' || t.interruptPending) continue
      if (ptraceInterrupt(t.tid) === 0) t.interruptPending = true
    }
  }

  /**
   * Wait until a stop worth reporting, then stop every other thread. `scheduling`: the serial
   * schedule chooses runners meanwhile. `focus`: the one thread that runs (a step); its exit ends the wait.
   */
  private async waitForStop(deadline: number, scheduling = false, focus?: TracedThread): Promise<Stop | Vanished> {
    // An interrupt asked for while the tracee was being resumed (a step over a breakpoint) holds for this wait too.
    this.timedOut = this.interruptRequested
    if (this.timedOut) this.interruptAll()
    const onDeadline = (): void => {
      this.timedOut = true
      this.interruptAll()
    }
    const tick = scheduling ? { ms: TICK_MS, run: () => this.tick() } : undefined
    for (;;) {
      let stop = scheduling ? this.scheduleNext() : undefined
      if (!stop) {
        if ((!this.anyRunning() || focus?.state === 'exited') && !this.exit && !this.leaderLast()) {
          // Every thread is stopped: after a timeout's interrupts, or because the one thread we ran is gone.
          if (!this.timedOut) return { kind: 'vanished' }
          if (this.interruptRequested) return { kind: 'interrupted', thread: focus ?? this.runner ?? this.current }
          return { kind: 'timeout', thread: this.current }
        }
        const w = await this.waiter.next(deadline, onDeadline, tick)
        if (w === 'tick') continue
        if (!w) return this.processGone()
        stop = this.handle(w)
        if (!stop) continue
      }
      if (stop.kind === 'exited' || stop.kind === 'killed') return stop
      if (stop.kind === 'breakpoint' && stop.hit.length === 0) {
        // Internal breakpoints only: handled, now carry on over it with all threads (serial: the
        // others cannot run user code meanwhile, a woken one stops at its syscall exit).
        if (this.schedule === 'free') await this.stopOthers(stop.thread)
        this.current = stop.thread
        const again = await this.stepOverBreakpoint(stop.thread, deadline)
        if (again) return this.afterStop(again)
        if (this.schedule === 'free') this.resumeAll()
        else if (stop.thread.state === 'stopped') this.proceed(stop.thread)
        continue
      }
      return this.afterStop(stop)
    }
  }

  private async afterStop(stop: Stop): Promise<Stop> {
    if (stop.kind === 'exited' || stop.kind === 'killed' || stop.kind === 'timeout' || stop.kind === 'interrupted')
      return stop
    await this.stopOthers(stop.thread)
    return this.exit ?? stop
  }

  /** All-stop: interrupt every running thread and wait until each has stopped. */
  private async stopOthers(except: TracedThread | undefined): Promise<void> {
    // Serial: threads woken meanwhile reach their syscall exit first, so what each shows is not a matter of timing.
    if (this.schedule === 'serial') for (const w of this.settle().got) this.absorb(w, except)
    if (!this.anyRunning()) return
    this.interruptAll()
    for (;;) {
      this.leaderZombie()
      if (!this.anyRunning() || this.exit) return
      const w = await this.waiter.next(performance.now() + 5000, () => this.interruptAll())
      if (!w) {
        this.processGone()
        return
      }
      this.absorb(w, except)
    }
  }

  /** One status met while stopping every thread: kept for later, or undone (a breakpoint hit). */
  private absorb(w: WaitResult, except: TracedThread | undefined): void {
    const stop = this.handle(w, true)
    if (!stop || stop.kind === 'timeout' || stop.kind === 'interrupted') return
    if (stop.kind === 'exited' || stop.kind === 'killed') return
    if (stop.thread === except) return
    if (stop.kind === 'breakpoint') {
      // Not reported: rewind so that the thread executes the int3 again when resumed.
      stop.thread.pc = stop.site.address
      stop.thread.rewound = true
      for (const bp of stop.hit) this.table.count(bp, -1)
      return
    }
    this.queued.push(stop)
  }

  private processGone(): ExitStop {
    this.exit ??= { kind: 'killed', signal: SIG.KILL }
    for (const t of this.threads.values()) t.state = 'exited'
    return this.exit
  }

  /**
   * Turns one wait status into a Stop, or handles it internally (and resumes the thread unless
   * `stopping`, when every thread is being brought to a halt) and returns undefined.
   */
  private handle(w: WaitResult, stopping = false): Stop | undefined {
    try {
      return this.handleStatus(w, stopping)
    } catch (error) {
      // Handling a stop reads registers and memory: a thread killed meanwhile (SIGKILL wakes a
      // stopped thread to die) answers ESRCH. It is on its way out: wait for its exit status.
      const t = this.threads.get(w.pid)
      if (!t || ptraceProbe(t.tid) !== ERRNO.ESRCH) throw error
      t.state = 'running'
      t.stepping = false
      return undefined
    }
  }

  private handleStatus(w: WaitResult, stopping: boolean): Stop | undefined {
    const { pid: tid, status } = w
    if (this.family && !this.threads.has(tid) && this.family.claim(w)) return undefined
    if (wifExited(status) || wifSignaled(status)) return this.threadEnded(tid, status)
    let t = this.threads.get(tid)
    t ??= this.addThread(tid) // a new thread whose first stop came before its parent's clone event
    t.state = 'stopped'
    t.invalidate()
    // A rewound thread keeps its int3 to execute until its pc moves: a stop that came first
    // (an interrupt, a signal) must not make the next resume step over the site and miss the hit.
    if (t.rewound && this.table.siteAt(t.pc) === undefined) t.rewound = false
    const sig = wStopSig(status)
    const event = wPtraceEvent(status)
    // Any other ptrace stop clears the kernel's pending PTRACE_INTERRUPT (ptrace_stop() in
    // kernel/signal.c): no PTRACE_EVENT_STOP will follow, so the thread must be interruptible again.
    if (event !== PTRACE_EVENT.STOP) t.interruptPending = false
    if (event !== 0) return this.ptraceEvent(t, event, stopping)
    if (sig === SYSCALL_STOP) {
      const op = ptraceSyscallOp(t.tid)
      if (t.traceExit && op === SYSCALL_EXIT) {
        t.traceExit = false
        this.hooks.onSyscallExit(t)
        // After a deadline this stop stands for the interrupt it cleared (a wait it broke off): stay stopped.
        if (this.timedOut) return undefined
      }
      if (!stopping) this.proceed(t, op)
      return undefined
    }
    if (sig === SIG.TRAP) {
      if (t.stepping) {
        t.stepping = false
        return { kind: 'step', thread: t }
      }
      const site = this.table.siteAt(t.pc - this.arch.pcAfterTrap)
      if (site?.inserted) return this.breakpointHit(t, site, stopping)
      // An int3 compiled into the program, or a SIGTRAP sent to it: a signal like any other.
      t.pendingSignal = sig
      return { kind: 'signal', thread: t, signal: sig, info: ptraceSiginfo(t.tid) }
    }
    if (sig === SIG.SEGV && this.hooks.onFault(t)) {
      if (!stopping) this.proceed(t)
      return undefined
    }
    if (PASS_THROUGH_SIGNALS.has(sig)) {
      // Delivered as the thread resumes, now or after the all-stop.
      t.pendingSignal = sig
      if (!stopping) this.proceed(t) // a thread stepping over a lifted site keeps stepping
      return undefined
    }
    t.pendingSignal = sig
    return { kind: 'signal', thread: t, signal: sig, info: ptraceSiginfo(t.tid) }
  }

  private threadEnded(tid: number, status: number): Stop | undefined {
    const t = this.threads.get(tid)
    if (t) t.state = 'exited'
    if (t && t === this.runner) this.runner = undefined
    if (tid !== this.pid) {
      if (t) this.threads.delete(tid)
      return undefined
    }
    this.exit = wifExited(status)
      ? { kind: 'exited', exitCode: wExitStatus(status) }
      : { kind: 'killed', signal: wTermSig(status) }
    for (const other of this.threads.values()) other.state = 'exited'
    return this.exit
  }

  private breakpointHit(t: TracedThread, site: Site, stopping: boolean): Stop | undefined {
    t.pc = site.address
    t.rewound = false // it executed the int3: a new hit
    const hit: Breakpoint[] = []
    let internal: Breakpoint | undefined
    for (const bp of site.owners) {
      if (!this.table.accepts(bp, t.tid)) continue
      if (bp.internal && !bp.temporary) {
        internal = bp
        continue
      }
      this.table.count(bp, 1)
      hit.push(bp)
    }
    if (internal && !stopping) this.hooks.onInternalHit(internal, t)
    if (hit.length === 0 && stopping) {
      // An internal or unconditional-miss site while halting: let it hit again later.
      t.rewound = true
      return undefined
    }
    return { kind: 'breakpoint', thread: t, site, hit }
  }

  private ptraceEvent(t: TracedThread, event: number, stopping: boolean): Stop | undefined {
    switch (event) {
      case PTRACE_EVENT.CLONE: {
        const child = Number(ptraceEventMsg(t.tid) ?? 0n)
        if (child > 0 && !this.threads.has(child)) {
          const nt = this.addThread(child)
          nt.state = 'running' // its first stop (PTRACE_EVENT_STOP) is on its way
        }
        break
      }
      case PTRACE_EVENT.FORK:
      case PTRACE_EVENT.VFORK:
        this.family?.forked(t.tid, event === PTRACE_EVENT.VFORK)
        break // the child's own first stop is handled in handle()
      case PTRACE_EVENT.EXEC:
        this.afterExec(t)
        break
      case PTRACE_EVENT.SECCOMP:
        this.hooks.onSeccomp(t)
        if (stopping) return undefined
        this.proceed(t, SYSCALL_SECCOMP) // the syscall may still block
        return undefined
      case PTRACE_EVENT.STOP:
        if (t.interruptPending) {
          t.interruptPending = false
          if (stopping || this.timedOut) return undefined
        }
        break
      default:
        break
    }
    if (stopping) return undefined
    this.proceed(t) // an event during a step-over (a late interrupt, a clone) keeps stepping
    return undefined
  }

  private afterExec(t: TracedThread): void {
    // The execing thread now has the leader's tid; every other thread is gone.
    for (const [tid, other] of this.threads) if (other !== t) this.threads.delete(tid)
    if (this.schedule === 'serial') this.runner = t
    this.hooks.onExec()
  }
}
