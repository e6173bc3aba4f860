// The project's writable data (.data, .bss of the executable and its project libraries) as golden lines:
// at most every 16 bytes, is labelled by its address's stable name, shows pointers by what they
// point to ('<counter!__dso_handle>') and runs of zeros as a count. A changed global is one line.
import { LocationError } from '../errors.js'
import { heldBytes, heldSize } from '../snapshot/content.js'
import type { MapState, SnapshotData } from '../snapshot/model.js'
import type { SnapshotModule } from '../snapshot/regions.js'
import type { AddressNamer } from './names.js'
import { statImageWords, type StatWord } from './stat-images.js'

/** Bytes in a line, at most. */
const LINE = 16

export interface GoldenEntry {
  readonly label: string
  readonly value: string
}

/** A memory line's first address and byte count, beside the entry (not written): for redactions, as names do not resolve back. */
export interface LineRange {
  readonly address: bigint
  readonly length: number
}

/** A memory entry that knows the bytes it shows; the range is no own enumerable property, so it is never written or compared. */
class MemoryLine implements GoldenEntry {
  readonly label: string
  readonly value: string
  readonly #range: LineRange

  constructor(label: string, value: string, range: LineRange) {
    this.label = label
    this.value = value
    this.#range = range
  }

  get range(): LineRange {
    return this.#range
  }
}

/** The bytes a memory entry shows, when it is one (a WeakMap per line was a tenth of a large golden's cost). */
export function lineRange(entry: GoldenEntry): LineRange | undefined {
  return entry instanceof MemoryLine ? entry.range : undefined
}

/** The same entry under another label or value, keeping its range. */
export function withText(entry: GoldenEntry, label: string, value: string): GoldenEntry {
  const range = lineRange(entry)
  return range ? new MemoryLine(label, value, range) : { label, value }
}

function memoryLine(label: string, value: string, address: bigint, length: number): GoldenEntry {
  return new MemoryLine(label, value, { address, length })
}

/** The writable maps of the given files (default: the executable) and the anonymous .bss after them, in address order. */
export function executableDataMaps(data: SnapshotData, paths: ReadonlySet<string> = new Set([data.exe])): MapState[] {
  const out: MapState[] = []
  for (const [i, m] of data.maps.entries()) {
    const previous = data.maps[i - 1]
    const isExe = paths.has(m.path) && m.perms.startsWith('rw')
    const isBss =
      m.path === '' &&
      previous !== undefined &&
      previous.end === m.start &&
      paths.has(previous.path) &&
      previous.perms.startsWith('rw')
    if (isExe || isBss) out.push(m)
  }
  return out
}

/**
 * Where lines must break inside [start, end): at every symbol's start and end (so that a 4-byte
 * int and its padding are two lines), sorted; and the set of starts, which always get a line.
 */
function symbolBreaks(
  module: SnapshotModule | undefined,
  start: bigint,
  end: bigint,
): { breaks: bigint[]; starts: Set<bigint> } {
  const elf = module?.elf
  const breaks = new Set<bigint>()
  const starts = new Set<bigint>()
  if (!module || !elf) return { breaks: [], starts }
  for (const s of elf.symbols) {
    const at = s.value + module.bias
    if (at < start || at >= end || s.type === 'tls') continue
    starts.add(at)
    breaks.add(at)
    if (s.size > 0n && at + s.size < end) breaks.add(at + s.size)
  }
  return { breaks: [...breaks].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)), starts }
}

export function memoryEntries(
  data: SnapshotData,
  modules: readonly SnapshotModule[],
  namer: AddressNamer,
  project: ReadonlySet<string> = new Set([data.exe]),
): GoldenEntry[] {
  return executableDataMaps(data, project).flatMap((map) => {
    const module = modules.find((m) => (map.start >= m.start && map.start < m.end) || m.end === map.start)
    const span = sectionSpan(module, map)
    // through content.ts: a large map an incremental capture shared is held page by page, not in one buffer
    if (!span || heldSize(map) < Number(span[1] - map.start)) return []
    const [start, end] = span
    const content = heldBytes(map, Number(start - map.start), Number(end - start))
    return rangeEntries(start, content, symbolBreaks(module, start, end), namer)
  })
}

/** Section flags: in memory at run time; thread-local (its addresses overlap the sections after it). */
const SHF_ALLOC = 0x2n
const SHF_TLS = 0x400n

/**
 * The part of a data map that the module's sections cover: a small library's last page also maps
 * the end of its file (symbol table, debug info, section headers), which is no data of the program.
 * Undefined for an anonymous map next to a module that no section reaches (ld.so's memory after a library).
 */
function sectionSpan(module: SnapshotModule | undefined, map: MapState): [bigint, bigint] | undefined {
  let start: bigint | undefined
  let end: bigint | undefined
  for (const s of module?.elf?.sections ?? []) {
    if ((s.flags & SHF_ALLOC) === 0n || (s.flags & SHF_TLS) !== 0n || s.size === 0n || !module) continue
    const from = s.addr + module.bias
    const to = from + s.size
    if (to <= map.start || from >= map.end) continue
    start = start === undefined || from < start ? from : start
    end = end === undefined || to > end ? to : end
  }
  if (start === undefined || end === undefined) return module?.elf && map.path === '' ? undefined : [map.start, map.end]
  return [start > map.start ? start : map.start, end < map.end ? end : map.end]
}

/**
 * Lines for any range the user names (toMatchProcessSnapshot's `memory` option): a symbol with a
 * size ('g_table'), or a region by its path ('[heap]'). `read` reads the snapshot (and says which
 * level would hold bytes it does not).
 */
export function namedRangeEntries(
  location: string,
  data: SnapshotData,
  modules: readonly SnapshotModule[],
  namer: AddressNamer,
  resolve: (location: string) => bigint,
  read: (address: bigint, length: number) => Uint8Array,
): GoldenEntry[] {
  let start: bigint
  let end: bigint
  const region = data.maps.filter((m) => m.path === location)
  const first = region[0]
  const last = region.at(-1)
  if (location.startsWith('[') && first && last) {
    start = first.start
    end = last.end
  } else {
    start = resolve(location)
    const module = modules.find((m) => start >= m.start && start < m.end)
    const hit = module?.elf?.symbolize(start - module.bias)
    if (!hit || hit.offset !== 0n || hit.symbol.size === 0n)
      throw new LocationError(
        `toMatchProcessSnapshot's memory option takes a symbol with a size or a region such as '[heap]'; '${location}' is neither.`,
      )
    end = start + hit.symbol.size
  }
  const module = modules.find((m) => start >= m.start && start < m.end)
  return rangeEntries(start, read(start, Number(end - start)), symbolBreaks(module, start, end), namer)
}

/** Lines of bytes starting at `start`: one per symbol start, at most 16 bytes each, zero runs counted. */
function rangeEntries(
  start: bigint,
  content: Uint8Array,
  symbols: { breaks: bigint[]; starts: Set<bigint> },
  namer: AddressNamer,
): GoldenEntry[] {
  const entries: GoldenEntry[] = []
  const bytes = Buffer.from(content.buffer, content.byteOffset, content.length)
  const statWords = statImageWords(start, bytes, namer.descriptors())
  // Offsets from `start` as numbers: a data section is far below 2^53 bytes, and bigint arithmetic
  // per 16-byte line was most of the cost of a large program's golden.
  const breaks = symbols.breaks.map((b) => Number(b - start))
  const starts = new Set([...symbols.starts].map((b) => Number(b - start)))
  const line = { address: start, bytes, from: 0, to: 0, align: Number(start & 7n) }
  let next = 0
  let zerosFrom = -1
  const flushZeros = (to: number): void => {
    if (zerosFrom < 0) return
    const address = start + BigInt(zerosFrom)
    entries.push(memoryLine(namer.value(address), `00 x ${to - zerosFrom}`, address, to - zerosFrom))
    zerosFrom = -1
  }
  for (let pos = 0; pos < bytes.length;) {
    while (next < breaks.length && (breaks[next] ?? 0) <= pos) next++
    const end = Math.min(pos + LINE, breaks[next] ?? bytes.length, bytes.length)
    if (isZero(bytes, pos, end) && !starts.has(pos)) {
      if (zerosFrom < 0) zerosFrom = pos
    } else {
      flushZeros(pos)
      const address = start + BigInt(pos)
      line.from = pos
      line.to = end
      entries.push(memoryLine(namer.value(address), lineValue(line, namer, statWords), address, end - pos))
    }
    pos = end
  }
  flushZeros(bytes.length)
  return entries
}

function isZero(bytes: Buffer, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (bytes[i] !== 0) return false
  return true
}

/** One line's bytes: [from, to) of `bytes`, which starts at `address`; `align` is address mod 8. */
interface LineBytes {
  readonly address: bigint
  readonly bytes: Buffer
  from: number
  to: number
  readonly align: number
}

/** Hex bytes, with each aligned 8-byte word that points into a map (or is part of a descriptor's stat image) written as <its name>. */
function lineValue(line: LineBytes, namer: AddressNamer, statWords: ReadonlyMap<bigint, StatWord>): string {
  const { bytes, to, align } = line
  const tokens: string[] = []
  for (let i = line.from; i < to;) {
    const word = statWords.size > 0 ? statWords.get(line.address + BigInt(i)) : undefined
    if (word !== undefined && i + word.size <= to) {
      tokens.push(`<${word.name}>`)
      i += word.size
      continue
    }
    if ((align + i) % 8 === 0 && i + 8 <= to) {
      const lo = bytes.readUInt32LE(i)
      const hi = bytes.readUInt32LE(i + 4)
      const name = namer.mayName(lo, hi)
        ? namer.slotValue(line.address + BigInt(i), bytes.readBigUInt64LE(i))
        : undefined
      if (name) {
        tokens.push(`<${name}>`)
        i += 8
        continue
      }
    }
    if ((align + i) % 4 === 0 && i + 4 <= to) {
      const value = bytes.readUInt32LE(i)
      const id = namer.mayBeId(value) ? namer.id(BigInt(value)) : undefined
      if (id) {
        tokens.push(`<${id}>`)
        i += 4
        continue
      }
    }
    tokens.push(HEX_BYTE[bytes[i] ?? 0] ?? '00')
    i++
  }
  return tokens.join(' ')
}

const HEX_BYTE = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, '0'))
