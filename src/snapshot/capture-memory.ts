// A map's contents at capture. Maps the process can read come in one buffer (process_vm_readv).
// The rest is read as a debugger reads it, through /proc/PID/mem, page by page with zeros left out:
// guard pages and PROT_NONE reservations. Pages of private anonymous memory (heap, stacks, anonymous
// mmaps) that were never touched read as zeros without being read at all (/proc/PID/smaps, then
// PAGEMAP_SCAN or /proc/PID/pagemap), and the map's `untouched` lists them: a 16 GiB reservation or
// 256 idle 8 MiB thread stacks cost a look at their page tables, not their size in copying.
import { closeSync, openSync, readFileSync, readSync, statSync } from 'node:fs'
import { MemoryError } from '../errors.js'
import { allocateCapture } from '../native/memory.js'
import { PAGE_IS_PRESENT, PAGE_IS_SWAPPED, pagemapScan } from '../native/pagemap.js'
import type { MemoryMap } from '../process/maps.js'
import type { Process } from '../process/process.js'
import { PAGE } from './content.js'
import type { CaptureBase } from './incremental.js'
import { LiveReadError, withLiveContent } from './live-content.js'
import { PatchedPages, insideRuns, type PageRoot } from './patched-pages.js'
import { levelHolding, levelRank } from './memory-view.js'
import type { MapState, PageRun, SnapshotLevel, SparseContent } from './model.js'
import { hex } from './regions.js'

/** Bytes read at once page by page, and pagemap entries (one per page) read at once. */
const CHUNK = 1 << 20
const PAGEMAP_BATCH = 1 << 15
/** Bits 63 (present) and 62 (swapped) of a pagemap entry, in its upper 32 bits. */
const TOUCHED = 0xc0000000
/** Bit 63 alone: where no page is swapped out (see Residency.swapped). */
const PRESENT = 0x80000000
const ZERO_PAGE = Buffer.alloc(PAGE)
/** Whether PAGEMAP_SCAN answered so far in this process (cleared at its first refusal). */
let scanWorks = true

/** One map, with its contents when the level holds them; what cannot be read is recorded, not thrown. */
export function captureMap(
  proc: Process,
  m: MemoryMap,
  level: SnapshotLevel,
  buildId: string | undefined,
  memory: CaptureMemory,
  previous?: CaptureBase,
  share = true,
): MapState {
  const base: MapState = {
    start: m.start,
    end: m.end,
    perms: m.perms,
    offset: m.offset,
    path: m.path,
    inode: m.inode,
    ...(buildId ? { buildId } : {}),
  }
  const wanted = level === 'full' || (level === 'writable' && m.perms[1] === 'w')
  if (!wanted || levelRank(levelHolding(m)) > levelRank(level)) return base
  const kernel = kernelMapReason(m)
  if (kernel) return { ...base, unreadable: kernel }
  if (m.perms[0] === 'r') {
    const touched = isPrivateAnonymous(m) ? touchedRuns(m, memory.residency, previous) : undefined
    if (memory.live && Number(m.end - m.start) >= LIVE_MIN) return liveMap(proc, base, touched)
    const held =
      (touched && previous && share && shareFrom(proc, m, touched, previous)) || readWhole(proc, m, touched, memory)
    if (held) return remember({ ...base, ...held }, touched)
    // part of it, at least, cannot be read: page by page below, to hold what can be
  } else if (m.perms[3] === 's') {
    return {
      ...base,
      unreadable: `not read: a shared map the process cannot read (${m.perms}), whose untouched pages a read through ptrace would allocate`,
    }
  }
  const { sparse, failure, untouched } = readPages(proc, m, memory.residency)
  return {
    ...base,
    ...(sparse.size > 0 ? { sparse } : {}),
    ...(untouched ? { untouched } : {}),
    ...(failure ? { unreadable: failureReason(m, sparse.size, failure) } : {}),
  }
}

/** Maps at least this large are left in the process by a dump (proc.saveSnapshot); smaller ones are copied. */
const LIVE_MIN = 1 << 20

/** A dump's map: its touched runs noted, its bytes read from the stopped process when written (live-content.ts). */
function liveMap(proc: Process, base: MapState, touched: readonly PageRun[] | undefined): MapState {
  const size = Number(base.end - base.start)
  const map: MapState = touched ? { ...base, untouched: untouchedRuns(touched, size) } : base
  return withLiveContent(map, {
    size,
    start: (at, into, crcs) => {
      const started = proc.startMemoryRead(base.start + BigInt(at), into, crcs)
      return {
        finish: () => {
          try {
            started.finish()
          } catch (error) {
            throw error instanceof MemoryError ? new LiveReadError(map) : error
          }
        },
      }
    },
  })
}

/** Kernel maps that no read gets: known by name, never read (their contents would change at every capture anyway). */
function kernelMapReason(m: MemoryMap): string | undefined {
  if (m.path.startsWith('[vvar')) return `${m.path} is kernel data that ptrace cannot read`
  if (m.path === '[vsyscall]' && m.perms[0] !== 'r')
    return '[vsyscall] is execute-only (vsyscall=xonly): neither the process nor ptrace can read it'
  return undefined
}

/**
 * A map's pages as a debugger reads them, up to the first page that cannot be read (past the end of
 * its file, for instance). Only pages holding a non-zero byte are kept.
 */
function readPages(
  proc: Process,
  m: MemoryMap,
  residency: Residency,
): { sparse: SparseContent; failure?: string; untouched?: PageRun[] } {
  const size = Number(m.end - m.start)
  const pages = new Map<number, Uint8Array>()
  const touched = isPrivateAnonymous(m) ? residency.touched(m.start, m.end) : undefined
  for (const [from, to] of touched ?? [[0, size]]) {
    const stop = readRange(proc, m.start, from, to, pages)
    if (stop) return { sparse: { size: stop.offset, pages }, failure: stop.errno }
  }
  return { sparse: { size, pages }, ...(touched ? { untouched: untouchedRuns(touched, size) } : {}) }
}

/** The touched runs of the private anonymous maps captured, kept for the next capture of the same maps. */
const touchedOf = new WeakMap<MapState, readonly PageRun[]>()

function remember(map: MapState, touched: readonly PageRun[] | undefined): MapState {
  if (touched) touchedOf.set(map, touched)
  return map
}

/** The runs an earlier capture of a map held: its touched runs, or all but its untouched ones. */
function heldRuns(old: MapState, size: number): readonly PageRun[] {
  return touchedOf.get(old) ?? (old.untouched ? untouchedRuns(old.untouched, size) : [[0, size]])
}

/**
 * The touched runs of a private anonymous map. When a tracker saw every write since the earlier
 * capture: the pages touched then and the pages written since (a page discarded since counts as
 * written, and reads as zeros), without a look at the page tables, which under write tracking list
 * every page as touched anyway (uffd-wp markers read as swapped); the earlier list itself when the
 * pages written lie inside it. Else the page tables'.
 */
function touchedRuns(
  m: MemoryMap,
  residency: Residency,
  previous: CaptureBase | undefined,
): readonly PageRun[] | undefined {
  if (!previous?.written) return residency.touched(m.start, m.end)
  const before = heldRuns(previous.map, Number(m.end - m.start))
  if (previous.written.every(([from, to]) => insideRuns(before, from, to))) return before
  return unionRuns(before, previous.written)
}

/** The union of two ascending lists of disjoint runs, ascending, merged where they touch. */
function unionRuns(a: readonly PageRun[], b: readonly PageRun[]): PageRun[] {
  const out: Array<[number, number]> = []
  let i = 0
  let j = 0
  while (i < a.length || j < b.length) {
    const next = j >= b.length || (i < a.length && a[i]![0] <= b[j]![0]) ? a[i++]! : b[j++]!
    const last = out[out.length - 1]
    if (last && next[0] <= last[1]) last[1] = Math.max(last[1], next[1])
    else out.push([next[0], next[1]])
  }
  return out
}

/** Heap, stacks, anonymous mmaps: memory whose untouched pages are zeros, known from the page tables. */
function isPrivateAnonymous(m: MemoryMap): boolean {
  return m.inode === 0 && m.perms[3] === 'p' && !m.path.startsWith('/')
}

type Held = Pick<MapState, 'content' | 'sparse' | 'untouched'>

/**
 * A readable map in one zeroed buffer: only its touched runs are read when the page tables say which
 * (the others stay zeros, and a large buffer's untouched pages cost no memory); undefined when part
 * of it cannot be read.
 */
function readWhole(
  proc: Process,
  m: MemoryMap,
  touched: readonly PageRun[] | undefined,
  memory: CaptureMemory,
): Held | undefined {
  const size = Number(m.end - m.start)
  try {
    const content = memory.buffer(size, touched ? touchedBytes(touched) : size)
    if (!touched) {
      proc.readMemoryInto(m.start, content)
      return { content }
    }
    for (const [from, to] of touched) proc.readMemoryInto(m.start + BigInt(from), content.subarray(from, to))
    return { content, untouched: untouchedRuns(touched, size) }
  } catch {
    return undefined
  }
}

/** Maps at least this large share their unchanged pages with the previous capture; smaller ones are copied (unless unchanged). */
const SHARE_MIN = 1 << 20

/**
 * A map that was captured before (`previous`, the same map): the earlier capture's pages with the
 * pages written since laid over them (PatchedPages), so that the new snapshot costs the pages that
 * changed, not the map's size. With a tracker's written runs, only those are read; without, every
 * touched page is read (a chunk at a time, not kept) and compared. Nothing changed: the earlier
 * contents themselves. Undefined when the map is small, a read fails, or most pages changed (then a
 * dense read is better).
 */
function shareFrom(proc: Process, m: MemoryMap, touched: readonly PageRun[], previous: CaptureBase): Held | undefined {
  const size = Number(m.end - m.start)
  // a small map is copied, unless a tracker saw no write to it: then it is the earlier contents themselves
  if (size < SHARE_MIN && previous.written?.length !== 0) return undefined
  const old = previous.map
  // pages that differ from the earlier capture: their new bytes, null when they are zeros now
  const changed = new Map<number, Uint8Array | null>()
  try {
    // with a tracker, `touched` holds the written runs (touchedRuns): read those; without, every touched page
    for (const [from, to] of previous.written ?? touched) compareRange(proc, m.start, from, to, old, changed)
  } catch (error) {
    if (error instanceof MemoryError) return undefined
    throw error
  }
  const listed = heldRuns(old, size)
  const sameLayout = touched === listed || sameRuns(touched, listed)
  const untouched = sameLayout && old.untouched ? old.untouched : untouchedRuns(touched, size)
  if (changed.size === 0 && sameLayout)
    return { ...(old.content ? { content: old.content } : { sparse: old.sparse }), untouched }
  if (changed.size * PAGE * 2 > size) return undefined
  // pages touched then and untouched now (discarded: MADV_DONTNEED) read as zeros: no longer listed
  if (!sameLayout)
    for (const [a, b] of intersectRuns(listed, untouched))
      for (let at = a; at < b; at += PAGE) if (!changed.has(at)) changed.set(at, null)
  const root: PageRoot = old.content ? { content: old.content, listed } : { pages: old.sparse?.pages ?? new Map() }
  return { sparse: { size, pages: PatchedPages.over(root, changed) }, untouched }
}

/** The intersection of two ascending lists of disjoint runs, in one pass over both. */
function intersectRuns(a: readonly PageRun[], b: readonly PageRun[]): PageRun[] {
  const out: PageRun[] = []
  let i = 0
  let j = 0
  while (i < a.length && j < b.length) {
    const from = Math.max(a[i]![0], b[j]![0])
    const to = Math.min(a[i]![1], b[j]![1])
    if (from < to) out.push([from, to])
    if (a[i]![1] < b[j]![1]) i++
    else j++
  }
  return out
}

/** A page of an earlier capture: a view of its bytes, or undefined where it held none (zeros). */
function oldPage(old: MapState, at: number): Uint8Array | undefined {
  return old.content ? old.content.subarray(at, at + PAGE) : old.sparse?.pages.get(at)
}

/** [at, at + length) of an earlier capture as one view, when it holds them in one buffer (the range unpatched). */
function oldBytes(old: MapState, at: number, length: number): Uint8Array | undefined {
  if (old.content) return old.content.subarray(at, at + length)
  const pages = old.sparse?.pages
  return pages instanceof PatchedPages ? pages.denseView(at, length) : undefined
}

/**
 * Reads [from, to) of a map a chunk at a time and compares it with the earlier capture, a chunk at
 * once (memcmp), then page by page where the chunk differs: the pages that differ go to `changed`.
 */
function compareRange(
  proc: Process,
  start: bigint,
  from: number,
  to: number,
  old: MapState,
  changed: Map<number, Uint8Array | null>,
): void {
  chunkBuffer ??= new Uint8Array(CHUNK)
  const chunk = Buffer.from(chunkBuffer.buffer, chunkBuffer.byteOffset, chunkBuffer.length)
  for (let pos = from; pos < to; pos += CHUNK) {
    const view = chunk.subarray(0, Math.min(CHUNK, to - pos))
    proc.readMemoryInto(start + BigInt(pos), view)
    const earlier = oldBytes(old, pos, view.length)
    if (earlier && view.equals(earlier)) continue
    for (let at = 0; at < view.length; at += PAGE) {
      const page = view.subarray(at, at + PAGE)
      const before = oldPage(old, pos + at)
      if (before ? page.equals(before) : isZero(page)) continue
      changed.set(pos + at, isZero(page) ? null : Uint8Array.prototype.slice.call(page))
    }
  }
}

function isZero(page: Buffer): boolean {
  return page.equals(page.length === PAGE ? ZERO_PAGE : ZERO_PAGE.subarray(0, page.length))
}

function touchedBytes(runs: readonly PageRun[]): number {
  return runs.reduce((n, [from, to]) => n + to - from, 0)
}

/** The runs of [0, size) outside `touched` (ascending, disjoint). */
export function untouchedRuns(touched: readonly PageRun[], size: number): PageRun[] {
  const out: PageRun[] = []
  let at = 0
  for (const [from, to] of touched) {
    if (from > at) out.push([at, from])
    at = to
  }
  if (at < size) out.push([at, size])
  return out
}

function sameRuns(a: readonly PageRun[], b: readonly PageRun[] | undefined): boolean {
  return b !== undefined && a.length === b.length && a.every(([f, t], i) => b[i]?.[0] === f && b[i]?.[1] === t)
}

let chunkBuffer: Uint8Array | undefined

/** Reads [from, to) of a map into `pages`; where a page cannot be read, its offset and the kernel's errno. */
function readRange(
  proc: Process,
  start: bigint,
  from: number,
  to: number,
  pages: Map<number, Uint8Array>,
): { offset: number; errno: string } | undefined {
  chunkBuffer ??= new Uint8Array(CHUNK)
  for (let pos = from; pos < to;) {
    const view = chunkBuffer.subarray(0, Math.min(CHUNK, to - pos))
    let got = view.length
    let errno: string | undefined
    try {
      proc.readMemoryInto(start + BigInt(pos), view)
    } catch (error) {
      if (!(error instanceof MemoryError)) throw error
      got = Number(error.address - start) - pos
      got -= got % PAGE
      errno = error.errno
    }
    keepPages(view.subarray(0, got), pos, pages)
    pos += got
    // A read stops at the first page it cannot read: read again from there, to learn why.
    if (got === 0) return { offset: pos, errno: errno ?? 'a short read' }
  }
  return undefined
}

function keepPages(bytes: Uint8Array, offset: number, pages: Map<number, Uint8Array>): void {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length)
  for (let at = 0; at < buf.length; at += PAGE) {
    const page = buf.subarray(at, Math.min(at + PAGE, buf.length))
    if (!page.equals(page.length === PAGE ? ZERO_PAGE : ZERO_PAGE.subarray(0, page.length)))
      pages.set(offset + at, Uint8Array.prototype.slice.call(page))
  }
}

/** Why reading stopped at `offset`: past the end of the mapped file (where the process gets SIGBUS), or the errno. */
function failureReason(m: MemoryMap, offset: number, errno: string): string {
  const fileSize = m.path.startsWith('/') && m.inode !== 0 ? sizeOfFile(m.path, m.inode) : undefined
  const pastEnd = fileSize !== undefined && m.offset + BigInt(offset) >= roundUp(fileSize)
  const from = hex(BigInt(offset))
  if (pastEnd)
    return `from +${from} on, past the end of its file (${fileSize} bytes): the process would get SIGBUS, ptrace gets ${errno}`
  return offset === 0 ? errno : `${errno} from +${from} on`
}

function sizeOfFile(path: string, inode: number): bigint | undefined {
  try {
    const st = statSync(path, { bigint: true })
    return st.ino === BigInt(inode) ? st.size : undefined
  } catch {
    return undefined
  }
}

function roundUp(size: bigint): bigint {
  const page = BigInt(PAGE)
  return ((size + page - 1n) / page) * page
}

/** Slabs hold the buffers of mostly untouched maps from 1 MiB to a quarter of the largest slab; they grow 32 MiB, 64 MiB... */
const SLAB_FIRST = 32 << 20
const SLAB_MAX = 512 << 20
const SLAB_MIN_MAP = 1 << 20

/**
 * Where a capture's buffers come from. Maps mostly touched get a buffer each, THP-advised when that
 * pays. Maps mostly untouched (idle thread stacks, reservations) are carved out of a few zeroed slabs
 * whose untouched pages cost no memory: a buffer each would make V8 collect garbage at every 64 MiB
 * of new external memory (100 collections, half a second, for 256 idle 8 MiB thread stacks).
 */
export class CaptureMemory {
  readonly residency: Residency
  /** A dump's capture: large readable maps stay in the process (liveMap). */
  live = false
  /** Whether large buffers may ask for huge pages (see capture.ts). */
  private readonly hugeOk: boolean
  private slab: Uint8Array | undefined
  private used = 0

  constructor(residency: Residency, hugeOk: boolean) {
    this.residency = residency
    this.hugeOk = hugeOk
  }

  /** A zeroed buffer of `size` bytes of which `touched` will be written. */
  buffer(size: number, touched: number): Uint8Array {
    if (touched * 2 >= size || size < SLAB_MIN_MAP || size > SLAB_MAX / 4)
      return allocateCapture(size, this.hugeOk && touched * 2 >= size)
    if (!this.slab || this.used + size > this.slab.length) {
      const next = this.slab ? Math.min(SLAB_MAX, this.slab.length * 2) : SLAB_FIRST
      this.slab = new Uint8Array(Math.max(next, size))
      this.used = 0
    }
    this.used += size
    return this.slab.subarray(this.used - size, this.used)
  }
}

/**
 * Which pages of a range are in memory or swapped out; the others were never touched (or were
 * discarded), and read as zeros. PAGEMAP_SCAN (Linux 6.7+) returns the runs; before it,
 * /proc/PID/smaps, whose per-map totals say that a whole reservation is untouched, then
 * /proc/PID/pagemap, 8 bytes a page, for the rest.
 */
export class Residency {
  private readonly pid: number
  private totals: Map<bigint, bigint> | undefined
  private fd: number | undefined
  private failed = false
  private swap: boolean | undefined
  /** pagemap entries read at once, for kernels without PAGEMAP_SCAN: allocated at the first such read. */
  private entriesBuffer: Buffer | undefined
  /** PAGEMAP_SCAN unless the kernel lacks it (before 6.7), or the caller measures the fallback. */
  private scan: boolean

  constructor(pid: number, options: { scan?: boolean } = {}) {
    this.pid = pid
    this.scan = options.scan ?? scanWorks
  }

  /** Runs [from, to) of offsets in [start, end) whose pages were touched; undefined when the kernel does not say. */
  touched(start: bigint, end: bigint): PageRun[] | undefined {
    const fd = this.open()
    // PAGEMAP_SCAN skips empty page tables itself; smaps would walk every map's (25 ms for a 256 MiB heap)
    if (fd !== undefined && this.scan) {
      const runs = pagemapScan(fd, start, end, this.swapped() ? PAGE_IS_PRESENT | PAGE_IS_SWAPPED : PAGE_IS_PRESENT)
      if (typeof runs !== 'number') return runs.map(([from, to]) => [Number(from - start), Number(to - start)])
      this.scan = scanWorks = false // EINVAL/ENOTTY: no PAGEMAP_SCAN here, 8 bytes a page instead
    }
    if (this.residentBytes(start) === 0n) return []
    if (fd === undefined) return undefined
    return this.readEntries(fd, start, end)
  }

  /** /proc/PID/pagemap read 8 bytes a page, bits 63 (present) and 62 (swapped). */
  private readEntries(fd: number, start: bigint, end: bigint): PageRun[] | undefined {
    const first = Number(start / BigInt(PAGE))
    const count = Number((end - start) / BigInt(PAGE))
    const entries = (this.entriesBuffer ??= Buffer.alloc(PAGEMAP_BATCH * 8))
    const words = new Uint32Array(entries.buffer, entries.byteOffset, PAGEMAP_BATCH * 2)
    const runs: Array<[number, number]> = []
    const touchedBits = this.swapped() ? TOUCHED : PRESENT
    let open: number | undefined
    for (let i = 0; i < count; i += PAGEMAP_BATCH) {
      const n = Math.min(PAGEMAP_BATCH, count - i)
      let got: number
      try {
        got = readSync(fd, entries, 0, n * 8, (first + i) * 8)
      } catch {
        got = -1
      }
      if (got !== n * 8) return undefined
      for (let j = 0; j < n; j++) {
        const touched = ((words[j * 2 + 1] ?? 0) & touchedBits) !== 0
        if (touched && open === undefined) open = (i + j) * PAGE
        else if (!touched && open !== undefined) {
          runs.push([open, (i + j) * PAGE])
          open = undefined
        }
      }
    }
    if (open !== undefined) runs.push([open, count * PAGE])
    return runs
  }

  /**
   * Whether the process has pages swapped out (VmSwap in /proc/PID/status, a counter: no page-table
   * walk). Without, a page the page tables list as swapped is a pte marker, not data: write tracking
   * (uffd-wp) puts one on every page it protects that was never touched. Unknown: assume some.
   */
  private swapped(): boolean {
    if (this.swap === undefined) {
      let kb = NaN
      try {
        kb = Number(/^VmSwap:\s+(\d+) kB/m.exec(readFileSync(`/proc/${this.pid}/status`, 'latin1'))?.[1] ?? NaN)
      } catch {
        // no status: assume pages may be swapped out
      }
      this.swap = kb !== 0
    }
    return this.swap
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd)
    this.fd = undefined
  }

  /** Rss + Swap of the map starting at `start`, in kB, from smaps; undefined when smaps does not say. */
  private residentBytes(start: bigint): bigint | undefined {
    if (!this.totals) {
      this.totals = new Map()
      let text = ''
      try {
        text = readFileSync(`/proc/${this.pid}/smaps`, 'latin1')
      } catch {
        // no smaps: pagemap alone decides
      }
      let current: bigint | undefined
      for (const line of text.split('\n')) {
        const head = /^([0-9a-f]+)-[0-9a-f]+ /.exec(line)
        if (head) {
          current = BigInt(`0x${head[1]}`)
          continue
        }
        const field = /^(Rss|Swap):\s+(\d+) kB/.exec(line)
        if (field && current !== undefined)
          this.totals.set(current, (this.totals.get(current) ?? 0n) + BigInt(field[2] ?? 0))
      }
    }
    return this.totals.get(start)
  }

  private open(): number | undefined {
    if (this.fd === undefined && !this.failed) {
      try {
        this.fd = openSync(`/proc/${this.pid}/pagemap`, 'r')
      } catch {
        this.failed = true
      }
    }
    return this.fd
  }
}
