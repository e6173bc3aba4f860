// Tracee memory: process_vm_readv for bulk reads (fast, respects page permissions) and
// /proc/PID/mem for reads the permissions refuse and for writes (it may write to read-only text).
import { lastErrno, sys, addressOf } from './libc.js'

const iovecs = Buffer.alloc(32) // one local and one remote struct iovec

/** Reads `length` bytes at `address` into `into[offset..]`; returns bytes read (may be short) or -errno. */
export function readProcessMemory(
  pid: number,
  address: bigint,
  into: Uint8Array,
  offset: number,
  length: number,
): number {
  if (length === 0) return 0
  iovecs.writeBigUInt64LE(addressOf(into) + BigInt(offset), 0) // address() includes the view's byteOffset
  iovecs.writeBigUInt64LE(BigInt(length), 8)
  iovecs.writeBigUInt64LE(address, 16)
  iovecs.writeBigUInt64LE(BigInt(length), 24)
  const r = Number(sys.process_vm_readv(pid, iovecs, 1, iovecs.subarray(16), 1, 0))
  return r < 0 ? -lastErrno() : r
}

/** At most this many ranges a call (the kernel's IOV_MAX). */
export const MAX_RANGES = 1024
let rangeIovecs = Buffer.alloc(16 * 64)

/**
 * Reads several ranges of the tracee in one process_vm_readv, one after another into `into` from its
 * start; returns the bytes read (fewer: a range could not be read, whole or from some page on) or -errno.
 */
export function readProcessMemoryRanges(
  pid: number,
  ranges: readonly (readonly [address: bigint, length: number])[],
  into: Uint8Array,
): number {
  if (ranges.length === 0) return 0
  if (ranges.length > MAX_RANGES) throw new RangeError(`at most ${MAX_RANGES} ranges a read`)
  if (rangeIovecs.length < 16 * ranges.length) rangeIovecs = Buffer.alloc(16 * ranges.length)
  let total = 0
  ranges.forEach(([address, length], i) => {
    rangeIovecs.writeBigUInt64LE(address, 16 * i)
    rangeIovecs.writeBigUInt64LE(BigInt(length), 16 * i + 8)
    total += length
  })
  if (total > into.length) throw new RangeError('the ranges are longer than the buffer')
  iovecs.writeBigUInt64LE(addressOf(into), 0)
  iovecs.writeBigUInt64LE(BigInt(total), 8)
  const r = Number(sys.process_vm_readv(pid, iovecs, 1, rangeIovecs, ranges.length, 0))
  return r < 0 ? -lastErrno() : r
}

const O_RDWR = 2
const O_CLOEXEC = 0o2000000

/** Opens /proc/PID/mem for reading and writing; returns the fd or -errno. */
export function openProcessMem(pid: number): number {
  const fd = sys.open(`/proc/${pid}/mem`, O_RDWR | O_CLOEXEC, 0)
  return fd < 0 ? -lastErrno() : fd
}

/** pread on /proc/PID/mem: reads even pages whose permissions refuse process_vm_readv. */
export function preadMem(fd: number, address: bigint, into: Uint8Array): number {
  const r = Number(sys.pread64(fd, into, into.length, BigInt.asIntN(64, address)))
  return r < 0 ? -lastErrno() : r
}

/** pwrite on /proc/PID/mem: the kernel writes through read-only mappings for a tracer (FOLL_FORCE). */
export function pwriteMem(fd: number, address: bigint, from: Uint8Array): number {
  const r = Number(sys.pwrite64(fd, from, from.length, BigInt.asIntN(64, address)))
  return r < 0 ? -lastErrno() : r
}

const MADV_HUGEPAGE = 14
const HUGE_PAGE = 2n << 20n
/** Below this a buffer is not worth a system call. */
const HUGE_BUFFER_MIN = 8 << 20

/**
 * A zeroed buffer for `size` bytes about to be filled from a tracee. Large ones ask for transparent
 * huge pages on their 2 MiB-aligned interior (THP is often in 'madvise' mode), so that filling them
 * takes a page fault per 2 MiB instead of per 4 KiB: the faults, not the copy, bound a big capture.
 * `huge: false` when few pages will be written (each would cost a zeroed 2 MiB page), or when fresh
 * huge pages are slow to come by (a VM backing them on first touch: see capture-memory.ts).
 */
export function allocateCapture(size: number, huge = true): Uint8Array {
  if (size < HUGE_BUFFER_MIN) return new Uint8Array(size)
  // Shared, so that saving it can hand pages to a helper thread (files/shared-pages.ts).
  const buf = new Uint8Array(new SharedArrayBuffer(size))
  if (!huge) return buf
  const start = addressOf(buf)
  const first = (start + HUGE_PAGE - 1n) & ~(HUGE_PAGE - 1n)
  const last = (start + BigInt(size)) & ~(HUGE_PAGE - 1n)
  if (last > first) sys.madvise(first, last - first, MADV_HUGEPAGE) // advice only: failure changes nothing
  return buf
}

export function closeFd(fd: number): void {
  sys.close(fd)
}
