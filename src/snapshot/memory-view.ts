// Reading a snapshot's memory offline: by address or symbol, across adjacent maps, with errors
// that say which level would hold bytes a snapshot lacks; and searching it for byte patterns.
import { LocationError, MemoryError, ProcsnapError, SymbolNotFoundError } from '../errors.js'
import type { MapState, SnapshotLevel } from './model.js'
import { hex, mapAt, type SnapshotModule } from './regions.js'
import { copyHeld, heldBytes, heldSize, mayHoldData } from './content.js'

/** Bytes of a sparse map searched at once. */
const FIND_WINDOW = 1 << 20

/** A symbol ('g_counter', 'libc.so.6!environ'), 'module+0xoff', a hex string, or an absolute address. */
export type SnapshotLocation = string | bigint

/** The level that holds a map's contents: writable maps from 'writable', all others (guard pages too) from 'full'. */
export function levelHolding(map: MapState): SnapshotLevel {
  return map.perms[1] === 'w' ? 'writable' : 'full'
}

const LEVEL_RANK: Record<SnapshotLevel, number> = { base: 0, writable: 1, full: 2 }

export function levelRank(level: SnapshotLevel): number {
  return LEVEL_RANK[level]
}

export class SnapshotMemory {
  private readonly maps: readonly MapState[]
  private readonly level: SnapshotLevel
  private readonly modules: () => readonly SnapshotModule[]
  private readonly exeName: string

  /** @internal */
  constructor(
    maps: readonly MapState[],
    level: SnapshotLevel,
    modules: () => readonly SnapshotModule[],
    exeName: string,
  ) {
    this.maps = maps
    this.level = level
    this.modules = modules
    this.exeName = exeName
  }

  /** The address a location names in this snapshot. */
  resolve(location: SnapshotLocation): bigint {
    if (typeof location === 'bigint') return location
    if (typeof location !== 'string')
      throw new LocationError(
        `A location is a symbol name, 'module+0xoffset' or a bigint address; got ${typeof location}.`,
      )
    if (/^0x[0-9a-f]+$/i.test(location)) return BigInt(location)
    const m = /^(?:(.+?)([!+]))?([^!+]*)(?:\+(0x[0-9a-f]+|\d+))?$/i.exec(location)
    if (!m)
      throw new LocationError(
        `Cannot parse the location '${location}': use 'symbol', 'module!symbol+0x4' or 'module+0x1139'.`,
      )
    const sep = m[2]
    let [moduleName, symbol, extra] = [m[1], m[3] ?? '', m[4]]
    const modules = this.modules()
    if (sep === '+' && moduleName !== undefined && /^(0x[0-9a-f]+|\d+)$/i.test(symbol)) {
      const mod = findModule(modules, moduleName)
      if (mod) return mod.start + BigInt(symbol)
      // not a module: 'g_table+0x8' is a symbol plus an offset
      ;[moduleName, symbol, extra] = [undefined, moduleName, symbol]
    }
    const named = moduleName !== undefined ? findModule(modules, moduleName) : undefined
    if (moduleName !== undefined && !named) {
      throw new LocationError(
        `No module '${moduleName}' in this snapshot. Modules: ${modules.map((x) => x.name).join(', ')}.`,
      )
    }
    const candidates = named ? [named] : orderExeFirst(modules, this.exeName)
    for (const mod of candidates) {
      const sym = mod.elf?.findSymbol(symbol)
      if (sym) return mod.bias + sym.value + (extra ? BigInt(extra) : 0n)
    }
    const withoutElf = candidates.filter((x) => !x.elf).map((x) => x.name)
    const suggestions = candidates.flatMap((x) => x.elf?.nearNames(symbol, 3) ?? [])
    const unknown = withoutElf.length
      ? ` (${withoutElf.join(', ')} not readable here or changed since the capture: their symbols are unknown)`
      : ''
    const where = `the snapshot's modules${unknown}`
    throw new SymbolNotFoundError(symbol, suggestions, where)
  }

  /** `length` bytes at a location; they may span adjacent maps, all of which the snapshot must hold. */
  read(location: SnapshotLocation, length: number): Uint8Array {
    if (!Number.isSafeInteger(length) || length < 0)
      throw new ProcsnapError('ERR_BAD_LOCATION', `A length is a non-negative integer; got ${String(length)}.`)
    const address = this.resolve(location)
    const out = new Uint8Array(length)
    let done = 0
    while (done < length) {
      const at = address + BigInt(done)
      const map = mapAt(this.maps, at)
      if (!map) {
        throw new MemoryError(
          'ERR_ADDRESS_UNMAPPED',
          at,
          length,
          `${hex(at)} is outside every map of this ` +
            `snapshot${done ? ` (the read started at ${hex(address)})` : ''}. Check the address ` +
            `against snapshot.maps.`,
        )
      }
      const from = Number(at - map.start)
      const held = heldSize(map)
      if (from >= held) throw this.notCaptured(map, at, length)
      const n = Math.min(length - done, held - from)
      copyHeld(map, from, out, done, n)
      done += n
    }
    return out
  }

  /**
   * Every address where the bytes (or the UTF-8 string) occur in the memory this snapshot holds. In a
   * map held page by page (a reservation the process cannot read), only windows around the pages that
   * hold data are searched: bytes that are all zeros are not looked for in gigabytes of untouched pages.
   */
  find(needle: Uint8Array | string): bigint[] {
    const bytes = typeof needle === 'string' ? new TextEncoder().encode(needle) : needle
    if (bytes.length === 0) throw new ProcsnapError('ERR_BAD_LOCATION', 'find() needs at least one byte to look for.')
    const hits: bigint[] = []
    for (const map of this.maps) {
      if (map.content) {
        const buf = Buffer.from(map.content.buffer, map.content.byteOffset, map.content.length)
        for (let i = buf.indexOf(bytes); i >= 0; i = buf.indexOf(bytes, i + 1)) hits.push(map.start + BigInt(i))
      } else if (map.sparse) findSparse(map, bytes, hits)
    }
    return hits
  }

  private notCaptured(map: MapState, at: bigint, length: number): MemoryError {
    const where = `${hex(map.start)}-${hex(map.end)} ${map.perms} ${map.path || '[anon]'}`
    if (map.unreadable) {
      return new MemoryError(
        'ERR_MEMORY_ACCESS',
        at,
        length,
        `${hex(at)} is in ${where}, which could not be read at capture (${map.unreadable}): no snapshot level holds it.`,
      )
    }
    const needed = levelHolding(map)
    return new MemoryError(
      'ERR_NOT_CAPTURED',
      at,
      length,
      `${hex(at)} is in ${where}, whose contents a '${this.level}' snapshot does not hold: take ` +
        `the snapshot with { level: '${needed}' }${needed === 'writable' ? " (or 'full')" : ''}.`,
    )
  }
}

/** Searches a sparse map window by window, skipping the windows without a page that holds data. */
function findSparse(map: MapState, needle: Uint8Array, hits: bigint[]): void {
  const size = heldSize(map)
  for (let from = 0; from < size; from += FIND_WINDOW) {
    const to = Math.min(size, from + FIND_WINDOW + needle.length - 1)
    if (!mayHoldData(map, from, to)) continue
    const window = heldBytes(map, from, to - from)
    const buf = Buffer.from(window.buffer, window.byteOffset, window.length)
    for (let i = buf.indexOf(needle); i >= 0 && i < FIND_WINDOW; i = buf.indexOf(needle, i + 1))
      hits.push(map.start + BigInt(from + i))
  }
}

function findModule(modules: readonly SnapshotModule[], name: string): SnapshotModule | undefined {
  return (
    modules.find((m) => m.name === name || m.path === name) ??
    modules.find((m) => m.name.startsWith(`${name}.so`) || m.name.startsWith(`${name}-`))
  )
}

function orderExeFirst(modules: readonly SnapshotModule[], exeName: string): SnapshotModule[] {
  const exe = modules.filter((m) => m.path === exeName)
  return [...exe, ...modules.filter((m) => m.path !== exeName)]
}
