// The serial schedule's pieces that do not drive ptrace: thread run states read from /proc,
// waiting for one thread's next status, and the choice of the next thread to run.
import { readFileSync } from 'node:fs'
import { waitNoHang, yieldCpu, type WaitResult } from '../native/ptrace.js'
import type { TracedThread } from './thread.js'

/** 'serial' runs one thread at a time and switches at deterministic points; 'free' lets every thread run. */
export type Schedule = 'serial' | 'free'

/** A runner that uses this much CPU time without a stop, while another thread waits, is interrupted. */
export const SLICE_NS = 30_000_000
/** How often the time slice is checked while the tracer waits. */
export const TICK_MS = 10
/** A runner found asleep this many ticks in a row, outside a syscall we saw it enter, is switched out. */
export const SLEEP_TICKS = 3
/** Longest a thread is polled here for its next stop; then the tracer waits for it without blocking the event loop. */
const POLL_MS = 2
/** How long to poll waitpid alone before reading /proc (a syscall that returns at once stops within it). */
const SPIN_MS = 0.05

/** sched_yield: a thread that yields lets the next thread run, a deterministic switch point. */
export const SYS_SCHED_YIELD = 24n

/** The kernel's run state letter of a thread ('R', 'S', 'D', 't', 'Z', ...), undefined once it is gone. */
export function taskState(pid: number, tid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'latin1')
    return stat.charAt(stat.lastIndexOf(')') + 2)
  } catch {
    return undefined
  }
}

/** Nanoseconds a thread has run on a CPU (/proc/PID/task/TID/schedstat), undefined once it is gone. */
export function cpuTime(pid: number, tid: number): number | undefined {
  try {
    return Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'latin1').split(' ')[0])
  } catch {
    return undefined
  }
}

/**
 * Polls one running thread until its next status ('stopped' with it), or until it sleeps ('S': it waits
 * for another thread or the outside), or its leader became a zombie, or the poll gives up ('running').
 */
export function pollThread(
  pid: number,
  t: TracedThread,
): { kind: 'status'; w: WaitResult } | { kind: 'asleep' | 'zombie' | 'running' | 'gone' } {
  const start = performance.now()
  for (;;) {
    const w = waitNoHang(t.tid)
    if (typeof w === 'object') return { kind: 'status', w }
    if (typeof w === 'number') return { kind: 'gone' }
    const elapsed = performance.now() - start
    if (elapsed > SPIN_MS) {
      const state = taskState(pid, t.tid)
      if (state === 'S') return { kind: 'asleep' }
      // A leader that called pthread_exit stays a zombie, unreported, until the last thread ends.
      if (state === 'Z' && t.tid === pid) return { kind: 'zombie' }
      if (state === undefined) return { kind: 'gone' }
      if (elapsed > POLL_MS) return { kind: 'running' }
    }
    yieldCpu()
  }
}

/** Round robin by thread index: the first ready thread after `last`, else the first one. */
export function nextThread(threads: Iterable<TracedThread>, last: number): TracedThread | undefined {
  let first: TracedThread | undefined
  let after: TracedThread | undefined
  for (const t of threads) {
    if (t.state !== 'stopped' || t.parked) continue
    if (!first || t.index < first.index) first = t
    if (t.index > last && (!after || t.index < after.index)) after = t
  }
  return after ?? first
}
