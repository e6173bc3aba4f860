// Register values of a snapshot thread as a frozen object: full registers enumerable (what JSON,
// diffs and toEqual see), aliases (eax, al, w0) as non-enumerable getters derived from them.
import { archInfo } from './arch-info.js'
import type { RegisterValues, SnapshotArch } from './model.js'

/** Registers by name, bigint; aliases included (not enumerable). */
export type SnapshotRegisters = Readonly<Record<string, bigint>>

export function registerView(arch: SnapshotArch, values: RegisterValues): SnapshotRegisters {
  const view: Record<string, bigint> = {}
  for (const [name, value] of Object.entries(values)) view[name] = value
  for (const [alias, info] of archInfo(arch).aliases) {
    const base = values[info.base]
    if (base === undefined || alias in view) continue
    const mask = (1n << BigInt(info.bits)) - 1n
    Object.defineProperty(view, alias, { get: () => (base >> BigInt(info.shift)) & mask, enumerable: false })
  }
  return Object.freeze(view)
}
