// userfaultfd ioctls made by the tracer on a descriptor taken from the tracee (the context keeps
// the tracee's mm, so UFFDIO_API and UFFDIO_REGISTER work from another process: checked on 6.18).
// Layouts and numbers from include/uapi/linux/userfaultfd.h.
import { lastErrno, sys } from './libc.js'

/** UFFD_API: the only API version. */
const UFFD_API = 0xaan
/** _IOWR(0xAA, 0x3F, struct uffdio_api): 24 bytes (api, features, ioctls). */
const UFFDIO_API = 0xc018aa3f
/** _IOWR(0xAA, 0x00, struct uffdio_register): 32 bytes (range.start, range.len, mode, ioctls). */
const UFFDIO_REGISTER = 0xc020aa00
/** _IOR(0xAA, 0x01, struct uffdio_range): 16 bytes (start, len). */
const UFFDIO_UNREGISTER = 0x8010aa01

export const UFFD_FEATURE = {
  /** Write-protect unpopulated anonymous ptes too, with pte markers (Linux 6.4). */
  WP_UNPOPULATED: 1n << 13n,
  /** Write faults on write-protected pages resolve in the kernel and clear the bit: nobody reads the fd (Linux 6.7). */
  WP_ASYNC: 1n << 15n,
} as const

export const UFFDIO_REGISTER_MODE_WP = 2n
/** userfaultfd(2) flag: handle faults from user mode only (needed without privilege when vm.unprivileged_userfaultfd is 0). */
export const UFFD_USER_MODE_ONLY = 1

/** UFFDIO_API asking for `features`: 0 with the features granted, or -errno (EINVAL when one is unknown). */
export function uffdApi(fd: number, features: bigint): { errno: number; features: bigint } {
  const arg = Buffer.alloc(24)
  arg.writeBigUInt64LE(UFFD_API, 0)
  arg.writeBigUInt64LE(features, 8)
  const r = sys.ioctlBuf(fd, UFFDIO_API, arg)
  return r < 0 ? { errno: lastErrno(), features: 0n } : { errno: 0, features: arg.readBigUInt64LE(8) }
}

/** UFFDIO_REGISTER of [start, start + length) in `mode`: 0 or an errno. */
export function uffdRegister(fd: number, start: bigint, length: bigint, mode: bigint): number {
  const arg = Buffer.alloc(32)
  arg.writeBigUInt64LE(start, 0)
  arg.writeBigUInt64LE(length, 8)
  arg.writeBigUInt64LE(mode, 16)
  return sys.ioctlBuf(fd, UFFDIO_REGISTER, arg) < 0 ? lastErrno() : 0
}

/** UFFDIO_UNREGISTER of [start, start + length): 0 or an errno. */
export function uffdUnregister(fd: number, start: bigint, length: bigint): number {
  const arg = Buffer.alloc(16)
  arg.writeBigUInt64LE(start, 0)
  arg.writeBigUInt64LE(length, 8)
  return sys.ioctlBuf(fd, UFFDIO_UNREGISTER, arg) < 0 ? lastErrno() : 0
}
