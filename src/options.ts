// Run-time checks of option objects, for JavaScript callers and casts that TypeScript cannot see: an
// unknown name, a wrong type or an out-of-range value is ERR_BAD_OPTION, naming the option and what
// it accepts. A leaf module like errors.ts: every layer may use it.
import { ProcsnapError } from './errors.js'

/** One option's rule: what it accepts, in words for the message, and the test of a value. */
export interface OptionRule {
  readonly accepts: string
  readonly test: (value: unknown) => boolean
}

export type OptionSchema = Readonly<Record<string, OptionRule>>

export const rule = (accepts: string, test: (value: unknown) => boolean): OptionRule => ({ accepts, test })

export const isBoolean = rule('true or false', (v) => typeof v === 'boolean')
export const isString = rule('a string', (v) => typeof v === 'string')
export const isNonEmptyString = rule('a non-empty string', (v) => typeof v === 'string' && v !== '')

export function oneOf(...values: readonly string[]): OptionRule {
  return rule(values.map((v) => `'${v}'`).join(', '), (v) => typeof v === 'string' && values.includes(v))
}

/** A whole number within [min, max]. */
export function integerIn(min: number, max: number, unit = ''): OptionRule {
  return rule(
    `a whole number${unit ? ` of ${unit}` : ''} from ${min} to ${max}`,
    (v) => typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max,
  )
}

/** An array whose every element passes `element`; `nonEmpty` refuses []. */
export function arrayOf(element: OptionRule, nonEmpty = false): OptionRule {
  return rule(
    `${nonEmpty ? 'a non-empty' : 'an'} array of ${element.accepts.replace(/^an? /, '')}`,
    (v) => Array.isArray(v) && (!nonEmpty || v.length > 0) && v.every((e) => element.test(e)),
  )
}

/** An array of distinct names from `values`, at least one. */
export function subsetOf(...values: readonly string[]): OptionRule {
  return rule(
    `a non-empty array of distinct names from ${values.map((v) => `'${v}'`).join(', ')}`,
    (v) =>
      Array.isArray(v) &&
      v.length > 0 &&
      new Set(v).size === v.length &&
      v.every((e) => typeof e === 'string' && values.includes(e)),
  )
}

/** A plain object whose every value passes `value`. */
export function recordOf(value: OptionRule): OptionRule {
  return rule(
    `an object whose values are ${value.accepts}`,
    (v) => isPlainObject(v) && Object.values(v).every(value.test),
  )
}

export function either(a: OptionRule, b: OptionRule): OptionRule {
  return rule(`${a.accepts} or ${b.accepts}`, (v) => a.test(v) || b.test(v))
}

export const isBytes = rule('a Uint8Array', (v) => v instanceof Uint8Array)
export const isUndefined = rule('undefined', (v) => v === undefined)
export const isFunction = rule('a function', (v) => typeof v === 'function')

/** Milliseconds for a wait: positive, within what setTimeout can hold (24.8 days), or Infinity. */
export const isTimeout = rule(
  'a number of milliseconds above 0 and up to 2147483647, or Infinity for no deadline',
  (v) => typeof v === 'number' && v > 0 && (v <= 2 ** 31 - 1 || v === Infinity),
)

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false
  const proto = Object.getPrototypeOf(value) as unknown
  return proto === Object.prototype || proto === null
}

/** How a wrong value looks in a message: '5s' (a string), -1, [ 'registers' ]. */
function shown(value: unknown): string {
  if (typeof value === 'string') return `'${value.length > 60 ? `${value.slice(0, 57)}...` : value}' (a string)`
  if (typeof value === 'bigint') return `${value}n (a bigint)`
  if (Array.isArray(value))
    return `an array [${value.slice(0, 5).map(shown).join(', ')}${value.length > 5 ? ', ...' : ''}]`
  if (typeof value === 'function') return 'a function'
  if (typeof value === 'object' && value !== null) return `an object (${value.constructor?.name ?? 'null prototype'})`
  return String(value)
}

/** The closest name, for "did you mean": case-insensitive, then by shared prefix. */
function nearest(name: string, names: readonly string[]): string | undefined {
  const lower = name.toLowerCase()
  return (
    names.find((n) => n.toLowerCase() === lower) ??
    names.find((n) => n.toLowerCase().startsWith(lower.slice(0, 3)) || lower.startsWith(n.toLowerCase().slice(0, 3)))
  )
}

/**
 * Checks `options` against `schema`: it must be undefined or a plain object whose every key is in
 * the schema and whose every value (other than undefined) passes its rule. `where` names the call
 * in messages: "launch", "toMatchProcessSnapshot".
 */
export function checkOptions(where: string, options: unknown, schema: OptionSchema): void {
  if (options === undefined) return
  const names = Object.keys(schema)
  if (!isPlainObject(options))
    throw new ProcsnapError(
      'ERR_BAD_OPTION',
      `${where}: the options must be an object ({ ${names.join(', ')} }), not ${shown(options)}.`,
    )
  for (const [name, value] of Object.entries(options)) {
    const optionRule = schema[name]
    if (!optionRule) {
      const near = nearest(name, names)
      throw new ProcsnapError(
        'ERR_BAD_OPTION',
        `${where}: unknown option '${name}'.${near ? ` Did you mean '${near}'?` : ''} ${where} ` +
          `takes ${names.length ? names.join(', ') : 'no options'}.`,
      )
    }
    if (value !== undefined && !optionRule.test(value))
      throw new ProcsnapError(
        'ERR_BAD_OPTION',
        `${where}: option '${name}' is ${shown(value)}; it takes ${optionRule.accepts}.`,
      )
  }
}
