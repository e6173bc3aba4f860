// Restore, step 3: the bytes. Every map whose contents the snapshot holds is compared with the
// process's memory a chunk at a time, and only the pages that differ are written back, so a restore
// costs what the process changed (text pages that did not change stay shared with their file).
// A page that the snapshot holds as zeros in private anonymous memory is given back to the kernel
// (madvise MADV_DONTNEED) rather than written: it reads as zeros and stays untouched, as it was.
import { MemoryError } from '../errors.js'
import { MAX_RANGES } from '../native/memory.js'
import type { Process } from '../process/process.js'
import { PAGE_IS_FILE, PAGE_IS_PRESENT, PAGE_IS_SWAPPED, pagemapScan, readPagemap } from '../native/pagemap.js'
import { copyHeld, heldSize, mayHoldData, PAGE } from './content.js'
import type { MapState, PageRun } from './model.js'
import { isKernelMap } from './restore-maps.js'

/** Bytes compared per read of the process's memory. */
const CHUNK = 1 << 20

export interface MemoryRestore {
  /** Pages read and compared. */
  pagesCompared: number
  /** Pages written back. */
  pagesWritten: number
  /** Pages of private anonymous memory dropped (they read as zeros again). */
  pagesDropped: number
  /** Page runs to drop with madvise, by address: [start, end). */
  readonly drops: [bigint, bigint][]
}

/** A piece of a map to compare: `length` bytes from offset `from`, at most a chunk. */
interface Piece {
  readonly map: MapState
  readonly from: number
  readonly length: number
}

/**
 * Writes back the pages of each map that differ from what the snapshot holds; queues zero pages of
 * anonymous memory to drop. `ranges(map)`: the byte ranges [from, to) of the map that may differ
 * (page aligned, ascending), the rest known to be as the snapshot holds it; undefined: all of it.
 * The pieces are read a chunk at a time, many places in one system call. A map whose bytes cannot
 * be read or written goes to `failed` with the error, and the others go on.
 */
export function restoreBytes(
  proc: Process,
  maps: readonly MapState[],
  ranges: (map: MapState) => readonly PageRun[] | undefined,
  into: MemoryRestore,
  failed: (map: MapState, error: MemoryError) => void,
): void {
  const buffers = chunkBuffers()
  const broken = new Set<MapState>()
  const fail = (map: MapState, error: unknown): void => {
    if (!(error instanceof MemoryError)) throw error
    broken.add(map)
    failed(map, error)
  }
  let batch: Piece[] = []
  let bytes = 0
  const flush = (): void => {
    if (batch.length > 0) compareBatch(proc, batch, into, buffers, broken, fail)
    batch = []
    bytes = 0
  }
  for (const map of maps) {
    const held = heldSize(map)
    for (const [lo, hi] of ranges(map) ?? [[0, held] as const]) {
      const end = Math.min(hi, held)
      for (let from = lo; from < end; from += CHUNK) {
        const length = Math.min(CHUNK, end - from)
        if (bytes + length > CHUNK || batch.length === MAX_RANGES) flush()
        batch.push({ map, from, length })
        bytes += length
      }
    }
  }
  flush()
}

/** Reads a batch of pieces at once and compares each; when some piece cannot be read, one by one to learn which. */
function compareBatch(
  proc: Process,
  batch: readonly Piece[],
  into: MemoryRestore,
  buffers: ChunkBuffers,
  broken: Set<MapState>,
  fail: (map: MapState, error: unknown) => void,
): void {
  const whole = proc.readMemoryRanges(
    batch.map((p) => [p.map.start + BigInt(p.from), p.length] as const),
    buffers.live,
  )
  let next = 0
  for (const p of batch) {
    const at = whole ? next : 0 // where its bytes are: one after another, or each read alone at 0
    next += p.length
    if (broken.has(p.map)) continue
    try {
      const live = buffers.live.subarray(at, at + p.length)
      if (!whole) proc.readMemoryInto(p.map.start + BigInt(p.from), live)
      restorePiece(proc, p, live, into, buffers)
    } catch (error) {
      fail(p.map, error)
    }
  }
}

/** Compares a piece with the process's bytes (`live`, read already) and writes back the pages that differ. */
function restorePiece(proc: Process, piece: Piece, live: Uint8Array, into: MemoryRestore, buffers: ChunkBuffers): void {
  const { map, from, length } = piece
  into.pagesCompared += (length + PAGE - 1) >> 12
  const anonymous = map.inode === 0 && map.perms[3] === 'p' && map.path !== '[vdso]'
  const address = map.start + BigInt(from)
  // The snapshot's bytes: a view of its buffer when it holds the map whole, else a copy with zeros filled in.
  const want = map.content ? map.content.subarray(from, from + length) : buffers.want.subarray(0, length)
  if (!map.content) {
    if (mayHoldData(map, from, from + length)) copyHeld(map, from, want, 0, length)
    else want.fill(0)
  }
  if (Buffer.from(live.buffer, live.byteOffset, length).equals(want)) return
  let run: [number, number] | undefined // a run of pages to write, offsets in the chunk
  const flush = (): void => {
    if (!run) return
    proc.writeMemoryAt(address + BigInt(run[0]), want.subarray(run[0], run[1]))
    into.pagesWritten += (run[1] - run[0] + PAGE - 1) >> 12
    run = undefined
  }
  for (let at = 0; at < length; at += PAGE) {
    const end = Math.min(at + PAGE, length)
    const a = Buffer.from(live.buffer, live.byteOffset + at, end - at)
    const b = Buffer.from(want.buffer, want.byteOffset + at, end - at)
    if (a.equals(b)) {
      flush()
      continue
    }
    if (anonymous && isZeroPage(b)) {
      flush()
      addDrop(into, address + BigInt(at))
      continue
    }
    if (run && run[1] === at) run[1] = end
    else {
      flush()
      run = [at, end]
    }
  }
  flush()
}

/** Private anonymous memory: its pages read as zeros until the process touches them. */
function isPrivateAnonymous(map: MapState): boolean {
  return map.inode === 0 && map.perms[3] === 'p' && !isKernelMap(map)
}

/**
 * For each private anonymous map of `maps`, the ranges that can differ from the snapshot, page
 * aligned and ascending: the pages the process has touched (present or swapped out), and the pages
 * where the snapshot holds a non-zero byte. Elsewhere both read as zeros, so nothing is read there.
 * Undefined for a map: compare all of it (another kind of map, or pagemap cannot be read).
 */
export function anonymousRanges(proc: Process, maps: readonly MapState[]): (map: MapState) => PageRun[] | undefined {
  const fd = maps.some(isPrivateAnonymous) ? proc.pagemapFd() : undefined
  if (fd === undefined) return () => undefined
  return (map) => {
    if (!isPrivateAnonymous(map)) return undefined
    const touched = touchedRuns(fd, map)
    return touched && mergeRuns(touched, dataRuns(map), heldSize(map))
  }
}

/** Up to this many pages, a map's pagemap entries are read (one pread, ~2 us); beyond, PAGEMAP_SCAN finds the runs. */
const PAGEMAP_READ_PAGES = 4096
const pagemapEntries = new BigUint64Array(PAGEMAP_READ_PAGES)
const PM_PRESENT_OR_SWAPPED = (1n << 63n) | (1n << 62n)

/** The pages of `map` the process touched (present or swapped out), as offsets; undefined when the kernel does not say. */
function touchedRuns(fd: number, map: MapState): PageRun[] | undefined {
  const pages = Number((map.end - map.start) / BigInt(PAGE))
  if (pages > PAGEMAP_READ_PAGES) {
    // File pages are left out: a private file map's pages read from its file until written.
    const runs = pagemapScan(fd, map.start, map.end, PAGE_IS_PRESENT | PAGE_IS_SWAPPED, PAGE_IS_FILE)
    return typeof runs === 'number' ? undefined : within(runs, map)
  }
  if (readPagemap(fd, map.start, pages, pagemapEntries) !== 0) return undefined
  const runs: [number, number][] = []
  for (let i = 0; i < pages; i++) {
    if (((pagemapEntries[i] ?? 0n) & PM_PRESENT_OR_SWAPPED) === 0n) continue
    const last = runs.at(-1)
    if (last && last[1] === i * PAGE) last[1] += PAGE
    else runs.push([i * PAGE, (i + 1) * PAGE])
  }
  return runs
}

/** The runs of `touched` (addresses, ascending) inside `map`, as offsets from its start. */
function within(touched: readonly (readonly [bigint, bigint])[], map: MapState): PageRun[] {
  let lo = 0
  let hi = touched.length
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if ((touched[mid]?.[1] ?? 0n) <= map.start) lo = mid + 1
    else hi = mid
  }
  const out: [number, number][] = []
  for (let i = lo; i < touched.length; i++) {
    const [start, end] = touched[i] ?? [0n, 0n]
    if (start >= map.end) break
    const from = start > map.start ? start : map.start
    const to = end < map.end ? end : map.end
    out.push([Number(from - map.start), Number(to - map.start)])
  }
  return out
}

/** Two ascending lists of runs merged into one, cut at `held` bytes. */
function mergeRuns(a: readonly PageRun[], b: readonly PageRun[], held: number): PageRun[] {
  const runs: [number, number][] = []
  let i = 0
  let j = 0
  while (i < a.length || j < b.length) {
    const x = a[i]
    const y = b[j]
    const next = !y || (x && x[0] <= y[0]) ? (i++, x) : (j++, y)
    if (!next || next[0] >= held) continue
    const to = Math.min(next[1], held)
    const tail = runs.at(-1)
    if (tail && next[0] <= tail[1]) tail[1] = Math.max(tail[1], to)
    else runs.push([next[0], to])
  }
  return runs
}

/** The page runs of a snapshot map that hold a non-zero byte, found once per map (a fuzzing loop restores it thousands of times). */
const dataRunsByMap = new WeakMap<MapState, readonly PageRun[]>()

function dataRuns(map: MapState): readonly PageRun[] {
  let runs = dataRunsByMap.get(map)
  if (runs) return runs
  const found: [number, number][] = []
  const held = heldSize(map)
  const page = new Uint8Array(PAGE)
  for (let at = 0; at < held; at += PAGE) {
    const end = Math.min(at + PAGE, held)
    let nonZero: boolean
    if (map.content) nonZero = !isZero(Buffer.from(map.content.buffer, map.content.byteOffset + at, end - at))
    else if (!mayHoldData(map, at, end)) nonZero = false
    else {
      copyHeld(map, at, page, 0, end - at)
      nonZero = !isZero(Buffer.from(page.buffer, 0, end - at))
    }
    if (!nonZero) continue
    const last = found.at(-1)
    if (last && last[1] === at) last[1] = end
    else found.push([at, end])
  }
  runs = found
  dataRunsByMap.set(map, runs)
  return runs
}

/** Two reusable chunk buffers: the process's bytes and the snapshot's. */
export interface ChunkBuffers {
  readonly live: Uint8Array
  readonly want: Uint8Array
}

let buffers: ChunkBuffers | undefined

/** The chunk buffers, allocated once per thread: a fuzzing loop restores thousands of times. */
export function chunkBuffers(): ChunkBuffers {
  buffers ??= { live: new Uint8Array(CHUNK), want: new Uint8Array(CHUNK) }
  return buffers
}

function addDrop(into: MemoryRestore, page: bigint): void {
  into.pagesDropped++
  const last = into.drops.at(-1)
  if (last && last[1] === page) last[1] = page + BigInt(PAGE)
  else into.drops.push([page, page + BigInt(PAGE)])
}

const ZERO_PAGE = Buffer.alloc(PAGE)

/** A whole page of zeros (a shorter tail is never dropped); `isZero` of a tail compares its length. */
function isZeroPage(page: Buffer): boolean {
  return page.length === PAGE && page.equals(ZERO_PAGE)
}

function isZero(bytes: Buffer): boolean {
  return bytes.equals(ZERO_PAGE.subarray(0, bytes.length))
}
