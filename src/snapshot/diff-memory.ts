// Memory half of a snapshot diff: which bytes of two paired maps differ once ASLR, dead stack,
// thread ids and mangled pointers are accounted for. A pointer that moved with its map is no change.
import { collectRuns, MERGE_GAP, type Alignment, type SamePlace } from './changed-runs.js'
import { heldBytes, heldSize, mayHoldData, sameHeld } from './content.js'
import { MemoryChanges } from './memory-change.js'
import { mapLocator } from './map-locator.js'
import { levelHolding, levelRank } from './memory-view.js'
import { addRun } from './runs.js'
import type { MapState, SnapshotData, SnapshotLevel } from './model.js'
import { mapAt, symbolizeIn, type SnapshotModule } from './regions.js'

/** How far past AT_PLATFORM the strings gap is looked for: the strings sit at the stack's top. */
const STRINGS_SCAN = 1 << 20
/** Bytes of a sparse map compared at once. */
const SPARSE_WINDOW = 1 << 20
/** Bytes of a held map compared before their runs are added: both sides' fit in a core's L2 cache. */
const ADD_WINDOW = 1 << 18
/** glibc's PTR_MANGLE on x86_64: rol(pointer ^ guard, 0x11), the guard at fs:0x30. */
const MANGLE_ROTATE = 0x11n
const POINTER_GUARD_OFFSET = 0x30n
const MASK64 = (1n << 64n) - 1n

export interface MapPair {
  readonly identity: string
  readonly a: MapState
  readonly b: MapState
}

export type { SamePlace }

export interface Places {
  readonly same: SamePlace
  /** Whether a word of a (high, low 32 bits) may be one `same` matches with another value: see Alignment. */
  readonly mayMove: (hi: number, lo: number) => boolean
  /** How far b's main-thread stack pointer is from a's (0 without ASLR). */
  readonly stackShift: bigint
}

export function archSp(data: SnapshotData): string {
  return data.arch === 'aarch64' ? 'sp' : 'rsp'
}

/**
 * Under ASLR, maps move by whole pages, except the initial stack: below the argument strings (which
 * stay aligned to its top) the kernel shifts it by a random sub-page amount, which the main thread's
 * stack pointer reveals. A pointer of `a` into a map equals the same offset in that map's partner in
 * `b`; so does a pointer glibc mangled with the pointer guard.
 */
export function placeMatcher(a: SnapshotData, b: SnapshotData, pairs: readonly MapPair[]): Places {
  const moved = pairs.some((p) => p.a.start !== p.b.start)
  const stack = pairs.find((p) => p.identity === '[stack]')
  const spA = mainThreadSp(a)
  const spB = mainThreadSp(b)
  const stackShift =
    stack && spA !== undefined && spB !== undefined && moved ? spB - spA : stack ? stack.b.end - stack.a.end : 0n
  if (!moved) return { same: (x, y) => x === y, mayMove: () => false, stackShift }
  const partner = new Map(pairs.map((p) => [p.a, p.b]))
  const pointerSame: SamePlace = (before, after) => {
    if (before === after) return true
    // A pointer one past a map's end (brk, a buffer's end) moves with that map too.
    const m = mapAt(a.maps, before) ?? mapAt(a.maps, before - 1n)
    const other = m && partner.get(m)
    if (!m || !other) return false
    if (other.start + (before - m.start) === after) return true
    // Into the initial stack: below its strings the stack moved with sp, the strings with its top.
    return m.path === '[stack]' && (before + stackShift === after || before + (other.end - m.end) === after)
  }
  const inMaps = highHalves(a.maps)
  const guardA = pointerGuard(a)
  const guardB = pointerGuard(b)
  if (guardA === undefined || guardB === undefined) return { same: pointerSame, mayMove: inMaps, stackShift }
  const same: SamePlace = (before, after) =>
    pointerSame(before, after) || pointerSame(demangle(before, guardA), demangle(after, guardB))
  const guardHi = Number(guardA >> 32n)
  // The high half of the demangled value: rol(p ^ guard, 17) rotated back by 17, from 32-bit halves.
  const mayMove = (hi: number, lo: number): boolean =>
    inMaps(hi, lo) || inMaps((((hi >>> 17) | (lo << 15)) ^ guardHi) >>> 0, 0)
  return { same, mayMove, stackShift }
}

/**
 * Whether a value's high 32 bits are those of an address in (or one past) one of the maps: false
 * means pointerSame cannot match it. Intervals of high halves, merged, found by binary search.
 */
function highHalves(maps: readonly MapState[]): (hi: number, lo: number) => boolean {
  const spans: Array<[number, number]> = []
  for (const m of maps) {
    const from = Number(m.start >> 32n)
    const to = Number(m.end >> 32n)
    const last = spans[spans.length - 1]
    if (last && from <= last[1] + 1) last[1] = Math.max(last[1], to)
    else spans.push([from, to])
  }
  return (hi) => {
    let lo = 0
    let up = spans.length
    while (lo < up) {
      const mid = (lo + up) >> 1
      const span = spans[mid] ?? [0, 0]
      if (hi < span[0]) up = mid
      else if (hi > span[1]) lo = mid + 1
      else return true
    }
    return false
  }
}

function mainThreadSp(data: SnapshotData): bigint | undefined {
  return data.threads.find((t) => t.index === 1)?.regs[archSp(data)]
}

function demangle(value: bigint, guard: bigint): bigint {
  const rotated = ((value >> MANGLE_ROTATE) | (value << (64n - MANGLE_ROTATE))) & MASK64
  return rotated ^ guard
}

/** glibc's pointer guard of an x86_64 snapshot, when the level holds the thread control block. */
function pointerGuard(data: SnapshotData): bigint | undefined {
  const fsBase = data.threads.find((t) => t.index === 1)?.regs.fs_base
  if (data.arch !== 'x86_64' || fsBase === undefined) return undefined
  const at = fsBase + POINTER_GUARD_OFFSET
  const m = mapAt(data.maps, at)
  if (!m || at + 8n > m.start + BigInt(heldSize(m))) return undefined
  return Buffer.from(heldBytes(m, Number(at - m.start), 8)).readBigUInt64LE(0)
}

/** The changed runs of the pairs' contents at `level`, kept compact: `records()` makes the diff's `memory`. */
export function diffMemory(
  pairs: readonly MapPair[],
  level: SnapshotLevel,
  places: Places,
  a: SnapshotData,
  b: SnapshotData,
  modulesB: readonly SnapshotModule[],
): MemoryChanges {
  const changes = new MemoryChanges()
  const sameId = idMatcher(a, b)
  const symbolize = (address: bigint): string | undefined => symbolizeIn(b, modulesB, address)
  const runs: number[] = []
  for (const p of pairs) {
    if (levelRank(levelHolding(p.a)) > levelRank(level)) continue
    const ca = p.a.content
    const cb = p.b.content
    if (ca && ca === cb) continue // one buffer: an incremental capture of an unchanged map
    if (!ca || !cb) {
      if (heldSize(p.a) > 0 && heldSize(p.b) > 0) {
        const sparse = sparseRuns(p, places, sameId, a, b)
        if (sparse.length) changes.range(p.identity, p.a, p.b, 0, mapLocator(b, modulesB, p.b))
        for (let k = 0; k < sparse.length; k += 2) changes.add(p.a, p.b, sparse[k] ?? 0, sparse[k + 1] ?? 0, symbolize)
      }
      continue
    }
    for (const range of rangesOf(p, places.stackShift, a, b)) {
      const align = { ...range, same: places.same, mayMove: places.mayMove, sameId }
      const open = (): void => changes.range(p.identity, p.a, p.b, range.shift, mapLocator(b, modulesB, p.b))
      addRuns(changes, p, ca, cb, align, open, symbolize, runs)
    }
  }
  return changes
}

/**
 * The runs of one range of a pair, added to `changes` window by window, each as soon as no later run
 * can merge with it: its bytes are copied while the scan has them in the cache, not in a second pass
 * over the map (a cache miss a side a run). `open` starts the range before its first run.
 */
function addRuns(
  changes: MemoryChanges,
  p: MapPair,
  ca: Uint8Array,
  cb: Uint8Array,
  align: Alignment,
  open: () => void,
  symbolize: (address: bigint) => string | undefined,
  runs: number[],
): void {
  const { shift } = align
  const start = Math.max(0, -shift, align.from)
  const end = Math.min(align.to, ca.length, cb.length - shift)
  const bufA = Buffer.from(ca.buffer, ca.byteOffset, ca.length)
  const bufB = Buffer.from(cb.buffer, cb.byteOffset, cb.length)
  let from = -1
  let to = -1
  for (let w = start; w < end; w += ADD_WINDOW) {
    const wEnd = Math.min(w + ADD_WINDOW, end)
    // Most windows are equal: one native compare, not a scan's setup.
    if (bufA.compare(bufB, w + shift, wEnd + shift, w, wEnd) === 0) continue
    runs.length = 0
    // Windows a whole number of words from start: the words are those of one scan of the range.
    collectRuns(ca, cb, { ...align, from: w, to: wEnd }, runs)
    for (let k = 0; k < runs.length; k += 2) {
      const s = runs[k] ?? 0
      const e = runs[k + 1] ?? 0
      if (from >= 0 && s - to <= MERGE_GAP) {
        to = e
        continue
      }
      if (from >= 0) changes.add(p.a, p.b, from, to, symbolize)
      else open()
      from = s
      to = e
    }
  }
  if (from >= 0) changes.add(p.a, p.b, from, to, symbolize)
}

/**
 * Runs (start, end, ...) in a pair where one side at least is held page by page (`sparse`): compared
 * window by window over the bytes both hold, skipping windows where neither side holds data.
 */
function sparseRuns(
  p: MapPair,
  places: Places,
  sameId: Alignment['sameId'],
  a: SnapshotData,
  b: SnapshotData,
): number[] {
  const size = Math.min(heldSize(p.a), heldSize(p.b))
  const from = Math.max(liveFrom(p.a, a), liveFrom(p.b, b))
  const runs: number[] = []
  const window: number[] = []
  for (let w = 0; w < size; w += SPARSE_WINDOW) {
    const end = Math.min(size, w + SPARSE_WINDOW)
    // sameHeld: an incremental capture's pages shared with the other side, no need to compare
    if (end <= from || sameHeld(p.a, p.b, w, end) || (!mayHoldData(p.a, w, end) && !mayHoldData(p.b, w, end))) continue
    const align = {
      shift: 0,
      from: Math.max(0, from - w),
      to: end - w,
      same: places.same,
      mayMove: places.mayMove,
      sameId,
    }
    window.length = 0
    collectRuns(heldBytes(p.a, w, end - w), heldBytes(p.b, w, end - w), align, window)
    for (let k = 0; k < window.length; k += 2) addRun(runs, 0, w + (window[k] ?? 0), w + (window[k + 1] ?? 0))
  }
  return runs
}

/**
 * The parts of a map pair worth comparing, each with its alignment. Only [sp, top) of a stack is
 * live. The initial stack under ASLR has two parts: from sp up to the platform string, which moved
 * with sp, and the argument and environment strings, which stay at the top; between them lies a
 * random-sized gap of zeros.
 */
function rangesOf(
  p: MapPair,
  stackShift: bigint,
  a: SnapshotData,
  b: SnapshotData,
): Array<{ shift: number; from: number; to: number }> {
  const sizeA = Number(p.a.end - p.a.start)
  const shift = p.identity === '[stack]' ? Number(p.a.start + stackShift - p.b.start) : 0
  const from = Math.max(liveFrom(p.a, a), liveFrom(p.b, b) - shift)
  if (p.identity !== '[stack]') return [{ shift, from, to: sizeA }]
  const topShift = Number(p.b.end - p.b.start) - sizeA
  if (shift === topShift) return [{ shift, from, to: sizeA }]
  const gap = stringsGap(p.a, a)
  if (!gap) return [{ shift, from, to: sizeA }]
  return [
    { shift, from, to: gap.start },
    { shift: topShift, from: gap.end, to: sizeA },
  ]
}

/** Offsets [start, end) in the initial stack of the zeros between the platform string and the argument strings. */
export function stringsGap(stack: MapState, data: SnapshotData): { start: number; end: number } | undefined {
  const platform = data.auxv.find((e) => e.name === 'AT_PLATFORM')?.value
  const size = heldSize(stack)
  if (platform === undefined || size === 0 || platform < stack.start || platform >= stack.end) return undefined
  // A large stack an incremental capture shared is held page by page: read through content.ts, a
  // window at a time, and no further than STRINGS_SCAN past AT_PLATFORM (a hostile file's "stack" may be GiBs).
  const from = Number(platform - stack.start)
  const limit = Math.min(size, from + STRINGS_SCAN)
  const bytes = stack.content ?? heldBytes(stack, from, Math.max(0, limit - from))
  const base = stack.content ? 0 : from
  const end = stack.content ? limit : base + bytes.length
  let i = from
  while (i < end && bytes[i - base] !== 0) i++
  const start = i
  while (i < end && bytes[i - base] === 0) i++
  return { start, end: i }
}

/** Offset in `map` of the lowest stack pointer of a thread whose stack it is, else 0: below sp lies dead stack. */
function liveFrom(map: MapState, data: SnapshotData): number {
  let from: number | undefined
  for (const t of data.threads) {
    const sp = t.regs[archSp(data)]
    if (sp === undefined || sp < map.start || sp >= map.end) continue
    const offset = Number(sp - map.start)
    from = from === undefined ? offset : Math.min(from, offset)
  }
  return from ?? 0
}

/** Thread ids of a paired with b's by thread index (the pid is thread 1's tid). */
function idMatcher(a: SnapshotData, b: SnapshotData): (before: number, after: number) => boolean {
  const pairs = new Map<number, number>([[a.pid, b.pid]])
  for (const t of a.threads) {
    const other = b.threads.find((x) => x.index === t.index)
    if (other) pairs.set(t.tid, other.tid)
  }
  return (before, after) => pairs.get(before) === after
}
