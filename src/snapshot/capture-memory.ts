// A map's contents at capture. Maps the process can read come in one buffer (process_vm_readv).
// The rest is read as a debugger reads it, through /proc/PID/mem, page by page with zeros left out:
// guard pages and PROT_NONE reservations. Pages of private anonymous memory that were never touched
// read as zeros without being read at all (/proc/PID/smaps, /proc/PID/pagemap), so that a 16 GiB
// reservation costs a look at its totals, not 16 GiB of copying; memory stays bounded by the pages
// that hold data.
import { closeSync, openSync, readFileSync, readSync, statSync } from 'node:fs'
import { MemoryError } from '../errors.js'
import { allocateCapture } from '../native/memory.js'
import type { MemoryMap } from '../process/maps.js'
import type { Process } from '../process/process.js'
import { PAGE } from './content.js'
import { levelHolding, levelRank } from './memory-view.js'
import type { MapState, SnapshotLevel, SparseContent } from './model.js'
import { hex } from './regions.js'

/** Bytes read at once page by page, and pagemap entries (one per page) read at once. */
const CHUNK = 1 << 20
const PAGEMAP_BATCH = 1 << 15
/** Bits 63 (present) and 62 (swapped) of a pagemap entry, in its upper 32 bits. */
const TOUCHED = 0xc0000000
const ZERO_PAGE = Buffer.alloc(PAGE)

/** One map, with its contents when the level holds them; what cannot be read is recorded, not thrown. */
export function captureMap(
  proc: Process,
  m: MemoryMap,
  level: SnapshotLevel,
  buildId: string | undefined,
  residency: Residency,
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
    const content = allocateCapture(Number(m.end - m.start))
    try {
      proc.readMemoryInto(m.start, content)
      return { ...base, content }
    } catch {
      // part of it, at least, cannot be read: page by page below, to hold what can be
    }
  } else if (m.perms[3] === 's') {
    return {
      ...base,
      unreadable: `not read: a shared map the process cannot read (${m.perms}), whose untouched pages a read through ptrace would allocate`,
    }
  }
  const { sparse, failure } = readPages(proc, m, residency)
  return {
    ...base,
    ...(sparse.size > 0 ? { sparse } : {}),
    ...(failure ? { unreadable: failureReason(m, sparse.size, failure) } : {}),
  }
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
function readPages(proc: Process, m: MemoryMap, residency: Residency): { sparse: SparseContent; failure?: string } {
  const size = Number(m.end - m.start)
  const pages = new Map<number, Uint8Array>()
  const privateAnonymous = m.inode === 0 && m.perms[3] === 'p' && !m.path.startsWith('/')
  const ranges = (privateAnonymous ? residency.touched(m.start, m.end) : undefined) ?? [[0, size]]
  for (const [from, to] of ranges) {
    const stop = readRange(proc, m.start, from, to, pages)
    if (stop) return { sparse: { size: stop.offset, pages }, failure: stop.errno }
  }
  return { sparse: { size, pages } }
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

/**
 * Which pages of a range are in memory or swapped out; the others were never touched (or were
 * discarded), and read as zeros. /proc/PID/smaps first, whose per-map totals say in well under a
 * millisecond that a whole reservation is untouched; /proc/PID/pagemap, 8 bytes a page, for the rest.
 */
export class Residency {
  private readonly pid: number
  private totals: Map<bigint, bigint> | undefined
  private fd: number | undefined
  private failed = false
  private readonly entries = Buffer.alloc(PAGEMAP_BATCH * 8)

  constructor(pid: number) {
    this.pid = pid
  }

  /** Runs [from, to) of offsets in [start, end) whose pages were touched; undefined when the kernel does not say. */
  touched(start: bigint, end: bigint): Array<[number, number]> | undefined {
    if (this.residentBytes(start) === 0n) return []
    const fd = this.open()
    if (fd === undefined) return undefined
    const first = Number(start / BigInt(PAGE))
    const count = Number((end - start) / BigInt(PAGE))
    const words = new Uint32Array(this.entries.buffer, this.entries.byteOffset, PAGEMAP_BATCH * 2)
    const runs: Array<[number, number]> = []
    let open: number | undefined
    for (let i = 0; i < count; i += PAGEMAP_BATCH) {
      const n = Math.min(PAGEMAP_BATCH, count - i)
      let got: number
      try {
        got = readSync(fd, this.entries, 0, n * 8, (first + i) * 8)
      } catch {
        got = -1
      }
      if (got !== n * 8) return undefined
      for (let j = 0; j < n; j++) {
        const touched = ((words[j * 2 + 1] ?? 0) & TOUCHED) !== 0
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
