// Reading procsnap/2: the header and metadata are checked (lengths against the file's size,
// crc32s, every JSON field as procsnap/1's), each map's buffer is allocated once and its stored
// pages are read straight into it in blocks, in file order, their crc32s checked as they arrive.
// A hostile file stays bounded: sizes are checked before allocation, and what a load holds is
// bounded by what the file stores plus fixed budgets.
import { constants as bufferConstants } from 'node:buffer'
import { crc32 } from 'node:zlib'
import { SnapshotFormatError } from '../errors.js'
import { allocateShared } from '../files/shared-pages.js'
import {
  DENSE_CONTENT_BUDGET,
  LATEST_VERSION,
  MAX_NESTING,
  checkArch,
  contentOnDisk,
  decodeData,
  decodeMapWith,
  nestedDeeper,
  type HeldContent,
} from './format.js'
import { FieldError, Fields } from './format-fields.js'
import {
  FORMAT_V2,
  HEADER_BYTES,
  PAGE_BYTES,
  KNOWN_FLAGS,
  VERSION_V2,
  dataChecksum,
  decodeHeader,
  layoutOf,
  type PageRunV2,
} from './format-v2.js'
import type { MapState, PageRun, SnapshotData, SparseContent } from './model.js'

/** Random access to a file's bytes: a descriptor (readSync) or a buffer. */
export interface ByteSource {
  readonly size: number
  /** Reads up to `length` bytes at `position` into `into` at `at`; fewer only at the end. */
  read(into: Uint8Array, at: number, length: number, position: number): number
  /**
   * Reads `into.length` bytes at `position` and, with `crcs`, each page's crc32, faster when it
   * can (another thread); false when it did not, and `read` is to be used instead.
   */
  readPages?(into: Uint8Array, position: number, crcs: Uint32Array | undefined): boolean
}

/** The metadata is one JSON text: V8's strings stop near 512 MiB. */
const MAX_META_BYTES = 0x1fffffe8
/**
 * Pages held page by page (a `sparse` map, or `content` past the dense budget) cost a Map entry and
 * a view each: at most this many bytes' worth, plus what the file stores, so that a run of 2^40
 * repeated pages in a small file is refused instead of filling memory.
 */
const SPARSE_BUDGET = 16 * DENSE_CONTENT_BUDGET

/** A page that cannot be read back; the caller names the file. */
export class LoadError extends Error {}

/** Decodes a procsnap/2 file (its first bytes are the magic); `name` is the path for messages. */
export function decodeSnapshotV2(src: ByteSource, name: string): SnapshotData {
  const corrupt = (why: string): SnapshotFormatError =>
    new SnapshotFormatError('ERR_SNAPSHOT_CORRUPT', name, `${name} is not a valid snapshot: ${why}.`)
  if (src.size < HEADER_BYTES)
    throw corrupt(`truncated: ${src.size} bytes, shorter than the ${HEADER_BYTES}-byte header`)
  const head = new Uint8Array(HEADER_BYTES)
  src.read(head, 0, HEADER_BYTES, 0)
  const h = decodeHeader(head)
  if (h.version > LATEST_VERSION)
    throw new SnapshotFormatError(
      'ERR_SNAPSHOT_VERSION',
      name,
      `${name} is in format procsnap/${h.version}, written by a newer procsnap; this one reads procsnap/${LATEST_VERSION} and earlier. Upgrade procsnap to load it.`,
    )
  if (h.version !== VERSION_V2) throw corrupt(`the header says version ${h.version}, which is not a binary format`)
  if ((h.flags & ~KNOWN_FLAGS) !== 0) throw corrupt(`the header's flags are ${h.flags}, which no procsnap writes`)
  if (h.metaLength > MAX_META_BYTES) throw corrupt(`the header declares ${h.metaLength} bytes of metadata`)
  const { pagesAt: start, metaAt, size: expected } = layoutOf(h)
  if (expected !== src.size)
    throw corrupt(
      `truncated or damaged: ${src.size} bytes, the header declares ${Number.isFinite(expected) ? expected : 'more than 2^53'}`,
    )
  const meta = Buffer.allocUnsafe(h.metaLength)
  if (src.read(meta, 0, meta.length, metaAt) !== meta.length) throw corrupt('the file ended early')
  if (crc32(meta) !== h.metaCrc) throw corrupt('the metadata does not match its checksum: the file was altered')
  let parsed: unknown
  try {
    if (nestedDeeper(meta, MAX_NESTING)) throw new Error(`nested deeper than ${MAX_NESTING} levels`)
    parsed = JSON.parse(meta.toString('utf8'))
  } catch (error) {
    throw corrupt(`its metadata is not JSON (${(error as Error).message})`)
  }
  try {
    const root = new Fields(parsed, '$')
    if (root.string('format') !== FORMAT_V2)
      throw new FieldError('$.format', `expected '${FORMAT_V2}', found '${root.string('format')}'`)
    checkArch(root.object('snapshot'), name)
    const pages = new PageLoader(src, start, h.pageCount)
    const data = decodeData(root.object('snapshot'), (s) => s.objects('maps').map((m) => pages.map(m)))
    pages.finish(h.dataCrc)
    return data
  } catch (error) {
    if (error instanceof FieldError || error instanceof LoadError) throw corrupt(error.message)
    throw error
  }
}

/** Reads the stored pages into the maps, slot by slot in file order. */
class PageLoader {
  private next = 0
  private readonly crcs: Uint32Array
  private denseLeft: number
  private sparseLeft: number
  /** Pages read for maps held page by page, by slot: one copy per slot however often it is listed. */
  private readonly cache = new Map<number, Uint8Array>()

  constructor(
    private readonly src: ByteSource,
    private readonly start: number,
    private readonly pageCount: number,
  ) {
    this.crcs = new Uint32Array(new SharedArrayBuffer(pageCount * 4))
    this.denseLeft = DENSE_CONTENT_BUDGET + pageCount * PAGE_BYTES
    this.sparseLeft = (SPARSE_BUDGET + pageCount * PAGE_BYTES) / PAGE_BYTES
  }

  map(m: Fields): MapState {
    return decodeMapWith(m, (mapSize) => {
      const untouched = m.has('untouched') ? decodeUntouched(m, mapSize) : undefined
      const held: HeldContent = untouched ? { untouched } : {}
      if (m.has('content')) return { ...this.content(m.object('content'), mapSize), ...held }
      if (m.has('sparse')) return { sparse: this.sparse(m.object('sparse'), mapSize), ...held }
      return held
    })
  }

  /** Every stored page was read once and the table of their crc32s matches the header. */
  finish(dataCrc: number): void {
    if (this.next !== this.pageCount)
      throw new LoadError(`the file stores ${this.pageCount} pages but its maps list ${this.next}`)
    if (dataChecksum(this.crcs) !== dataCrc)
      throw new LoadError('the pages do not match their checksum: the file was altered')
  }

  private content(c: Fields, mapSize: bigint): Pick<MapState, 'content' | 'sparse'> {
    const size = c.int('size')
    if (BigInt(size) !== mapSize) throw new FieldError(`${c.path}.size`, `${size} bytes for a map of ${mapSize}`)
    const runs = this.runs(c, size)
    if (size <= this.denseLeft && size <= bufferConstants.MAX_LENGTH) {
      this.denseLeft -= size
      return { content: this.readDense(runs, size) }
    }
    const sparse: SparseContent = { size, pages: this.readSparse(runs, size, `${c.path}.runs`) }
    contentOnDisk.add(sparse)
    return { sparse }
  }

  private sparse(f: Fields, mapSize: bigint): SparseContent {
    const size = f.int('size')
    if (size < 0 || BigInt(size) > mapSize)
      throw new FieldError(`${f.path}.size`, `${size} bytes for a map of ${mapSize}`)
    if (BigInt(size) !== mapSize && size % PAGE_BYTES !== 0)
      throw new FieldError(`${f.path}.size`, `${size} is neither the map's size nor a multiple of ${PAGE_BYTES}`)
    return { size, pages: this.readSparse(this.runs(f, size), size, `${f.path}.runs`) }
  }

  /** The runs of a page list, checked before anything is allocated: in order, inside the map, their slots in file order. */
  private runs(c: Fields, size: number): PageRunV2[] {
    const list = c.value.runs
    const at = `${c.path}.runs`
    if (!Array.isArray(list)) throw new FieldError(at, 'expected an array')
    const pages = Math.ceil(size / PAGE_BYTES)
    const out: PageRunV2[] = []
    let end = 0
    let next = this.next
    list.forEach((r: unknown, i) => {
      if (
        !Array.isArray(r) ||
        (r.length !== 3 && !(r.length === 4 && r[3] === 0)) ||
        !r.slice(0, 3).every((n) => Number.isSafeInteger(n) && (n as number) >= 0) ||
        (r[1] as number) < 1
      )
        throw new FieldError(`${at}[${i}]`, 'expected [page, count, slot] or [page, count, slot, 0]')
      const [page, count, slot] = r as number[]
      const repeat = r.length === 4
      if (page! < end || page! + count! > pages)
        throw new FieldError(
          `${at}[${i}]`,
          `pages ${page}-${page! + count! - 1} are out of order or past the map's ${pages}`,
        )
      const used = repeat ? 1 : count!
      if (slot! === next) next += used
      else if (slot! + used > next)
        throw new FieldError(`${at}[${i}]`, `slot ${slot} is neither a page already read nor the next one (${next})`)
      if (next > this.pageCount)
        throw new FieldError(`${at}[${i}]`, `slot ${slot} is past the ${this.pageCount} pages the file stores`)
      end = page! + count!
      out.push({ page: page!, count: count!, slot: slot!, repeat })
    })
    return out
  }

  private readDense(runs: readonly PageRunV2[], size: number): Uint8Array {
    const out = allocateShared(size)
    const scratch = new Uint8Array(PAGE_BYTES)
    for (const run of runs) {
      const at = run.page * PAGE_BYTES
      if (run.repeat) {
        this.readSlots(run.slot, 1, scratch, 0)
        // The page once, then what is filled copied after itself: log2(count) copies, not count.
        const end = Math.min(size, at + run.count * PAGE_BYTES)
        out.set(scratch.subarray(0, Math.min(PAGE_BYTES, end - at)), at)
        for (let filled = PAGE_BYTES; at + filled < end; filled *= 2)
          out.copyWithin(at + filled, at, at + Math.min(filled, end - at - filled))
        continue
      }
      // Whole pages straight into the map's buffer; a short last page through the scratch page.
      const whole = Math.min(run.count, Math.floor((size - at) / PAGE_BYTES))
      if (whole > 0) this.readSlots(run.slot, whole, out, at)
      if (whole < run.count) {
        this.readSlots(run.slot + whole, 1, scratch, 0)
        out.set(scratch.subarray(0, size - (at + whole * PAGE_BYTES)), at + whole * PAGE_BYTES)
      }
    }
    return out
  }

  private readSparse(runs: readonly PageRunV2[], size: number, path: string): Map<number, Uint8Array> {
    const held = new Map<number, Uint8Array>()
    for (const run of runs) {
      this.sparseLeft -= run.count
      if (this.sparseLeft < 0)
        throw new FieldError(
          path,
          `lists more pages than the ${SPARSE_BUDGET >> 20} MiB a load holds page by page beyond what the file stores`,
        )
      const fresh = run.slot === this.next
      if (fresh && !run.repeat) {
        const block = new Uint8Array(run.count * PAGE_BYTES)
        this.readSlots(run.slot, run.count, block, 0)
        for (let k = 0; k < run.count; k++)
          this.cache.set(run.slot + k, block.subarray(k * PAGE_BYTES, (k + 1) * PAGE_BYTES))
      }
      for (let k = 0; k < run.count; k++) {
        const offset = (run.page + k) * PAGE_BYTES
        const page = this.cached(run.repeat ? run.slot : run.slot + k)
        held.set(offset, page.length <= size - offset ? page : page.subarray(0, size - offset))
      }
    }
    return held
  }

  /** One page by slot for a map held page by page: read once (checked if it is the next one), then shared. */
  private cached(slot: number): Uint8Array {
    let page = this.cache.get(slot)
    if (!page) {
      page = new Uint8Array(PAGE_BYTES)
      this.readSlots(slot, 1, page, 0)
      this.cache.set(slot, page)
    }
    return page
  }

  /** Reads `count` slots into `into` at `at`; slots read for the first time have their crc32 recorded. */
  private readSlots(slot: number, count: number, into: Uint8Array, at: number): void {
    const length = count * PAGE_BYTES
    const position = this.start + slot * PAGE_BYTES
    const fresh = slot === this.next
    const crcs = fresh ? this.crcs.subarray(slot, slot + count) : undefined
    if (this.src.readPages?.(into.subarray(at, at + length), position, crcs)) {
      if (fresh) this.next += count
      return
    }
    if (this.src.read(into, at, length, position) !== length) throw new LoadError('the file ended early')
    if (!fresh) return
    for (let k = 0; k < count; k++)
      this.crcs[slot + k] = crc32(into.subarray(at + k * PAGE_BYTES, at + (k + 1) * PAGE_BYTES))
    this.next += count
  }
}

/** `untouched`: ascending, disjoint [from, to) byte ranges inside the map, page-aligned (`to` may be the map's end). */
function decodeUntouched(m: Fields, mapSize: bigint): PageRun[] {
  const runs: PageRun[] = []
  let end = 0
  for (const { value, path } of m.array('untouched')) {
    if (!Array.isArray(value) || value.length !== 2 || !value.every((n) => Number.isSafeInteger(n)))
      throw new FieldError(path, 'expected [from, to]')
    const [from, to] = value as [number, number]
    if (
      from < end ||
      to <= from ||
      BigInt(to) > mapSize ||
      from % PAGE_BYTES !== 0 ||
      (to % PAGE_BYTES !== 0 && BigInt(to) !== mapSize)
    )
      throw new FieldError(path, `[${from}, ${to}] is not an ascending page range inside the map of ${mapSize} bytes`)
    end = to
    runs.push([from, to])
  }
  return runs
}
