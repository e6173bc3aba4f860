// Register values of a snapshot thread as a frozen object: full registers enumerable (what JSON,
// diffs and toEqual see), aliases (eax, al, w0) as non-enumerable getters derived from them. A
// snapshot is a record of a stop: every write, to any name, is ERR_READ_ONLY. A captured thread's
// registers stay the bytes the kernel gave (compactRegisters): each register is decoded when read.
import { ReadOnlyError } from '../errors.js'
import { archInfo } from './arch-info.js'
import type { RegisterValues, SnapshotArch } from './model.js'
import type { RawRegisters, RegisterDecoder } from '../native/arch/types.js'

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
  if (states.has(values)) return values
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

// ---- compact registers: raw areas, decoded on access ----------------------------------------

/** What each compact view holds: its raw areas, and the registers decoded so far (by decoder index). */
interface RawState {
  readonly raw: RawRegisters
  readonly values: (bigint | undefined)[]
}

const states = new WeakMap<object, RawState>()

function decoded(self: object, i: number, decoder: RegisterDecoder): bigint | undefined {
  const state = states.get(self)
  if (!state) return undefined
  return (state.values[i] ??= decoder.decode(state.raw))
}

/**
 * Per decoder table: the registers' accessors, shared by every view and defined on each (own and
 * enumerable: what Object.keys, spread, structuredClone and toEqual see), and a prototype holding
 * the aliases (not enumerable, read-only as well), so that a view defines only its registers.
 */
interface Shape {
  readonly own: PropertyDescriptorMap
  readonly prototype: object
}

const shapes = new WeakMap<readonly RegisterDecoder[], Map<SnapshotArch, Shape>>()

function shapeOf(arch: SnapshotArch, decoders: readonly RegisterDecoder[]): Shape {
  let byArch = shapes.get(decoders)
  if (!byArch) shapes.set(decoders, (byArch = new Map<SnapshotArch, Shape>()))
  const known = byArch.get(arch)
  if (known) return known
  const own: PropertyDescriptorMap = {}
  const aliases: PropertyDescriptorMap = {}
  const index = new Map<string, number>()
  decoders.forEach((decoder, i) => {
    index.set(decoder.name, i)
    const name = decoder.name
    own[name] = {
      get(this: object) {
        return decoded(this, i, decoder)
      },
      set: () => readOnly(name),
      enumerable: true,
    }
  })
  for (const [alias, info] of archInfo(arch).aliases) {
    const i = index.get(info.base)
    const decoder = i === undefined ? undefined : decoders[i]
    if (i === undefined || !decoder || index.has(alias)) continue
    const mask = (1n << BigInt(info.bits)) - 1n
    const shift = BigInt(info.shift)
    aliases[alias] = {
      get(this: object) {
        const base = decoded(this, i, decoder)
        return base === undefined ? undefined : (base >> shift) & mask
      },
      set: () => readOnly(alias),
      enumerable: false,
    }
  }
  const shape: Shape = { own, prototype: Object.freeze(Object.create(writeGuard, aliases) as object) }
  byArch.set(arch, shape)
  return shape
}

/**
 * The registers of a captured thread as registerView shows them (same names, order, aliases and
 * errors), backed by `raw`: nothing is decoded until read, and a register is decoded once.
 */
export function compactRegisters(
  arch: SnapshotArch,
  decoders: readonly RegisterDecoder[],
  raw: RawRegisters,
): SnapshotRegisters {
  const shape = shapeOf(arch, decoders)
  const view = Object.create(shape.prototype, shape.own) as SnapshotRegisters
  states.set(view, { raw, values: [] })
  return Object.freeze(view)
}
