// The all-stop engine: resumes the tracee's threads, turns wait statuses into stops, handles
// clone/fork/exec events and breakpoint step-over, and stops every thread before a stop is reported.
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
  sendSignal,
  type SigInfo,
  type WaitResult,
} from '../native/ptrace.js'
import type { Breakpoint, BreakpointTable, Site } from './breakpoints.js'
import { TracedThread } from './thread.js'
import { Waiter } from './waiter.js'
import { readFileSync } from 'node:fs'

/** Why the tracee stopped, before symbolization (the Process turns it into a StopEvent). */
export type Stop =
  | { kind: 'breakpoint'; thread: TracedThread; site: Site; hit: Breakpoint[] }
  | { kind: 'step'; thread: TracedThread }
  | { kind: 'signal'; thread: TracedThread; signal: number; info: SigInfo | undefined }
  | { kind: 'exited'; exitCode: number }
  | { kind: 'killed'; signal: number }
  | { kind: 'timeout'; thread: TracedThread }

export type ExitStop = Extract<Stop, { kind: 'exited' | 'killed' }>

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
  /** A forked child stopped: remove our breakpoints from its copy of memory before it is let go. */
  cleanForkedChild(pid: number): void
  /** A seccomp filter stopped the thread at a syscall (launch's fixedRandom: getrandom). */
  onSeccomp(thread: TracedThread): void
  /** A SIGSEGV the owner may handle (an rdtsc while TSC faulting is on): true when it did, and the thread goes on. */
  onFault(thread: TracedThread): boolean
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

  private readonly guard: () => void
  /** Step over simple instructions at breakpoints by emulating them (launch's `emulateStepOver`). */
  emulate = true

  /**
   * `guard` runs before any register access and throws if the process can no longer be used;
   * `group` is the tracee's process group (an isolated tracee's init leads it).
   */
  constructor(pid: number, arch: Arch, table: BreakpointTable, hooks: TracerHooks, guard: () => void, group = pid) {
    this.pid = pid
    this.arch = arch
    this.table = table
    this.hooks = hooks
    this.guard = guard
    this.waiter = new Waiter(-group)
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
    return this.report(await this.waitRunning(deadline))
  }

  /** waitForStop, for callers that let every thread run: a vanished thread means nothing is left. */
  private async waitRunning(deadline: number): Promise<Stop> {
    const stop = await this.waitForStop(deadline)
    return stop.kind === 'vanished' ? this.processGone() : stop
  }

  /** Continue every thread until the next stop worth reporting. */
  async cont(deadline: number): Promise<Stop> {
    const queued = this.queued.shift()
    if (queued) return this.report(queued)
    const stepped = await this.stepOverAll(deadline)
    if (stepped) return this.report(stepped)
    this.resumeAll()
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

  /** One instruction in the current thread; the other threads stay stopped. */
  async step(deadline: number): Promise<Stop> {
    const queued = this.queued.shift()
    if (queued) return this.report(queued)
    const t = this.current
    const site = this.siteUnder(t)
    if (site) this.table.lift(site)
    try {
      this.resume(t, true)
      const stop = await this.waitForStop(deadline)
      if (stop.kind !== 'vanished') return this.report(stop)
    } finally {
      if (site && !this.exit) this.table.reinsert(site)
    }
    // The stepped thread exited (its instruction ended it): the others carry on.
    this.resumeAll()
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
      const stop = await this.waitForStop(deadline)
      if (stop.kind === 'vanished' || (stop.kind === 'step' && stop.thread === t)) return undefined
      return stop
    } finally {
      if (!this.exit) this.table.reinsert(site)
    }
  }

  /** Executes the instruction under the int3 in the tracer (push, endbr64, ...) when it is that simple. */
  private emulateOver(t: TracedThread, site: Site): boolean {
    const { decodeEmulation, applyEmulation } = this.arch
    if (!decodeEmulation || !applyEmulation) return false
    if (site.emulation === undefined) {
      const code = this.table.codeAt(site, 4)
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
    const err = step ? ptraceStep(t.tid, signal) : ptraceCont(t.tid, signal)
    // ESRCH: the thread was killed while stopped (SIGKILL, ours or not): it is on its way out, and
    // its exit status is what the wait reports next.
    if (err !== 0 && err !== ERRNO.ESRCH) {
      throw new PtraceError('ERR_PTRACE', err, `Resuming thread ${t.tid} failed (${errnoName(err)}).`)
    }
    t.state = 'running'
  }

  private resumeAll(): void {
    for (const t of this.threads.values()) if (t.state === 'stopped') this.resume(t)
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

  /** Wait until a stop worth reporting, then stop every other thread. */
  private async waitForStop(deadline: number): Promise<Stop | Vanished> {
    this.timedOut = false
    const onDeadline = (): void => {
      this.timedOut = true
      this.interruptAll()
    }
    for (;;) {
      if (!this.anyRunning() && !this.exit) {
        // Every thread is stopped: after a timeout's interrupts, or because the one thread we ran is gone.
        return this.timedOut ? { kind: 'timeout', thread: this.current } : { kind: 'vanished' }
      }
      const w = await this.waiter.next(deadline, onDeadline)
      if (!w) return this.processGone()
      const stop = this.handle(w)
      if (!stop) continue
      if (stop.kind === 'exited' || stop.kind === 'killed') return stop
      if (stop.kind === 'breakpoint' && stop.hit.length === 0) {
        // Internal breakpoints only: handled, now carry on over it with all threads.
        await this.stopOthers(stop.thread)
        this.current = stop.thread
        const again = await this.stepOverBreakpoint(stop.thread, deadline)
        if (again) return this.afterStop(again)
        this.resumeAll()
        continue
      }
      return this.afterStop(stop)
    }
  }

  private async afterStop(stop: Stop): Promise<Stop> {
    if (stop.kind === 'exited' || stop.kind === 'killed' || stop.kind === 'timeout') return stop
    await this.stopOthers(stop.thread)
    return this.exit ?? stop
  }

  /** All-stop: interrupt every running thread and wait until each has stopped. */
  private async stopOthers(except: TracedThread): Promise<void> {
    if (!this.anyRunning()) return
    this.interruptAll()
    while (this.anyRunning() && !this.exit) {
      const w = await this.waiter.next(performance.now() + 5000, () => this.interruptAll())
      if (!w) {
        this.processGone()
        return
      }
      const stop = this.handle(w, true)
      if (!stop || stop.kind === 'timeout') continue
      if (stop.kind === 'exited' || stop.kind === 'killed') return
      if (stop.thread === except) continue
      if (stop.kind === 'breakpoint') {
        // Not reported: rewind so that the thread executes the int3 again when resumed.
        stop.thread.pc = stop.site.address
        stop.thread.rewound = true
        for (const bp of stop.hit) this.table.count(bp, -1)
        continue
      }
      this.queued.push(stop)
    }
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
    if (wifExited(status) || wifSignaled(status)) return this.threadEnded(tid, status)
    let t = this.threads.get(tid)
    if (!t) {
      if (this.isForkedChild(tid)) {
        this.releaseForkedChild(tid)
        return undefined
      }
      t = this.addThread(tid) // a new thread whose first stop came before its parent's clone event
    }
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
      if (!stopping) this.resume(t, t.stepping)
      return undefined
    }
    if (PASS_THROUGH_SIGNALS.has(sig)) {
      // Delivered as the thread resumes, now or after the all-stop.
      t.pendingSignal = sig
      if (!stopping) this.resume(t, t.stepping) // a thread stepping over a lifted site keeps stepping
      return undefined
    }
    t.pendingSignal = sig
    return { kind: 'signal', thread: t, signal: sig, info: ptraceSiginfo(t.tid) }
  }

  private threadEnded(tid: number, status: number): Stop | undefined {
    const t = this.threads.get(tid)
    if (t) t.state = 'exited'
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
        break // the child's own first stop is handled in handle()
      case PTRACE_EVENT.EXEC:
        this.afterExec(t)
        break
      case PTRACE_EVENT.SECCOMP:
        this.hooks.onSeccomp(t)
        break
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
    this.resume(t, t.stepping) // an event during a step-over (a late interrupt, a clone) keeps stepping
    return undefined
  }

  private afterExec(t: TracedThread): void {
    // The execing thread now has the leader's tid; every other thread is gone.
    for (const [tid, other] of this.threads) if (other !== t) this.threads.delete(tid)
    this.hooks.onExec()
  }

  private isForkedChild(tid: number): boolean {
    try {
      const status = readFileSync(`/proc/${tid}/status`, 'latin1')
      const tgid = /^Tgid:\s+(\d+)/m.exec(status)?.[1]
      return tgid !== undefined && Number(tgid) !== this.pid && Number(tgid) === tid
    } catch {
      return false
    }
  }

  /** A child forked by the tracee: it got a copy of our int3s; restore the bytes and let it go. */
  private releaseForkedChild(pid: number): void {
    try {
      this.hooks.cleanForkedChild(pid)
    } finally {
      ptraceDetach(pid, 0)
    }
  }
}
