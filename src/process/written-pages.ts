// Which pages a tracee wrote since a point: the base of incremental snapshots and of restore.
//
// uffd-wp (Linux >= 6.7): a userfaultfd is created inside the tracee (an injected syscall, since a
// userfaultfd belongs to the mm of its creator), copied into the tracer with pidfd_getfd and closed
// in the tracee (the program never sees it). The tracer registers the ranges in write-protect mode
// with asynchronous faults (a write clears the page's protection in the kernel; nobody reads the
// fd), and PAGEMAP_SCAN lists the pages whose protection is gone and protects them again, in one
// walk. Unpopulated pages are protected too (WP_UNPOPULATED): their first write counts.
//
// soft-dirty (kernels built with CONFIG_MEM_SOFT_DIRTY): clear_refs "4" clears the bits of the
// whole process, pagemap's bit 55 reads them. Not available on the kernels this is tested on.
//
// A range mapped after registration is not tracked: `tracked` says what is; callers read the rest.
// Shared and file-backed mappings are left out by default: their bytes change without a write
// fault of this process. A tracked range that is unmapped since reports nothing: intersect the
// answer with the maps of the stop. Written pages are exact to 4 KiB (a written transparent huge
// page is split by the kernel). A tracked page never written reads as swapped in pagemap (bit 62,
// with bit 57 uffd-wp): the pte marker that protects it; smaps' Swap stays 0 and it reads as zeros.
import { ProcsnapError, TrackingEndedError } from '../errors.js'
import { errnoName } from '../native/constants.js'
import { closeFd } from '../native/memory.js'
import {
  PAGE,
  PM_SCAN_CHECK_WPASYNC,
  PM_SCAN_WP_MATCHING,
  PM_SOFT_DIRTY,
  clearSoftDirty,
  openPagemap,
  readPagemap,
  scanWritten,
  type PageRun,
} from '../native/pagemap.js'
import { pidfdGetfd, pidfdOpen } from '../native/pidfd.js'
import {
  UFFDIO_REGISTER_MODE_WP,
  UFFD_FEATURE,
  UFFD_USER_MODE_ONLY,
  uffdApi,
  uffdRegister,
} from '../native/userfaultfd.js'
import { classify, gaps, sortRuns, writableRanges, type UntrackedRange } from './page-runs.js'
import type { AddressSpaceEnd, Process } from './process.js'
import { registeredRuns } from './uffd-ranges.js'
import { probeWriteTracking, type WriteTracking } from './write-probe.js'

export type { PageRun } from '../native/pagemap.js'
export type { WriteTracking } from './write-probe.js'
export type { UntrackedRange } from './page-runs.js'

const SYS_USERFAULTFD = 323
const SYS_CLOSE = 3
const O_CLOEXEC = 0o2000000
const ERRNO_EPERM = 1
/** Pagemap entries read per pread by the soft-dirty scan (512 KiB). */
const SOFT_DIRTY_CHUNK = 65536

/** What a scan found. */
export interface WrittenPages {
  /** Runs of pages written since the last reset, in address order, within the tracked ranges. */
  written: PageRun[]
  /** Ranges that stopped being tracked since the last scan (remapped): treat them as fully written. */
  lost: UntrackedRange[]
}

export interface TrackOptions {
  /**
   * Ranges to track, page-aligned; default: every writable mapping but [vvar] and [vsyscall]. Of
   * these, shared and file-backed mappings are left out (see `untracked`): their bytes can change
   * without a write of this process.
   */
  ranges?: readonly PageRun[]
  /** Track private file-backed mappings too (.data): right unless the program MADV_DONTNEEDs them. */
  fileBacked?: boolean
  /** Use this mechanism or none (tests); default: the best this kernel has. */
  mechanism?: WriteTracking
}

/** A tracker, or none and the reason (no mechanism on this kernel, refused in this tracee). */
export type Tracking = { tracker: WriteTracker; reason?: undefined } | { tracker: undefined; reason: string }

/** Tracks the pages a tracee writes, over given ranges, from its creation or last reset. */
export class WriteTracker {
  readonly mechanism: WriteTracking
  private readonly pid: number
  private readonly ranges: PageRun[]
  private readonly skipped: UntrackedRange[]
  private readonly uffd: number
  private pagemap: number
  private ended: string | undefined = undefined
  private readonly unsubscribe: () => void

  /** @internal Use trackWrites(). */
  constructor(
    proc: Process,
    mechanism: WriteTracking,
    uffd: number,
    pagemap: number,
    ranges: PageRun[],
    skipped: UntrackedRange[],
  ) {
    this.pid = proc.pid
    this.mechanism = mechanism
    this.uffd = uffd
    this.pagemap = pagemap
    this.ranges = ranges
    this.skipped = skipped
    this.unsubscribe = proc.onAddressSpaceEnd((why) => this.end(why))
  }

  /** The ranges whose writes this tracker sees (page-aligned, in address order, one per mapping). */
  get tracked(): readonly PageRun[] {
    return this.ranges
  }

  /** Ranges asked for but not tracked, with why: treat them as fully written. */
  get untracked(): readonly UntrackedRange[] {
    return this.skipped
  }

  /** Whether the tracker still works: false once closed, or once its address space is gone. */
  get open(): boolean {
    return this.ended === undefined
  }

  /**
   * The pages written since the last reset (or since trackWrites), and a reset: with `reset` false
   * the pages stay marked, and the next scan reports them again. Meant at a stop of the process.
   */
  scan(options: { reset?: boolean } = {}): WrittenPages {
    if (this.ended !== undefined) throw new TrackingEndedError(this.ended)
    const reset = options.reset ?? true
    return this.mechanism === 'uffd-wp' ? this.scanUffd(reset) : this.scanSoftDirty(reset)
  }

  /** Stops tracking: the tracee's pages go back to normal (closing our copy of its userfaultfd unregisters them). */
  close(): void {
    this.end('closed')
  }

  private end(why: AddressSpaceEnd | 'closed'): void {
    if (this.ended !== undefined) return
    this.ended =
      why === 'closed'
        ? 'This write tracker was closed: call trackWrites() again.'
        : why === 'exec'
          ? `Process ${this.pid} called execve: the address space this tracker watched is gone. Call trackWrites() again.`
          : `Process ${this.pid} ended: there is nothing left to track.`
    this.unsubscribe()
    if (this.uffd >= 0) closeFd(this.uffd)
    if (this.pagemap >= 0) closeFd(this.pagemap)
    this.pagemap = -1
  }

  private scanUffd(reset: boolean): WrittenPages {
    const flags = (reset ? PM_SCAN_WP_MATCHING : 0n) | PM_SCAN_CHECK_WPASYNC
    const written: PageRun[] = []
    const lost: UntrackedRange[] = []
    for (let i = 0; i < this.ranges.length; i++) {
      const range = this.ranges[i]
      if (!range) continue
      const errno = scanWritten(this.pagemap, range.start, range.end, flags, written)
      if (errno === 0) continue
      if (errno !== ERRNO_EPERM) throw this.failure('PAGEMAP_SCAN', errno)
      // EPERM: part of the range is no longer registered (unmapped and mapped again). What the scan
      // found before it is in `written` (and protected again); the registered rest is scanned now.
      const still = registeredRuns(this.pid, range)
      const gone = gaps(range, still).map((gap) => ({ ...gap, reason: 'mapped again after trackWrites()' }))
      lost.push(...gone)
      this.skipped.push(...gone)
      this.ranges.splice(i, 1, ...still)
      i += still.length - 1
      for (const part of still) {
        const again = scanWritten(this.pagemap, part.start, part.end, flags, written)
        if (again !== 0) throw this.failure('PAGEMAP_SCAN', again)
      }
    }
    return { written: sortRuns(written, true), lost }
  }

  private scanSoftDirty(reset: boolean): WrittenPages {
    const written: PageRun[] = []
    const entries = new BigUint64Array(SOFT_DIRTY_CHUNK)
    for (const range of this.ranges) {
      for (let at = range.start; at < range.end; at += BigInt(SOFT_DIRTY_CHUNK) * PAGE) {
        const pages = Number(
          (range.end - at) / PAGE < SOFT_DIRTY_CHUNK ? (range.end - at) / PAGE : BigInt(SOFT_DIRTY_CHUNK),
        )
        const errno = readPagemap(this.pagemap, at, pages, entries)
        if (errno !== 0) throw this.failure('reading pagemap', errno)
        for (let i = 0; i < pages; i++) {
          if (((entries[i] ?? 0n) & PM_SOFT_DIRTY) === 0n) continue
          const page = at + BigInt(i) * PAGE
          const last = written.at(-1)
          if (last && last.end === page) last.end = page + PAGE
          else written.push({ start: page, end: page + PAGE })
        }
      }
    }
    if (reset) {
      const errno = clearSoftDirty(this.pid)
      if (errno !== 0) throw this.failure('clear_refs', errno)
    }
    return { written, lost: [] }
  }

  private failure(what: string, errno: number): ProcsnapError {
    return new ProcsnapError(
      'ERR_PTRACE',
      `Write tracking of process ${this.pid}: ${what} failed (${errnoName(errno)}). Is the process still alive?`,
    )
  }
}

/**
 * Starts tracking the pages `proc` (stopped) writes over `options.ranges`. Returns `{ tracker }`, or
 * `{ tracker: undefined, reason }` when this kernel or this tracee offers no way to (callers then
 * read everything). Page runs are page-aligned [start, end).
 */
export async function trackWrites(proc: Process, options: TrackOptions = {}): Promise<Tracking> {
  const probe = probeWriteTracking()
  const mechanism = options.mechanism ?? probe.mechanism
  const maps = proc.maps
  const { track, skip } = classify(options.ranges ?? writableRanges(maps), maps, options.fileBacked ?? false)
  if (mechanism === undefined)
    return { tracker: undefined, reason: `No way to track written pages here: ${probe.uffd}; ${probe.softDirty}.` }
  if (mechanism === 'soft-dirty') {
    if (probe.softDirty !== '') return { tracker: undefined, reason: `soft-dirty: ${probe.softDirty}` }
    return startSoftDirty(proc, track, skip)
  }
  if (probe.uffd !== '') return { tracker: undefined, reason: `uffd-wp: ${probe.uffd}` }
  return startUffd(proc, track, skip)
}

function startSoftDirty(proc: Process, ranges: PageRun[], skipped: UntrackedRange[]): Tracking {
  const pagemap = openPagemap(proc.pid)
  if (pagemap < 0)
    return { tracker: undefined, reason: `cannot open /proc/${proc.pid}/pagemap (${errnoName(-pagemap)})` }
  const errno = clearSoftDirty(proc.pid)
  if (errno !== 0) {
    closeFd(pagemap)
    return { tracker: undefined, reason: `cannot write /proc/${proc.pid}/clear_refs (${errnoName(errno)})` }
  }
  return { tracker: new WriteTracker(proc, 'soft-dirty', -1, pagemap, ranges, skipped.sort(byStart)) }
}

async function startUffd(proc: Process, ranges: PageRun[], skipped: UntrackedRange[]): Promise<Tracking> {
  const uffd = await userfaultfdOf(proc)
  if (typeof uffd === 'string') return { tracker: undefined, reason: uffd }
  const want = UFFD_FEATURE.WP_ASYNC | UFFD_FEATURE.WP_UNPOPULATED
  const api = uffdApi(uffd, want)
  const pagemap = openPagemap(proc.pid)
  if (api.errno !== 0 || (api.features & want) !== want || pagemap < 0) {
    closeFd(uffd)
    if (pagemap >= 0) closeFd(pagemap)
    return {
      tracker: undefined,
      reason:
        pagemap < 0
          ? `cannot open /proc/${proc.pid}/pagemap (${errnoName(-pagemap)})`
          : `UFFDIO_API on the tracee's userfaultfd failed (${errnoName(api.errno)})`,
    }
  }
  const tracked: PageRun[] = []
  for (const range of ranges) {
    const errno = uffdRegister(uffd, range.start, range.end - range.start, UFFDIO_REGISTER_MODE_WP)
    if (errno !== 0) {
      skipped.push({ ...range, reason: `UFFDIO_REGISTER refused it (${errnoName(errno)})` })
      continue
    }
    // The first scan reports every page (none was protected) and protects them all: the starting point.
    const errnoScan = scanWritten(pagemap, range.start, range.end, PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC, [])
    if (errnoScan !== 0) skipped.push({ ...range, reason: `PAGEMAP_SCAN refused it (${errnoName(errnoScan)})` })
    else tracked.push(range)
  }
  return {
    tracker: new WriteTracker(proc, 'uffd-wp', uffd, pagemap, tracked, skipped.sort(byStart)),
  }
}

function byStart(a: PageRun, b: PageRun): number {
  return a.start < b.start ? -1 : a.start > b.start ? 1 : 0
}

/** A userfaultfd of the tracee's mm, held by us only: made in the tracee, copied, closed there. Or why not. */
async function userfaultfdOf(proc: Process): Promise<number | string> {
  const fd = Number(await proc.injectSyscall(SYS_USERFAULTFD, [BigInt(O_CLOEXEC | UFFD_USER_MODE_ONLY)]))
  if (fd < 0) return `userfaultfd() in process ${proc.pid} failed (${errnoName(-fd)}; a seccomp filter?)`
  let ours = -1
  const pidfd = pidfdOpen(proc.pid)
  if (pidfd >= 0) {
    ours = pidfdGetfd(pidfd, fd)
    closeFd(pidfd)
  }
  const closed = await proc.injectSyscall(SYS_CLOSE, [BigInt(fd)])
  if (ours < 0 || closed !== 0n) {
    if (ours >= 0) closeFd(ours)
    return `cannot take the tracee's userfaultfd (${errnoName(pidfd < 0 ? -pidfd : -ours)})`
  }
  return ours
}
