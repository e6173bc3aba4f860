// Writing procsnap/2: one pass over each map's pages computes a crc32 per page (zero pages and
// pages already stored are found by it, duplicates confirmed by comparing bytes), then the header,
// the metadata and the distinct pages go out in large writes straight from the maps' buffers.
// A large map's crc32s are computed up front, shared with a helper thread (files/shared-pages.ts).
import { crc32 } from 'node:zlib'
import { crcPages } from '../files/shared-pages.js'
import type { ByteSink } from '../files/write.js'
import { contentOnDisk, mapJson, snapshotJson } from './format.js'
import { type Json } from './format-fields.js'
import { FORMAT_V2, HEADER_BYTES, PAGE_BYTES, dataOffset, encodeHeader } from './format-v2.js'
import type { MapState, PageRun, SnapshotData, SparseContent } from './model.js'

const ZERO_PAGE = new Uint8Array(PAGE_BYTES)
const ZERO_CRC = crc32(ZERO_PAGE)
/** Pages with one crc32 compared at most: a process that crafts colliding pages stores them twice, not slowly. */
const MAX_CANDIDATES = 4
/** Pages of a map whose crc32s are computed at once, ahead of the pass that uses them. */
const CRC_BATCH_PAGES = 1 << 16

/** The distinct non-zero pages in slot order, kept as places in the maps' buffers, gathered into contiguous blocks. */
class PageStore {
  private crcs = new Uint32Array(1 << 12)
  private count = 0
  /** Each slot's page: bytes[at, at + 4096) of the buffer in `held`. */
  private readonly held: Uint8Array[] = []
  private readonly at: number[] = []
  /** The first slot stored with each crc32, and any later ones (rare: a collision or a crafted page). */
  private readonly byCrc = new FirstSlots((slot) => this.crcs[slot]!)
  private readonly moreByCrc = new Map<number, number[]>()
  /** Blocks of consecutive slots: a buffer and a byte range in it. */
  private readonly blockBuffers: ArrayBufferLike[] = []
  private readonly blockStarts: number[] = []
  private readonly blockEnds: number[] = []

  get size(): number {
    return this.count
  }

  /** Room for `more` slots, so that a large map does not grow the tables page by page. */
  reserve(more: number): void {
    const want = this.count + more
    if (want > this.crcs.length) {
      const grown = new Uint32Array(want)
      grown.set(this.crcs.subarray(0, this.count))
      this.crcs = grown
    }
    this.byCrc.reserve(want)
  }

  /** The slot holding the 4096 bytes at `at` of `bytes`, whose crc32 is `crc` (stored now if new), or -1 for a page of zeros. */
  slotOf(bytes: Uint8Array, at: number, crc: number): number {
    if (crc === ZERO_CRC && equalPages(bytes, at, ZERO_PAGE, 0)) return -1
    const known = this.byCrc.get(crc)
    const slot = this.count
    if (known < 0) this.byCrc.add(crc, slot)
    else {
      if (equalPages(bytes, at, this.held[known]!, this.at[known]!)) return known
      const more = this.moreByCrc.get(crc) ?? []
      for (const other of more) if (equalPages(bytes, at, this.held[other]!, this.at[other]!)) return other
      if (more.length < MAX_CANDIDATES - 1) this.moreByCrc.set(crc, [...more, slot])
    }
    if (slot === this.crcs.length) {
      const grown = new Uint32Array(Math.max(1 << 12, slot * 2))
      grown.set(this.crcs)
      this.crcs = grown
    }
    this.crcs[slot] = crc
    this.count++
    this.held.push(bytes)
    this.at.push(at)
    const buffer = bytes.buffer
    const start = bytes.byteOffset + at
    const last = this.blockBuffers.length - 1
    if (last >= 0 && this.blockBuffers[last] === buffer && this.blockEnds[last] === start)
      this.blockEnds[last] = start + PAGE_BYTES
    else {
      this.blockBuffers.push(buffer)
      this.blockStarts.push(start)
      this.blockEnds.push(start + PAGE_BYTES)
    }
    return slot
  }

  /** crc32 of the table of page crc32s, u32 little-endian each. */
  dataCrc(): number {
    const table = Buffer.allocUnsafe(this.count * 4)
    for (let i = 0; i < this.count; i++) table.writeUInt32LE(this.crcs[i]!, i * 4)
    return crc32(table)
  }

  writeTo(out: ByteSink): void {
    this.blockBuffers.forEach((buffer, i) => {
      const start = this.blockStarts[i]!
      out.write(new Uint8Array(buffer, start, this.blockEnds[i]! - start))
    })
  }
}

/** crc32 -> the first slot stored with it: open addressing in an Int32Array (a Map of uint32 keys boxes them). */
class FirstSlots {
  private table = new Int32Array(1 << 13).fill(-1)
  private used = 0

  constructor(private readonly crcOf: (slot: number) => number) {}

  get(crc: number): number {
    const mask = this.table.length - 1
    for (let i = crc & mask; ; i = (i + 1) & mask) {
      const slot = this.table[i]!
      if (slot < 0 || this.crcOf(slot) === crc) return slot
    }
  }

  /** Room for `entries` entries in all without growing. */
  reserve(entries: number): void {
    while (entries * 2 > this.table.length) this.grow()
  }

  add(crc: number, slot: number): void {
    if ((this.used + 1) * 2 > this.table.length) this.grow()
    this.put(crc, slot)
    this.used++
  }

  private put(crc: number, slot: number): void {
    const mask = this.table.length - 1
    let i = crc & mask
    while (this.table[i]! >= 0) i = (i + 1) & mask
    this.table[i] = slot
  }

  private grow(): void {
    const old = this.table
    this.table = new Int32Array(old.length * 2).fill(-1)
    for (const slot of old) if (slot >= 0) this.put(this.crcOf(slot), slot)
  }
}

function equalPages(a: Uint8Array, atA: number, b: Uint8Array, atB: number): boolean {
  return Buffer.compare(a.subarray(atA, atA + PAGE_BYTES), b.subarray(atB, atB + PAGE_BYTES)) === 0
}

/** Builds a map's run list page by page: consecutive new slots extend a run, one slot repeated makes a repeat run. */
class RunBuilder {
  readonly runs: (readonly number[])[] = []
  private page = -2
  private count = 0
  private slot = 0
  /** 1: slots slot, slot+1, ...; 0: every page in `slot`. */
  private step = 1
  private fresh = false

  add(page: number, slot: number, fresh: boolean): void {
    if (slot < 0) return
    if (this.page + this.count === page) {
      if (this.step === 1 && this.fresh === fresh && this.slot + this.count === slot) {
        this.count++
        return
      }
      if (this.slot === slot && !fresh && (this.count === 1 || this.step === 0)) {
        this.step = 0
        this.count++
        return
      }
    }
    this.flush()
    this.page = page
    this.count = 1
    this.slot = slot
    this.step = 1
    this.fresh = fresh
  }

  flush(): void {
    if (this.count > 0)
      this.runs.push(this.step === 1 ? [this.page, this.count, this.slot] : [this.page, this.count, this.slot, 0])
    this.count = 0
    this.page = -2
  }
}

/** The pages of [at, end) of `bytes` as a full 4096-byte page: a view, or a zero-padded copy for a short last page. */
function pageAt(bytes: Uint8Array, at: number, end: number): Uint8Array {
  if (end - at === PAGE_BYTES) return bytes.subarray(at, end)
  const padded = new Uint8Array(PAGE_BYTES)
  padded.set(bytes.subarray(at, end))
  return padded
}

/** Skips the pages inside untouched runs (ascending [from, to) byte ranges): they are zeros and never read. */
class Untouched {
  private i = 0
  constructor(private readonly runs: readonly PageRun[] | undefined) {}

  /** The first offset at or after `at` that is not untouched. */
  next(at: number): number {
    const runs = this.runs
    if (!runs) return at
    while (this.i < runs.length && runs[this.i]![1] <= at) this.i++
    const run = runs[this.i]
    if (run && run[0] <= at) return Math.ceil(run[1] / PAGE_BYTES) * PAGE_BYTES
    return at
  }
}

function contentRuns(content: Uint8Array, untouched: readonly PageRun[] | undefined, store: PageStore): Json {
  const runs = new RunBuilder()
  const size = content.length
  const whole = size - (size % PAGE_BYTES)
  const batch = CRC_BATCH_PAGES * PAGE_BYTES
  const add = (bytes: Uint8Array, at: number, page: number, crc: number): void => {
    const before = store.size
    const slot = store.slotOf(bytes, at, crc)
    runs.add(page, slot, slot >= before)
  }
  const spans = touchedSpans(untouched, whole)
  store.reserve(spans.reduce((pages, [from, to]) => pages + (to - from) / PAGE_BYTES, 0))
  for (const [from, to] of spans)
    for (let at = from; at < to; at += batch) {
      const span = content.subarray(at, Math.min(to, at + batch))
      const crcs = crcPages(span)
      for (let k = 0; k < span.length / PAGE_BYTES; k++)
        add(content, at + k * PAGE_BYTES, at / PAGE_BYTES + k, crcs[k]!)
    }
  if (whole < size && new Untouched(untouched).next(whole) === whole) {
    const last = pageAt(content, whole, size)
    add(last, 0, whole / PAGE_BYTES, crc32(last))
  }
  runs.flush()
  return { size, runs: runs.runs }
}

/** The [from, to) byte spans of [0, size) outside the untouched runs (ascending, page-aligned starts). */
function touchedSpans(untouched: readonly PageRun[] | undefined, size: number): [number, number][] {
  const spans: [number, number][] = []
  let at = 0
  for (const [from, to] of untouched ?? []) {
    if (from > at) spans.push([at, Math.min(from, size)])
    at = Math.max(at, Math.ceil(to / PAGE_BYTES) * PAGE_BYTES)
  }
  if (at < size) spans.push([at, size])
  return spans.filter(([from, to]) => to > from)
}

function sparseRuns(sparse: SparseContent, untouched: readonly PageRun[] | undefined, store: PageStore): Json {
  const runs = new RunBuilder()
  const skip = new Untouched(untouched)
  const offsets = [...sparse.pages.keys()]
  // The model keeps them ascending; a snapshot built by hand may not.
  if (offsets.some((o, i) => i > 0 && o <= offsets[i - 1]!)) offsets.sort((a, b) => a - b)
  for (const at of offsets) {
    if (at % PAGE_BYTES !== 0 || at >= sparse.size) throw new Error(`sparse page at ${at} of ${sparse.size} bytes`)
    if (skip.next(at) !== at) continue
    const page = pageAt(sparse.pages.get(at)!, 0, Math.min(sparse.pages.get(at)!.length, sparse.size - at, PAGE_BYTES))
    const before = store.size
    const slot = store.slotOf(page, 0, crc32(page))
    runs.add(at / PAGE_BYTES, slot, slot >= before)
  }
  runs.flush()
  return { size: sparse.size, runs: runs.runs }
}

function heldJson(m: MapState, store: PageStore): Json {
  const held: Record<string, unknown> = {}
  const untouched = m.untouched && normalized(m.untouched, Number(m.end - m.start))
  if (m.content) held.content = contentRuns(m.content, untouched, store)
  else if (m.sparse) held[contentOnDisk.has(m.sparse) ? 'content' : 'sparse'] = sparseRuns(m.sparse, untouched, store)
  if (untouched) held.untouched = untouched.map(([from, to]) => [from, to])
  return held
}

/**
 * Untouched runs as the reader requires them (ascending, disjoint, whole pages inside the map): what
 * capture records already; a list built otherwise is sorted, merged and shrunk to whole pages, so that
 * a file is never written that cannot be read back, and no byte outside a run is skipped.
 */
function normalized(runs: readonly PageRun[], size: number): PageRun[] {
  const out: [number, number][] = []
  for (const [a, b] of [...runs].sort((x, y) => x[0] - y[0])) {
    const from = Math.ceil(Math.max(0, a) / PAGE_BYTES) * PAGE_BYTES
    const to = b >= size ? size : Math.floor(b / PAGE_BYTES) * PAGE_BYTES
    if (to <= from) continue
    const last = out[out.length - 1]
    if (last && from <= last[1]) last[1] = Math.max(last[1], to)
    else out.push([from, to])
  }
  return out
}

/** Writes a snapshot as procsnap/2 to `out`; equal snapshots give equal bytes (keys in a fixed order). */
export function writeSnapshotV2(data: SnapshotData, out: ByteSink): void {
  const store = new PageStore()
  const snapshot = snapshotJson(data, (m) => mapJson(m, heldJson(m, store)))
  const meta = Buffer.from(JSON.stringify({ format: FORMAT_V2, snapshot }), 'utf8')
  out.write(
    encodeHeader({ metaLength: meta.length, pageCount: store.size, metaCrc: crc32(meta), dataCrc: store.dataCrc() }),
  )
  out.write(meta)
  out.write(ZERO_PAGE.subarray(0, dataOffset(meta.length) - HEADER_BYTES - meta.length))
  store.writeTo(out)
}
