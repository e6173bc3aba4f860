// Waiting for the next ptrace stop without blocking the event loop and without taking a thread
// from libuv's pool (which fs, dns and zlib share: four blocked waits used to starve them, and a
// worker thread blocked in waitpid could not be terminated). A short spin on waitpid(WNOHANG)
// catches the quick stops (breakpoint loops) at native speed; then the wait sleeps on the event
// loop and polls again at each SIGCHLD (the kernel sends one to the tracer at every ptrace stop;
// Node delivers signals to the main thread only) and on a timer that backs off to a few ms
// (worker threads, and a safety net for the main thread).
// While a launch's tracee shares this thread's CPU, to its entry point (startNaps), the main thread
// sleeps in the kernel instead, until the SIGCHLD of the next stop: a longer spin would starve an
// isolated tracee, whose session (setsid) is a scheduling group of its own (autogroup), where
// sched_yield gives it nothing; and no stop waits for a timer of the event loop.
import { setImmediate as turn } from 'node:timers/promises'
import { isMainThread } from 'node:worker_threads'
import { napUntilSignal, waitNoHang, yieldCpu, type WaitResult } from '../native/ptrace.js'

/** How long to poll before sleeping on the event loop. */
export const SPIN_MS = 1
/** Let the event loop take a turn at least this often, even when every stop comes back at once. */
const MAX_BUSY_MS = 20
/** The timer's longest interval: a stop is seen this late at worst (main thread: SIGCHLD comes first). */
const MAX_POLL_MS = isMainThread ? 20 : 10
/** The timer's interval grows with the wait: at most this fraction of the time waited so far is added. */
const POLL_FRACTION = 0.1

/**
 * How long a napping wait spins first. Longer, the spin takes half the CPU from a tracee that runs
 * long (an isolated one, in its own scheduling group, gets no more than its fair share).
 */
const NAP_SPIN_MS = 0.1
/** A kernel nap's longest slice: a SIGCHLD that came between the poll and the nap is seen this late. */
const NAP_MS = 1

/** Runs every `ms` while a wait blocks; returning true ends that wait early with 'tick'. */
export interface Tick {
  ms: number
  run: () => boolean
}

/** One SIGCHLD listener for every waiter of this thread, installed while one sleeps. */
const sleepers = new Set<() => void>()
const wakeAll = (): void => {
  for (const wake of [...sleepers]) wake()
}

/** Resolves after `ms`, or at the next SIGCHLD, whichever comes first. */
function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer)
      sleepers.delete(done)
      if (sleepers.size === 0 && isMainThread) process.off('SIGCHLD', wakeAll)
      resolve()
    }
    const timer = setTimeout(done, ms)
    if (isMainThread && sleepers.size === 0) process.on('SIGCHLD', wakeAll)
    sleepers.add(done)
  })
}

/** Launches of this thread whose tracee shares its CPU, not yet at their entry point (launch.ts). */
let naps = 0
/** The listener stays this long after the last launch's entry point: adding one costs ~40 µs, removing it as much. */
const LINGER_MS = 250
let listening = false
let unlisten: NodeJS.Timeout | undefined
const ignore = (): void => {}

/**
 * From now until `stopNaps` (a launch whose tracee shares this thread's CPU, to its entry point), waits
 * of the main thread spin only NAP_SPIN_MS, then sleep in the kernel until a SIGCHLD (a listener makes
 * one interrupt the sleep), at most MAX_BUSY_MS before the event loop turns.
 */
export function startNaps(): void {
  if (!isMainThread) return
  naps++
  if (!listening) process.on('SIGCHLD', ignore)
  listening = true
}

export function stopNaps(): void {
  if (!isMainThread || naps === 0 || --naps > 0) return
  // One timer, re-armed after each launch (cheaper than a new one); it finds naps > 0 if a launch began since.
  if (unlisten) unlisten.refresh()
  else unlisten = setTimeout(unlistenIdle, LINGER_MS).unref()
}

function unlistenIdle(): void {
  if (naps > 0 || !listening) return
  process.off('SIGCHLD', ignore)
  listening = false
}

export class Waiter {
  private readonly target: number
  private readonly spinMs: number | undefined
  private readonly outside: () => Iterable<number>
  private lastTurn = performance.now()

  /**
   * `target` is -pgid: every thread of the tracee, and nothing of libuv's; `spinMs` how long to
   * poll first (default SPIN_MS, NAP_SPIN_MS while napping); `outside` lists traced tids that may
   * have left that process group (setsid, setpgid: a forked child, or the program itself), polled
   * one by one while the wait sleeps.
   */
  constructor(target: number, spinMs?: number, outside: () => Iterable<number> = () => []) {
    this.target = target
    this.spinMs = spinMs
    this.outside = outside
  }

  /**
   * The next status of any traced thread, or undefined when none is left (ECHILD).
   * `onDeadline` runs once if `deadline` (a performance.now() time) passes first; it should
   * interrupt the tracee, so that a status arrives soon after. `tick`, if given, runs every
   * `tick.ms` while the wait blocks (the serial schedule's time slice).
   */
  async next(deadline: number, onDeadline: () => void): Promise<WaitResult | undefined>
  async next(deadline: number, onDeadline: () => void, tick?: Tick): Promise<WaitResult | undefined | 'tick'>
  async next(deadline: number, onDeadline: () => void, tick?: Tick): Promise<WaitResult | undefined | 'tick'> {
    if (performance.now() - this.lastTurn > MAX_BUSY_MS) {
      await turn()
      this.lastTurn = performance.now()
    }
    // Napping: a short spin first (most stops of a launch come within it), then the kernel naps.
    const napping = naps > 0
    const spinUntil = performance.now() + (this.spinMs ?? (napping ? NAP_SPIN_MS : SPIN_MS))
    for (;;) {
      const r = this.poll(true)
      if (r !== 'none') return r
      if (performance.now() > spinUntil) break
      yieldCpu()
    }
    if (napping) {
      const r = this.nap(deadline, tick)
      if (r !== 'none') return r
    }
    try {
      return await this.sleepUntilStatus(deadline, onDeadline, tick)
    } finally {
      this.lastTurn = performance.now()
    }
  }

  /** Sleeps in the kernel between polls until a status, the deadline or MAX_BUSY_MS ('none': the loop's turn). */
  private nap(deadline: number, tick: Tick | undefined): WaitResult | undefined | 'none' {
    const until = Math.min(deadline, performance.now() + Math.min(MAX_BUSY_MS, tick?.ms ?? MAX_BUSY_MS))
    for (;;) {
      const r = this.poll(true)
      if (r !== 'none') return r
      if (performance.now() >= until) return 'none'
      napUntilSignal(NAP_MS)
    }
  }

  private async sleepUntilStatus(
    deadline: number,
    onDeadline: () => void,
    tick: Tick | undefined,
  ): Promise<WaitResult | undefined | 'tick'> {
    const start = performance.now()
    let fired = false
    let lastTick = start
    for (;;) {
      const now = performance.now()
      if (!fired && now >= deadline) {
        fired = true
        onDeadline()
      }
      let delay = Math.min(MAX_POLL_MS, Math.max(1, (now - start) * POLL_FRACTION))
      if (!fired) delay = Math.min(delay, Math.max(0, deadline - now))
      if (tick) delay = Math.min(delay, Math.max(0, lastTick + tick.ms - now))
      await sleep(delay)
      const r = this.poll(false)
      if (r !== 'none') return r
      if (tick && performance.now() - lastTick >= tick.ms) {
        lastTick = performance.now()
        if (tick.run()) return 'tick'
      }
    }
  }

  /** A ready status; undefined when nothing traced is left; 'none' while they run. `groupOnly`: skip the tids (the spin). */
  private poll(groupOnly: boolean): WaitResult | undefined | 'none' {
    const r = waitNoHang(this.target)
    if (typeof r === 'object') return r
    const groupGone = typeof r === 'number'
    // A tid target (an attached process: no group to wait on) polls its other threads in the spin too.
    if (groupOnly && !groupGone && this.target < 0) return 'none'
    let outsideAlive = false
    for (const tid of this.outside()) {
      const s = waitNoHang(tid)
      if (typeof s === 'object') return s
      if (s === undefined) outsideAlive = true
    }
    return groupGone && !outsideAlive ? undefined : 'none'
  }
}
