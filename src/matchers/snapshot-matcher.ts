// toMatchProcessSnapshot: the matcher over a live process or a snapshot; the golden files and
// Vitest's snapshot workflow are src/golden's.
import type { MatcherState } from 'vitest'
import { ProcsnapError } from '../errors.js'
import {
  arrayOf,
  checkOptions,
  isBoolean,
  isNonEmptyString,
  isString,
  recordOf,
  rule,
  subsetOf,
  type OptionSchema,
} from '../options.js'
import { SNAPSHOT_OPTIONS } from '../snapshot/capture.js'
import { checkGolden, goldenContext, type ProcessSnapshotOptions, type Result } from '../golden/workflow.js'
import { Process } from '../process/process.js'
import type { ProcessSnapshot, ThreadSnapshot } from '../snapshot/snapshot.js'
import { subjectOf } from './subject.js'

/** `modules`: the libraries shown in full, by base name or RegExp, or 'all'. */
export const MODULES_OPTION = rule(
  "'all' or an array of library base names ('libplugin.so') and RegExps",
  (v) =>
    v === 'all' || (Array.isArray(v) && v.every((x) => (typeof x === 'string' && x !== '') || x instanceof RegExp)),
)

/** What toMatchProcessSnapshot's options accept, checked at run time (ERR_BAD_OPTION). */
const GOLDEN_OPTIONS: OptionSchema = {
  name: isString,
  include: subsetOf('stop', 'regs', 'backtrace', 'maps', 'memory'),
  memory: arrayOf(isNonEmptyString),
  vectorRegs: isBoolean,
  level: SNAPSHOT_OPTIONS.level ?? isString,
  redact: recordOf(rule('any value', () => true)),
  modules: MODULES_OPTION,
}

export function toMatchProcessSnapshot(
  this: MatcherState,
  received: unknown,
  nameOrOptions?: string | ProcessSnapshotOptions,
): Result {
  if (this.isNot)
    throw new ProcsnapError(
      'ERR_BAD_ARGUMENT',
      'toMatchProcessSnapshot cannot be used with .not: a golden either matches or is updated.',
    )
  subjectOf(received, 'toMatchProcessSnapshot') // throws for anything but a process or a snapshot
  if (typeof nameOrOptions !== 'string') checkOptions('toMatchProcessSnapshot', nameOrOptions, GOLDEN_OPTIONS)
  const options: ProcessSnapshotOptions =
    typeof nameOrOptions === 'string' ? { name: nameOrOptions } : (nameOrOptions ?? {})
  const context = goldenContext(this)
  if (!context)
    throw new ProcsnapError(
      'ERR_BAD_ARGUMENT',
      'toMatchProcessSnapshot runs inside a Vitest test only: call it from a test(), not at module level or in a hook.',
    )
  const snap =
    received instanceof Process
      ? received.createSnapshot({ level: options.level ?? 'writable' })
      : (received as ProcessSnapshot | ThreadSnapshot)
  return checkGolden(context, snap, options, received instanceof Process ? scheduleCaveat(received) : undefined)
}

/** What a mismatch should add when the run's thread order was not decided at deterministic points only. */
function scheduleCaveat(proc: Process): string | undefined {
  const slices = proc.timeSlices
  if (slices === 0) return undefined
  return (
    `Note: this run switched threads ${slices} time${slices === 1 ? '' : 's'} at the end of a time slice (a thread ` +
    'ran 30 ms of CPU without a syscall, a busy-wait), which is not deterministic: the difference may come from the ' +
    'schedule, not from the program (see schedule in the README)'
  )
}
