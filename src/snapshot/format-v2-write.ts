// Writing procsnap/2 in one pass over each map's pages: a cheap sample of each page's words finds
// zero pages and candidates for pages already stored (both confirmed by comparing bytes); a page met
// for the first time is written at once, consecutive ones in large writes straight from the maps'
// buffers (or a live map's chunk), their crc32s computed by the CRC kernel, or by the helper thread
// as it reads a live chunk (files/shared-pages.ts). The metadata follows the pages (META_LAST) and the
// header, with both checksums, is patched in last.
import { crc32 } from 'node:zlib'
import { SHARED_MIN_BYTES, allocateShared, crcPages, startCrcPages } from '../files/shared-pages.js'
import { hasCrcKernel } from '../native/crc32-pages.js'
import type { ByteSink } from '../files/write.js'
import { contentOnDisk, mapJson, snapshotJson } from './format.js'
import { type Json } from './format-fields.js'
import { FORMAT_V2, META_LAST, PAGE_BYTES, dataChecksum, encodeHeader } from './format-v2.js'
import { liveContent, type LiveContent } from './live-content.js'
import type { MapState, PageRun, SnapshotData, SparseContent } from './model.js'

const ZERO_PAGE = new Uint8Array(PAGE_BYTES)
/** Pages with one sample key compared at most: pages alike in every sampled word beyond these are stored again, not slowly. */
const MAX_CANDIDATES = 8
/** Copies of a live map's pages kept to compare repeated pages with (16 MiB at most). */
const MAX_LIVE_PAGES = 4096
/** A live map is read this much at a time: the size the helper thread shares (files/shared-pages.ts). */
const LIVE_CHUNK = SHARED_MIN_BYTES

/**
 * A page's key: an FNV-style mix of 72 of its 32-bit words (`words` views the buffer, the page starts
 * at word `first`): its first 8 (where headers and counters differ), then one in every 16, at a
 * different place in each. Equal pages have equal keys; a page of zeros has ZERO_KEY.
 */
function pageKey(words: Int32Array, first: number): number {
  let h = 0x811c9dc5
  for (let k = 0; k < 8; k++) h = Math.imul(h ^ words[first + k]!, 0x01000193)
  for (let k = 0; k < 64; k++) h = Math.imul(h ^ words[first + 16 * k + 8 + (k & 7)]!, 0x01000193)
  return h >>> 0
}

const ZERO_KEY = pageKey(new Int32Array(PAGE_BYTES / 4), 0)

/** The buffer's bytes as 32-bit words, from `bytes`' start (which must be 4-aligned). */
function wordsOf(bytes: Uint8Array): Int32Array {
  return new Int32Array(bytes.buffer, bytes.byteOffset, Math.floor(bytes.length / 4))
}

/** The distinct non-zero pages in slot order, kept as places in the maps' buffers, each written when first met. */
class PageStore {
  private keys = new Uint32Array(1 << 12)
  private count = 0
  /** Each slot's page: bytes[at, at + 4096) of the buffer in `held`, or of a live map (a dump's). */
  private readonly held: (Uint8Array | LiveContent)[] = []
  private readonly at: number[] = []
  /** Copies of live pages read to compare with (repeated pages compare with the same few). */
  private readonly livePages = new Map<number, Uint8Array>()
  /** The first slot stored with each key, and any later ones (pages alike where sampled, or crafted so). */
  private readonly byKey = new FirstSlots((slot) => this.keys[slot]!)
  private readonly moreByKey = new Map<number, number[]>()

  constructor(private readonly writer: PageWriter) {}

  get size(): number {
    return this.count
  }

  /** Room for `more` slots, so that a large map does not grow the tables page by page. */
  reserve(more: number): void {
    const want = this.count + more
    if (want > this.keys.length) {
      const grown = new Uint32Array(want)
      grown.set(this.keys.subarray(0, this.count))
      this.keys = grown
    }
    this.byKey.reserve(want)
  }

  /**
   * The slot holding the 4096 bytes at `at` of `bytes` (stored now if new), or -1 for a page of zeros.
   * A live map's page (`live`, at `liveAt` in it) is kept as that place, `bytes` being only a chunk read
   * now, whose pages' crc32s are `crcs` (page i of the chunk at i).
   */
  slotOf(bytes: Uint8Array, at: number, key: number, live?: LiveContent, liveAt = 0, crcs?: Uint32Array): number {
    if (key === ZERO_KEY && equalPages(bytes, at, ZERO_PAGE, 0)) return -1
    const known = this.byKey.get(key)
    const slot = this.count
    if (known < 0) this.byKey.add(key, slot)
    else {
      if (this.holds(known, bytes, at)) return known
      const more = this.moreByKey.get(key) ?? []
      for (const other of more) if (this.holds(other, bytes, at)) return other
      if (more.length < MAX_CANDIDATES - 1) this.moreByKey.set(key, [...more, slot])
    }
    if (slot === this.keys.length) {
      const grown = new Uint32Array(Math.max(1 << 12, slot * 2))
      grown.set(this.keys)
      this.keys = grown
    }
    this.keys[slot] = key
    this.count++
    this.held.push(live ?? bytes)
    this.at.push(live ? liveAt : at)
    this.writer.add(bytes, at, crcs)
    return slot
  }

  /** Whether a slot holds the 4096 bytes at `at` of `bytes`. */
  private holds(slot: number, bytes: Uint8Array, at: number): boolean {
    const held = this.held[slot]!
    return held instanceof Uint8Array
      ? equalPages(bytes, at, held, this.at[slot]!)
      : equalPages(bytes, at, this.livePage(held, slot), 0)
  }

  /** A live slot's 4096 bytes, read from its map (and kept while there is room). */
  private livePage(held: LiveContent, slot: number): Uint8Array {
    const at = this.at[slot]!
    const kept = this.livePages.get(slot)
    if (kept) return kept
    const page = new Uint8Array(PAGE_BYTES)
    held.start(at, page).finish()
    if (this.livePages.size < MAX_LIVE_PAGES) this.livePages.set(slot, page)
    return page
  }
}

/**
 * The stored pages, written in slot order as they are first met: consecutive pages of one buffer
 * gathered into one write, their crc32s kept for the header's checksum.
 */
class PageWriter {
  private crcs = new Uint32Array(1 << 12)
  private written = 0
  /** Pages [from, to) of `bytes` not written yet, and their crc32s when known (a live chunk's, page i at i). */
  private bytes: Uint8Array | undefined
  private from = 0
  private to = 0
  private known: Uint32Array | undefined

  constructor(private readonly out: ByteSink) {}

  get count(): number {
    return this.written + (this.to - this.from) / PAGE_BYTES
  }

  /** The 4096 bytes at `at` of `bytes` as the next stored page. */
  add(bytes: Uint8Array, at: number, crcs: Uint32Array | undefined): void {
    if (this.bytes === bytes && this.to === at && this.known === crcs) {
      this.to += PAGE_BYTES
      return
    }
    this.flush()
    this.bytes = bytes
    this.from = at
    this.to = at + PAGE_BYTES
    this.known = crcs
  }

  /** Writes the pages gathered: before a live chunk's buffer is read into again, and at the end. */
  flush(): void {
    const bytes = this.bytes
    if (!bytes) return
    const block = bytes.subarray(this.from, this.to)
    const first = this.written
    const pages = block.length / PAGE_BYTES
    if (first + pages > this.crcs.length) {
      const grown = new Uint32Array(Math.max(2 * this.crcs.length, first + pages))
      grown.set(this.crcs.subarray(0, first))
      this.crcs = grown
    }
    if (this.known) {
      this.out.write(block)
      this.crcs.set(this.known.subarray(this.from / PAGE_BYTES, this.to / PAGE_BYTES), first)
    } else {
      const pending = startCrcPages(block) // the helper starts on it while this thread writes it
      this.out.write(block)
      this.crcs.set(pending ? pending.finish() : crcPages(block), first)
    }
    this.written += pages
    this.bytes = undefined
    this.from = this.to = 0
  }

  /** The crc32 of the table of the pages' crc32s (u32 LE each), once all are written. */
  checksum(): number {
    this.flush()
    return dataChecksum(this.crcs.subarray(0, this.written))
  }
}

/** key -> the first slot stored with it: open addressing in an Int32Array (a Map of uint32 keys boxes them). */
class FirstSlots {
  private table = new Int32Array(1 << 13).fill(-1)
  private used = 0

  constructor(private readonly keyOf: (slot: number) => number) {}

  get(key: number): number {
    const mask = this.table.length - 1
    for (let i = key & mask; ; i = (i + 1) & mask) {
      const slot = this.table[i]!
      if (slot < 0 || this.keyOf(slot) === key) return slot
    }
  }

  /** Room for `entries` entries in all without growing. */
  reserve(entries: number): void {
    while (entries * 2 > this.table.length) this.grow()
  }

  add(key: number, slot: number): void {
    if ((this.used + 1) * 2 > this.table.length) this.grow()
    this.put(key, slot)
    this.used++
  }

  private put(key: number, slot: number): void {
    const mask = this.table.length - 1
    let i = key & mask
    while (this.table[i]! >= 0) i = (i + 1) & mask
    this.table[i] = slot
  }

  private grow(): void {
    const old = this.table
    this.table = new Int32Array(old.length * 2).fill(-1)
    for (const slot of old) if (slot >= 0) this.put(this.keyOf(slot), slot)
  }
}

/** [from, to) as places of at most LIVE_CHUNK bytes: [position, length]. */
function chunkPlaces(from: number, to: number): (readonly [number, number])[] {
  const places: (readonly [number, number])[] = []
  for (let pos = from; pos < to; pos += LIVE_CHUNK) places.push([pos, Math.min(LIVE_CHUNK, to - pos)])
  return places
}

/**
 * Reads a live map's places in turn into the two chunk buffers (place k into buffer k & 1, with each
 * page's crc32 into crcs(k & 1) where the helper computes them) and hands each to `visit`: the helper
 * thread reads the next place while `visit` works on the current one.
 */
function readChunks(
  live: LiveContent,
  places: readonly (readonly [number, number])[],
  chunks: LiveChunks,
  visit: (view: Uint8Array, k: number, pos: number, crcs: Uint32Array | undefined) => void,
): void {
  // Whether a chunk's crc32s are computed as it is read is decided when its read begins.
  const crcsOf: (Uint32Array | undefined)[] = []
  const begin = (k: number): { finish(): void } => {
    const [pos, length] = places[k]!
    crcsOf[k & 1] = chunks.crcs(k & 1)
    return live.start(pos, chunks.buffer(k & 1).subarray(0, length), crcsOf[k & 1])
  }
  let pending = places.length > 0 ? begin(0) : undefined
  places.forEach(([pos, length], k) => {
    pending?.finish()
    const crcs = crcsOf[k & 1]
    pending = k + 1 < places.length ? begin(k + 1) : undefined
    visit(chunks.buffer(k & 1).subarray(0, length), k, pos, crcs)
  })
}

/** Two chunk buffers (and their page crc32s) for live maps, shared so that the helper thread can fill them; made on first use. */
class LiveChunks {
  private readonly buffers: Uint8Array[] = []
  private readonly crcArrays: Uint32Array[] = []
  private readonly wordArrays: Int32Array[] = []

  buffer(i: number): Uint8Array {
    return (this.buffers[i] ??= allocateShared(LIVE_CHUNK))
  }

  /** buffer(i) as 32-bit words. */
  words(i: number): Int32Array {
    return (this.wordArrays[i] ??= wordsOf(this.buffer(i)))
  }

  /**
   * Where the helper thread puts the crc32s of buffer(i)'s pages as it reads them; none when this
   * thread has the CRC kernel, which computes those of the pages written, faster, when it writes them.
   */
  crcs(i: number): Uint32Array | undefined {
    if (hasCrcKernel()) return undefined
    return (this.crcArrays[i] ??= new Uint32Array(new SharedArrayBuffer((LIVE_CHUNK / PAGE_BYTES) * 4)))
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
  const add = (bytes: Uint8Array, at: number, page: number, key: number): void => {
    const before = store.size
    const slot = store.slotOf(bytes, at, key)
    runs.add(page, slot, slot >= before)
  }
  const spans = touchedSpans(untouched, whole)
  store.reserve(spans.reduce((pages, [from, to]) => pages + (to - from) / PAGE_BYTES, 0))
  // Words of the buffer itself when it is 4-aligned (capture's are); else of an aligned copy, page by page.
  const words = content.byteOffset % 4 === 0 ? wordsOf(content) : undefined
  for (const [from, to] of spans)
    for (let at = from; at < to; at += PAGE_BYTES) {
      const key = words ? pageKey(words, at / 4) : pageKey(wordsOf(content.slice(at, at + PAGE_BYTES)), 0)
      add(content, at, at / PAGE_BYTES, key)
    }
  if (whole < size && new Untouched(untouched).next(whole) === whole) {
    const last = pageAt(content, whole, size)
    add(last, 0, whole / PAGE_BYTES, pageKey(wordsOf(last), 0))
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
    const bytes = sparse.pages.get(at)!
    const page = pageAt(bytes, 0, Math.min(bytes.length, sparse.size - at, PAGE_BYTES))
    const aligned = page.byteOffset % 4 === 0 ? page : page.slice()
    const before = store.size
    const slot = store.slotOf(aligned, 0, pageKey(wordsOf(aligned), 0))
    runs.add(at / PAGE_BYTES, slot, slot >= before)
  }
  runs.flush()
  return { size: sparse.size, runs: runs.runs }
}

/**
 * A live map's runs, its touched spans read a chunk at a time with their pages' crc32s: the helper
 * thread reads the next chunk while this thread keys the pages of the current one and writes the new ones.
 */
function liveRuns(
  live: LiveContent,
  untouched: readonly PageRun[] | undefined,
  store: PageStore,
  chunks: LiveChunks,
  writer: PageWriter,
): Json {
  if (live.size % PAGE_BYTES !== 0) throw new RangeError(`a live map of ${live.size} bytes, not whole pages`)
  const runs = new RunBuilder()
  const spans = touchedSpans(untouched, live.size)
  store.reserve(spans.reduce((pages, [from, to]) => pages + (to - from) / PAGE_BYTES, 0))
  const places = spans.flatMap(([from, to]) => chunkPlaces(from, to))
  readChunks(live, places, chunks, (view, k, pos, crcs) => {
    const words = chunks.words(k & 1)
    for (let at = 0; at < view.length; at += PAGE_BYTES) {
      const before = store.size
      const slot = store.slotOf(view, at, pageKey(words, at / 4), live, pos + at, crcs)
      runs.add((pos + at) / PAGE_BYTES, slot, slot >= before)
    }
    writer.flush() // the helper reads into this buffer again
  })
  runs.flush()
  return { size: live.size, runs: runs.runs }
}

function heldJson(m: MapState, store: PageStore, chunks: LiveChunks, writer: PageWriter): Json {
  const held: Record<string, unknown> = {}
  const untouched = m.untouched && normalized(m.untouched, Number(m.end - m.start))
  const live = liveContent(m)
  if (m.content) held.content = contentRuns(m.content, untouched, store)
  else if (live) held.content = liveRuns(live, untouched, store, chunks, writer)
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
  out.write(ZERO_PAGE) // the header's page: the header is patched in last
  const writer = new PageWriter(out)
  const store = new PageStore(writer)
  const chunks = new LiveChunks()
  const snapshot = snapshotJson(data, (m) => mapJson(m, heldJson(m, store, chunks, writer)))
  const dataCrc = writer.checksum()
  if (writer.count !== store.size) throw new Error(`${writer.count} pages written for ${store.size} stored`)
  const meta = Buffer.from(JSON.stringify({ format: FORMAT_V2, snapshot }), 'utf8')
  out.write(meta)
  out.patch(
    0,
    encodeHeader({ flags: META_LAST, metaLength: meta.length, pageCount: store.size, metaCrc: crc32(meta), dataCrc }),
  )
}
