// toHaveCrashed: the process (or snapshot) is at, or ended in, a crash, of this signal, at this
// function, with this signature. A process launched with { crash: 'snapshot' } is judged by the
// crash it caught; one stopped at a fatal signal, by a snapshot of that stop.
import type { MatcherResult, MatcherState } from 'vitest'
import { crashReport, type CrashReport } from '../crash/report.js'
import { frameName, isRuntimeFrame } from '../crash/signature.js'
import type { Frame } from '../snapshot/model.js'
import { CRASH_SIGNALS } from '../crash/signals.js'
import '../crash/capture.js'
import { ProcsnapError } from '../errors.js'
import type { GoldenSection } from '../golden/render.js'
import { checkGolden, goldenContext } from '../golden/workflow.js'
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
export function crashOf(received: unknown): { report: CrashReport; label: string } | { none: string; label: string } {
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

/** The golden view of a crash: what stays while the crash does (no address, no offset, no pid). */
export function crashSections(found: ReturnType<typeof crashOf>): GoldenSection[] {
  if ('none' in found) return [{ title: 'crash', entries: [{ label: 'none', value: found.none }] }]
  const r = found.report
  const entries = [
    { label: 'signal', value: r.codeName ? `${r.signal} ${r.codeName} (${r.codeMeaning ?? ''})` : r.signal },
    ...(r.access ? [{ label: 'access', value: r.access }] : []),
    { label: 'at', value: r.at ?? '?' },
    ...(r.abortMessage ? [{ label: 'abort message', value: JSON.stringify(r.abortMessage.trim()) }] : []),
    { label: 'signature', value: `${r.signature} ${r.signatureText}` },
  ]
  // The program's part of the stack: not the C library's abort machinery above it (for a signal it
  // sent itself) nor its start code below (both vary with the libc version), nor what did not unwind.
  const frames: { label: string; value: string }[] = []
  let i = 0
  if (r.code <= 0) while (i < r.backtrace.length && isRuntimeFrame(r.backtrace[i] as Frame)) i++
  let own = false
  for (; i < r.backtrace.length; i++) {
    const f = r.backtrace[i] as Frame
    if ((frames.length > 0 && f.module === undefined) || (own && isRuntimeFrame(f))) break
    own ||= !isRuntimeFrame(f)
    frames.push({ label: `#${frames.length}`, value: frameName(f) }) // from 0: libc's frames above vary in number
  }
  return [
    { title: 'crash', entries },
    { title: `backtrace of thread ${r.thread}`, entries: frames },
  ]
}

/**
 * toMatchCrashReport: the crash (or that there was none: the way the process ended) against its
 * golden in __process_snapshots__, in Vitest's snapshot workflow, so that CI fails when a crash
 * changes, disappears or appears. Holds the signal, access, function, abort message, signature and
 * the program's frames: nothing that moves with addresses, machines, the C library's version or time.
 */
export function toMatchCrashReport(this: MatcherState, received: unknown, name?: string): Result {
  if (this.isNot)
    throw new ProcsnapError(
      'ERR_BAD_ARGUMENT',
      'toMatchCrashReport cannot be used with .not: a golden either matches or is updated.',
    )
  if (received instanceof Process && received.exit === undefined && received.lastStop?.kind !== 'signal')
    throw new ProcsnapError(
      'ERR_BAD_ARGUMENT',
      `toMatchCrashReport takes a process that ended (await proc.wait()) or is stopped at a fatal signal; process ${received.pid} is stopped at ${received.lastStop ? `a ${received.lastStop.kind} stop` : 'its start'}.`,
    )
  const context = goldenContext(this)
  if (!context)
    throw new ProcsnapError(
      'ERR_BAD_ARGUMENT',
      'toMatchCrashReport runs inside a Vitest test only: call it from a test().',
    )
  const found = crashOf(received)
  return checkGolden(context, () => crashSections(found), name === undefined ? {} : { name })
}
