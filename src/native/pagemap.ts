// /proc/PID/pagemap: the PAGEMAP_SCAN ioctl (Linux >= 6.7), which returns runs of pages by category
// (present, swapped, written since they were last write-protected, which it may protect again in the
// same walk) instead of 8 bytes per page for the caller to scan, and plain 8-byte entries with the
// soft-dirty bit. Layouts and numbers from include/uapi/linux/fs.h and
// Documentation/admin-guide/mm/pagemap.rst.
import { addressOf, lastErrno, sys } from './libc.js'

/** _IOWR('f', 16, struct pm_scan_arg): 96 bytes (12 u64). */
const PAGEMAP_SCAN = 0xc0606610
const PM_SCAN_ARG_SIZE = 96
/** struct page_region: start, end, categories. */
const REGION_SIZE = 24

/** Page categories (PAGE_IS_*), as masks and as reported. */
export const PAGE_IS_WRITTEN = 1n << 1n
export const PAGE_IS_FILE = 1n << 2n
export const PAGE_IS_PRESENT = 1n << 3n
export const PAGE_IS_SWAPPED = 1n << 4n
/** Flags: write-protect the pages that matched; abort (EPERM) on a page without asynchronous write-protect. */
export const PM_SCAN_WP_MATCHING = 1n << 0n
export const PM_SCAN_CHECK_WPASYNC = 1n << 1n

/** pagemap entry bit 55: the pte is soft-dirty (written since the last clear_refs "4"). */
export const PM_SOFT_DIRTY = 1n << 55n

/** x86_64's page size: pagemap has one entry per page. */
export const PAGE = 4096n

const O_RDONLY = 0
const O_WRONLY = 1
const O_CLOEXEC = 0o2000000

/** Opens /proc/PID/pagemap (PID may be 'self'); returns the fd or -errno. */
export function openPagemap(pid: number | 'self'): number {
  const fd = sys.open(`/proc/${pid}/pagemap`, O_RDONLY | O_CLOEXEC, 0)
  return fd < 0 ? -lastErrno() : fd
}

/** A half-open run of pages [start, end). */
export interface PageRun {
  start: bigint
  end: bigint
}

/**
 * Reused across scans: the argument and 4096 regions (96 KiB); a longer answer is fetched from where
 * the walk ended. The regions are all zeros between scans (each scan clears what it was given), so a
 * failed scan's count is where the zeros begin, and a scan that finds a few runs clears a few.
 */
const scanArg = Buffer.alloc(PM_SCAN_ARG_SIZE)
const REGIONS = 4096
const regions = Buffer.alloc(REGIONS * REGION_SIZE)

/** What a PAGEMAP_SCAN asks: flags, and the category masks of struct pm_scan_arg. */
interface ScanQuery {
  readonly flags: bigint
  /** Pages must have every category of this mask... */
  readonly all: bigint
  /** ...and at least one of this one (0: no such condition)... */
  readonly anyOf: bigint
  /** ...and none of this one. */
  readonly none?: bigint
}

/**
 * PAGEMAP_SCAN over [start, end), appending the runs of matching pages to `into` (merged where they
 * touch). Returns 0 or an errno; on a failure the runs the kernel copied out before it are appended
 * all the same (EPERM with CHECK_WPASYNC: they are protected again already).
 */
function scan(fd: number, start: bigint, end: bigint, query: ScanQuery, into: PageRun[]): number {
  const before = into.length
  for (let from = start; from < end;) {
    scanArg.fill(0)
    scanArg.writeBigUInt64LE(BigInt(PM_SCAN_ARG_SIZE), 0) // size
    scanArg.writeBigUInt64LE(query.flags, 8)
    scanArg.writeBigUInt64LE(from, 16) // start
    scanArg.writeBigUInt64LE(end, 24) // end
    scanArg.writeBigUInt64LE(addressOf(regions), 40) // vec
    scanArg.writeBigUInt64LE(BigInt(REGIONS), 48) // vec_len
    scanArg.writeBigUInt64LE(query.none ?? 0n, 64) // category_inverted
    scanArg.writeBigUInt64LE(query.all | (query.none ?? 0n), 72) // category_mask
    scanArg.writeBigUInt64LE(query.anyOf, 80) // category_anyof_mask
    scanArg.writeBigUInt64LE(query.all | query.anyOf, 88) // return_mask
    const r = sys.ioctlBuf(fd, PAGEMAP_SCAN, scanArg)
    const errno = r < 0 ? lastErrno() : 0
    let n = r
    if (r < 0) for (n = 0; n < REGIONS && regions.readBigUInt64LE(n * REGION_SIZE + 8) !== 0n; n++);
    for (let i = 0; i < n; i++) {
      const runStart = regions.readBigUInt64LE(i * REGION_SIZE)
      const runEnd = regions.readBigUInt64LE(i * REGION_SIZE + 8)
      const last = into.at(-1)
      const ours = into.length > before
      // A walk resumed from walk_end may list again runs it listed before (seen here at the end of a
      // scan of more runs than the vector holds: 512 runs again, out of order): keep what lies past.
      if (ours && last && runEnd <= last.end) continue
      if (last && (ours ? runStart <= last.end : runStart === last.end)) last.end = runEnd
      else into.push({ start: runStart, end: runEnd })
    }
    regions.fill(0, 0, n * REGION_SIZE)
    if (errno !== 0) return errno
    const walkEnd = scanArg.readBigUInt64LE(32)
    // The walk stops early only when the vector is full; it goes on from where it stopped.
    if (walkEnd <= from) return 0
    from = walkEnd
  }
  return 0
}

/**
 * PAGEMAP_SCAN over [start, end) for pages in category PAGE_IS_WRITTEN, appending the runs found to
 * `into`; `flags` PM_SCAN_WP_MATCHING write-protects them again in the same walk. Returns 0 or an
 * errno (ENOTTY: the kernel has no PAGEMAP_SCAN; EPERM with CHECK_WPASYNC: a mapping is not
 * registered, and the runs found before it are appended all the same).
 */
export function scanWritten(fd: number, start: bigint, end: bigint, flags: bigint, into: PageRun[]): number {
  return scan(fd, start, end, { flags, all: PAGE_IS_WRITTEN, anyOf: 0n }, into)
}

/** Writes "4" to /proc/PID/clear_refs: clears the soft-dirty bits of every page of the process. 0 or an errno. */
export function clearSoftDirty(pid: number): number {
  const fd = sys.open(`/proc/${pid}/clear_refs`, O_WRONLY | O_CLOEXEC, 0)
  if (fd < 0) return lastErrno()
  const r = sys.write(fd, Buffer.from('4'), 1)
  const errno = r < 0 ? lastErrno() : 0
  sys.close(fd)
  return errno
}

/** Reads the pagemap entries of `pages` pages from `start` into `into` (8 bytes each): 0 or an errno. */
export function readPagemap(fd: number, start: bigint, pages: number, into: BigUint64Array): number {
  const bytes = new Uint8Array(into.buffer, into.byteOffset, pages * 8)
  const r = Number(sys.pread64(fd, bytes, bytes.length, (start / PAGE) * 8n))
  if (r < 0) return lastErrno()
  return r === bytes.length ? 0 : 5 // EIO: a short read
}

/**
 * Runs [start, end) of addresses in [from, to) whose pages have any of the `anyOf` categories and
 * none of the `none` ones, in ascending order, merged; a negative errno when the kernel has no PAGEMAP_SCAN (EINVAL, ENOTTY).
 */
export function pagemapScan(
  fd: number,
  from: bigint,
  to: bigint,
  anyOf: bigint,
  none = 0n,
): Array<[bigint, bigint]> | number {
  const runs: PageRun[] = []
  const errno = scan(fd, from, to, { flags: 0n, all: 0n, anyOf, none }, runs)
  return errno !== 0 ? -errno : runs.map((r): [bigint, bigint] => [r.start, r.end])
}
