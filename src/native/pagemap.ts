// PAGEMAP_SCAN (Linux 6.7+): an ioctl on /proc/PID/pagemap that returns runs of pages by category
// (present, swapped, written...) instead of 8 bytes per page for the caller to scan.
import { addressOf, lastErrno, sys } from './libc.js'

/** _IOWR('f', 16, struct pm_scan_arg), struct pm_scan_arg being 12 u64 (96 bytes). */
const PAGEMAP_SCAN = 0xc0606610
const ARG_SIZE = 96
/** struct page_region: start, end, categories (u64 each). */
const REGION_SIZE = 24
export const PAGE_IS_PRESENT = 1n << 3n
export const PAGE_IS_SWAPPED = 1n << 4n

/** Regions per call: a 96 KiB vector; a longer answer is fetched from where the walk ended. */
const REGIONS = 4096
const arg = Buffer.alloc(ARG_SIZE)
const vec = Buffer.alloc(REGIONS * REGION_SIZE)

/**
 * Runs [start, end) of addresses in [from, to) whose pages have any of the `anyOf` categories, in
 * ascending order, merged; a negative errno when the kernel has no PAGEMAP_SCAN (EINVAL, ENOTTY).
 */
export function pagemapScan(fd: number, from: bigint, to: bigint, anyOf: bigint): Array<[bigint, bigint]> | number {
  const runs: Array<[bigint, bigint]> = []
  for (let at = from; at < to;) {
    arg.fill(0)
    arg.writeBigUInt64LE(BigInt(ARG_SIZE), 0) // size
    arg.writeBigUInt64LE(at, 16) // start
    arg.writeBigUInt64LE(to, 24) // end
    arg.writeBigUInt64LE(addressOf(vec), 40) // vec
    arg.writeBigUInt64LE(BigInt(REGIONS), 48) // vec_len
    arg.writeBigUInt64LE(anyOf, 80) // category_anyof_mask
    arg.writeBigUInt64LE(anyOf, 88) // return_mask
    const n = sys.ioctlBuf(fd, PAGEMAP_SCAN, arg)
    if (n < 0) return -lastErrno()
    for (let i = 0; i < n; i++) {
      const start = vec.readBigUInt64LE(i * REGION_SIZE)
      const end = vec.readBigUInt64LE(i * REGION_SIZE + 8)
      const last = runs[runs.length - 1]
      if (last && last[1] === start) last[1] = end
      else runs.push([start, end])
    }
    const walkEnd = arg.readBigUInt64LE(32)
    if (walkEnd <= at) break // no progress: should not happen, but never loop forever
    at = walkEnd
  }
  return runs
}
