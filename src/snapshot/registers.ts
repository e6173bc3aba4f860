// Register values of a snapshot thread as a frozen object: full registers enumerable (what JSON,
// diffs and toEqual see), aliases (eax, al, w0) as non-enumerable getters derived from them. A
// snapshot is a record of a stop: every write, to any name, is ERR_READ_ONLY.
import { ReadOnlyError } from '../errors.js'
import { archInfo } from './arch-info.js'
import type { RegisterValues, SnapshotArch } from './model.js'

/** Registers by name, bigint; aliases included (not enumerable). */
export type SnapshotRegisters = Readonly<Record<string, bigint>>

function readOnly(name: string | symbol): never {
  const field = typeof name === 'string' ? name : String(name)
  throw new ReadOnlyError(
    `A snapshot's registers are read-only (regs.${field}): a snapshot records one stop. Write ` +
      `to the live process instead (proc.regs.${field} = …), then take a new snapshot.`,
  )
}

/** Prints the values (util.inspect would show the accessors as [Getter/Setter]). */
const printable = Object.create(Object.prototype, {
  [Symbol.for('nodejs.util.inspect.custom')]: {
    value(this: object, _depth: number, options: object, inspect: (v: unknown, o: object) => string): string {
      return inspect({ ...this }, options)
    },
  },
}) as object

/**
 * The prototype of every view: a name the view does not hold falls through to it, and a write of
 * one lands in its set trap (reads of unknown names stay undefined, as in a plain object).
 */
const writeGuard: object = new Proxy(printable, {
  set(_target, name) {
    return readOnly(name)
  },
})

export function registerView(arch: SnapshotArch, values: RegisterValues): SnapshotRegisters {
  const view = Object.create(writeGuard) as Record<string, bigint>
  for (const [name, value] of Object.entries(values)) {
    Object.defineProperty(view, name, { get: () => value, set: () => readOnly(name), enumerable: true })
  }
  for (const [alias, info] of archInfo(arch).aliases) {
    const base = values[info.base]
    if (base === undefined || alias in view) continue
    const mask = (1n << BigInt(info.bits)) - 1n
    Object.defineProperty(view, alias, {
      get: () => (base >> BigInt(info.shift)) & mask,
      set: () => readOnly(alias),
      enumerable: false,
    })
  }
  return Object.freeze(view)
}
