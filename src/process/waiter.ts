// Waiting for the next ptrace stop without blocking the event loop: a short spin on
// waitpid(WNOHANG) catches the quick stops (breakpoint loops) at native speed, then a
// waitpid on libuv's thread pool takes over, with a timer that fires the deadline.
import { setImmediate as turn } from 'node:timers/promises'
import { waitNoHang, waitOnPool, yieldCpu, type WaitResult } from '../native/ptrace.js'

/** How long to poll before handing the wait to the thread pool. */
const SPIN_MS = 1
/** Let the event loop take a turn at least this often, even when every stop comes back at once. */
const MAX_BUSY_MS = 20

/** Runs every `ms` while a wait blocks; returning true ends that wait early with 'tick'. */
export interface Tick {
  ms: number
  run: () => boolean
}

export class Waiter {
  private readonly target: number
  private readonly spinMs: number
  private lastTurn = performance.now()
  /** A wait on the thread pool that a tick left behind: the next call takes its status. */
  private pool: Promise<WaitResult | undefined> | undefined

  /** `target` is -pgid: every thread of the tracee, and nothing of libuv's; `spinMs` how long to poll first. */
  constructor(target: number, spinMs = SPIN_MS) {
    this.target = target
    this.spinMs = spinMs
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
    const spinUntil = performance.now() + this.spinMs
    for (; !this.pool;) {
      const r = waitNoHang(this.target)
      if (typeof r === 'object') return r
      if (typeof r === 'number') return undefined
      if (performance.now() > spinUntil) break
      yieldCpu()
    }
    let fired = false
    const fire = (): void => {
      if (fired) return
      fired = true
      onDeadline()
    }
    const delay = deadline - performance.now()
    if (delay <= 0) fire()
    const timer = delay > 0 && Number.isFinite(delay) ? setTimeout(fire, delay) : undefined
    let ticker: NodeJS.Timeout | undefined
    const woken = new Promise<'tick'>((resolve) => {
      if (tick) ticker = setInterval(() => tick.run() && resolve('tick'), tick.ms)
    })
    const pool = (this.pool ??= waitOnPool(this.target))
    try {
      const r = await Promise.race([pool.then((w) => ({ w })), woken])
      if (r === 'tick') return r
      this.pool = undefined
      return r.w
    } finally {
      if (timer) clearTimeout(timer)
      if (ticker) clearInterval(ticker)
      this.lastTurn = performance.now()
    }
  }
}
