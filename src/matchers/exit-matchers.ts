// Matchers on how a live process ended and what it printed.
import type { MatcherState, MatcherResult } from 'vitest'
import { ProcsnapError } from '../errors.js'
import { signalName } from '../native/constants.js'
import type { Process } from '../process/process.js'
import { droppedNote } from '../process/stdio.js'
import { subjectOf } from './subject.js'

type Result = Exclude<MatcherResult, Promise<unknown>>

function liveProcess(received: unknown, matcher: string): Process {
  const s = subjectOf(received, matcher)
  if (!s.process)
    throw new ProcsnapError('ERR_BAD_ARGUMENT', `${matcher} takes a live Process: a snapshot does not end or print.`)
  return s.process
}

function ending(proc: Process): string {
  const exit = proc.exit
  if (!exit) return `it is still alive, stopped at ${proc.symbolize(proc.thread.pc)}: await proc.wait() first`
  return exit.signal !== undefined ? `it was killed by ${exit.signal}` : `it exited with ${exit.exitCode}`
}

export function toHaveExited(this: MatcherState, received: unknown, code?: number): Result {
  const proc = liveProcess(received, 'toHaveExited')
  const exit = proc.exit
  const pass = exit !== undefined && exit.signal === undefined && (code === undefined || exit.exitCode === code)
  const what = code === undefined ? 'to have exited' : `to have exited with ${code}`
  return {
    pass,
    message: () =>
      `expected process ${proc.pid} ${this.isNot ? 'not ' : ''}${what}; ` +
      `${ending(proc)}${proc.stderr ? `\nits stderr${droppedNote(proc.outputDropped.stderr)}: ${proc.stderr.slice(-500).trimEnd()}` : ''}`,
  }
}

export function toHaveBeenKilledBy(this: MatcherState, received: unknown, signal: string | number): Result {
  const proc = liveProcess(received, 'toHaveBeenKilledBy')
  const name =
    typeof signal === 'number'
      ? signalName(signal)
      : signal.toUpperCase().startsWith('SIG')
        ? signal.toUpperCase()
        : `SIG${signal.toUpperCase()}`
  const pass = proc.exit?.signal === name
  return {
    pass,
    message: () =>
      `expected process ${proc.pid} ${this.isNot ? 'not ' : ''}to have been killed by ${name}; ${ending(proc)}`,
  }
}

export function toHaveOutput(
  this: MatcherState,
  received: unknown,
  expected: { stdout?: unknown; stderr?: unknown },
): Result {
  const proc = liveProcess(received, 'toHaveOutput')
  const actual = { stdout: proc.stdout, stderr: proc.stderr }
  const wrong = (['stdout', 'stderr'] as const).filter(
    (k) => expected[k] !== undefined && !this.equals(actual[k], expected[k]),
  )
  const pass = wrong.length === 0
  return {
    pass,
    message: () =>
      this.isNot
        ? `expected process ${proc.pid} not to have printed ${this.utils.stringify(expected)}`
        : wrong
            .map(
              (k) =>
                `${k} of process ${proc.pid}${droppedNote(proc.outputDropped[k])}:\n` +
                (this.utils.diff(expected[k], actual[k]) ??
                  `expected ${this.utils.stringify(expected[k])}, received ${this.utils.stringify(actual[k])}`),
            )
            .join('\n'),
    actual: Object.fromEntries(wrong.map((k) => [k, actual[k]])),
    expected: Object.fromEntries(wrong.map((k) => [k, expected[k]])),
  }
}
