// toHaveCrashed: the process (or snapshot) is at, or ended in, a crash, of this signal, at this
// function, with this signature. A process launched with { crash: 'snapshot' } is judged by the
// crash it caught; one stopped at a fatal signal, by a snapshot of that stop.
import type { MatcherResult, MatcherState } from 'vitest'
import { crashReport, type CrashReport } from '../crash/report.js'
import { CRASH_SIGNALS } from '../crash/signals.js'
import '../crash/capture.js'
import { ProcsnapError } from '../errors.js'
import { Process } from '../process/process.js'
import { ProcessSnapshot } from '../snapshot/snapshot.js'

type Result = Exclude<MatcherResult, Promise<unknown>>

/** What toHaveCrashed checks; each field left out is not checked. */
export interface ExpectedCrash {
  /** 'SIGSEGV' (or 'SEGV', 11). */
  signal?: string | number
  /** The function it crashed in: 'store_null' or 'crashes!store_null' (CrashReport.at). */
  at?: string
  /** The crash signature's 16 hex digits. */
  signature?: string
}

/** The crash report of the subject, or why there is none. */
function crashOf(received: unknown): { report: CrashReport; label: string } | { none: string; label: string } {
  if (received instanceof Process) {
    const label = `process ${received.pid}`
    if (received.crash) return { report: received.crash.report, label }
    const last = received.lastStop
    if (received.exit === undefined && last?.kind === 'signal' && CRASH_SIGNALS.has(last.signal)) {
      const snapshot = received.createSnapshot({ level: 'writable', incremental: false })
      if (snapshot instanceof ProcessSnapshot) return { report: crashReport(snapshot), label }
    }
    const exit = received.exit
    const state =
      exit === undefined
        ? `it is stopped at ${last ? `a ${last.kind} stop` : 'its start'}${last?.kind === 'signal' ? ` (${last.signal})` : ''}`
        : exit.signal !== undefined
          ? `it was killed by ${exit.signal}, but no crash was caught: launch it with { crash: 'snapshot' }`
          : `it exited with ${exit.exitCode}`
    return { none: state, label }
  }
  if (received instanceof ProcessSnapshot) {
    const label = `snapshot${received.name ? ` "${received.name}"` : ''}`
    const stop = received.stop
    if (stop?.kind === 'signal' && CRASH_SIGNALS.has(stop.signal)) return { report: crashReport(received), label }
    return { none: `it was taken at ${stop ? `a ${stop.kind} stop` : 'no stop'}`, label }
  }
  throw new ProcsnapError(
    'ERR_BAD_ARGUMENT',
    'toHaveCrashed takes a live Process or a whole-process snapshot (proc.createSnapshot(), loadSnapshot()).',
  )
}

function signalOf(signal: string | number): string {
  if (typeof signal === 'number') return `signal ${signal}`
  const upper = signal.toUpperCase()
  return upper.startsWith('SIG') ? upper : `SIG${upper}`
}

export function toHaveCrashed(this: MatcherState, received: unknown, expected: ExpectedCrash = {}): Result {
  const found = crashOf(received)
  const wanted: string[] = []
  if (expected.signal !== undefined) wanted.push(`signal ${signalOf(expected.signal)}`)
  if (expected.at !== undefined) wanted.push(`at ${expected.at}`)
  if (expected.signature !== undefined) wanted.push(`signature ${expected.signature}`)
  const what = `to have crashed${wanted.length > 0 ? ` (${wanted.join(', ')})` : ''}`
  if ('none' in found)
    return { pass: false, message: () => `expected ${found.label} ${this.isNot ? 'not ' : ''}${what}; ${found.none}` }
  const r = found.report
  const wrong: string[] = []
  if (expected.signal !== undefined) {
    const ok =
      typeof expected.signal === 'number' ? r.signo === expected.signal : r.signal === signalOf(expected.signal)
    if (!ok) wrong.push(`signal: ${r.signal}`)
  }
  if (expected.at !== undefined && r.at !== expected.at && r.at?.split('!')[1] !== expected.at)
    wrong.push(`at: ${r.at ?? '(unknown)'}`)
  if (expected.signature !== undefined && r.signature !== expected.signature)
    wrong.push(`signature: ${r.signature} (${r.signatureText})`)
  return {
    pass: wrong.length === 0,
    message: () =>
      `expected ${found.label} ${this.isNot ? 'not ' : ''}${what}; it crashed: ${r.cause}` +
      `${wrong.length > 0 ? `\n  ${wrong.join('\n  ')}` : ''}\n  signature ${r.signature} (${r.signatureText})`,
  }
}
