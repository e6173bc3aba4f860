// launch(..., { crash: 'snapshot' }): at a fatal signal the process is snapshotted before the signal
// is delivered, as a crash handler would save it, and `proc.crash` keeps the snapshot and its report.
// A signal the program handles itself (a SIGSEGV handler, a JVM's) is not a crash: it runs on.
import { readFileSync } from 'node:fs'
import type { SignalStop } from '../process/events.js'
import { Process } from '../process/process.js'
import type { ProcessSnapshot } from '../snapshot/snapshot.js'
import { crashReport, type CrashReport } from './report.js'
import { CRASH_SIGNALS } from './signals.js'

/** A crash caught by launch's { crash: 'snapshot' }. */
export interface Crash {
  /** The process at the fatal signal, before it was delivered ('writable'). */
  readonly snapshot: ProcessSnapshot
  readonly report: CrashReport
}

declare module '../process/process.js' {
  interface Process {
    /** The crash caught by launch's { crash: 'snapshot' }: the last fatal signal's snapshot and report; undefined if none. */
    readonly crash: Crash | undefined
  }
}

const crashes = new WeakMap<Process, Crash>()

Object.defineProperty(Process.prototype, 'crash', {
  get(this: Process): Crash | undefined {
    return crashes.get(this)
  },
})

Process.atCrash = (proc: Process, stop: SignalStop): void => {
  if (!CRASH_SIGNALS.has(stop.signal) || handles(proc.pid, stop.signo)) return
  const snapshot = proc.createSnapshot({ level: 'writable', name: `crash: ${stop.signal}`, incremental: false })
  if (snapshot.kind !== 'process') return
  const crash = { snapshot, report: crashReport(snapshot) }
  crashes.set(proc, crash)
  for (const listener of listeners) listener(crash)
}

const listeners = new Set<(crash: Crash) => void>()

/** Calls `listener` with every crash caught from now on in this thread (the plugin attaches them to the test); returns the unsubscribe. */
export function onCrash(listener: (crash: Crash) => void): () => void {
  listeners.add(listener)
  return () => listeners.delete(listener)
}

/** Whether the process has a handler of its own for `signo` (SigCgt in /proc/PID/status); unknown counts as none. */
function handles(pid: number, signo: number): boolean {
  try {
    const caught = /^SigCgt:\s*([0-9a-f]+)/m.exec(readFileSync(`/proc/${pid}/status`, 'latin1'))?.[1]
    return caught !== undefined && ((BigInt(`0x${caught}`) >> BigInt(signo - 1)) & 1n) === 1n
  } catch {
    return false
  }
}
