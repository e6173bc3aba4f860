// The CRC-32 of zlib (gzip, PNG) of each 4096-byte page, by carry-less multiplication: kernels/crc32.c
// compiled ahead (kernels/build.sh prints these bytes) and run from an executable page (code-page.ts).
// Five times zlib's crc32 called per page here; callers fall back to zlib where it cannot run.
import { executableCode } from './code-page.js'
import { cpuid } from './cpuid.js'
import { addressOf, functionAt } from './libc.js'

/** @internal The kernel's machine code (tests compare it with a rebuild). */
export const CRC32_CODE = Buffer.from(
  '4889d14885f60f84bb010000488d970010000048c1e60c66440f6f25b0010000660f6f05b801000066440f6f0dbf0100004801d666440f6f' +
    '15c301000066440f6f2dca01000066440f6f1dd101000090f30f6f8a00f0fffff30f6fa210f0ffff488d8240f0fffff30f6f9a20f0fffff3' +
    '0f6f9230f0ffff66410fefcc0f1f4000660f6ffc660f6ff3660f6fea4883c04066440f6fc1660f3a44f800660f3a44f000f3440f6f70c066' +
    '0f3a44e800660f3a44e011660f3a44d811660f3a44d011660fefe7660fefdef30f6f78d0660fefd5f30f6f70e0f30f6f68f066440f3a44c0' +
    '00660f3a44c811660fefe766410fefc8660fefde660fefd566410fefce4839d00f857affffff660f6fe966410f3a44c9114881c200100000' +
    '4883c10466410f3a44e900660fefcd660fefcc660f6fe166410f3a44c91166410f3a44e100660fefcc660fefd9660f6fe366410f3a44d911' +
    '66410f3a44e100660f6fcb660fefcc660fefca660f6fd1660f73d90866410f3a44d110660fefd1660f6fca66410fdbd2660f73d90466410f' +
    '3a44d500660fefd1660f6fca66410fdbca66410f3a44cb1066410fdbca66410f3a44cb00660fefca660f73d904660f7ec8f7d08941fc4839' +
    'd60f8589feffffc30f1f840000000000ffffffff000000000000000000000000d42b4454010000009615e4c601000000d097197501000000' +
    '9e00aacc00000000ffffffff00000000ffffffff000000002461cd63010000000000000000000000410671db01000000411601f701000000',
  'hex',
)
/** Addresses as numbers: a decoded function called with numbers costs ~70 ns, with buffers ~110, through koffi.call ~300. */
const PROTOTYPE = 'void procsnap_crc32_pages(uint64_t buf, uint64_t pages, uint64_t out)'
const PAGE = 4096
/** ECX bit 1 of CPUID leaf 1: PCLMULQDQ, on every x86_64 CPU since 2010 but not promised by the ISA. */
const PCLMULQDQ = 1 << 1

type Kernel = (buf: number, pages: number, out: number) => void
let code: Kernel | undefined
let tried = false
/** Tests: the kernel turned off, so that the zlib path runs. */
let off = false

function loaded(): Kernel | undefined {
  if (!tried) {
    const leaf1 = cpuid(1)
    const page =
      leaf1 && (leaf1[2] & PCLMULQDQ) !== 0 && process.env.PROCSNAP_KERNELS !== '0' && executableCode(CRC32_CODE)
    if (page) code = functionAt(page, PROTOTYPE)
  }
  tried = true
  return code
}

/** Whether crc32Pages runs here (x86_64 with PCLMULQDQ, executable memory allowed, PROCSNAP_KERNELS not 0). */
export function hasCrcKernel(): boolean {
  return !off && loaded() !== undefined
}

/** @internal For tests: the kernel off (callers take zlib's path) or on again. */
export function useCrcKernel(on: boolean): void {
  off = !on
}

/**
 * Writes the CRC-32 of each 4096-byte page of `bytes` (a whole number of pages) into `out`, from its
 * start; false, having written nothing, where the kernel cannot run (then use zlib's crc32).
 */
export function crc32Pages(bytes: Uint8Array, out: Uint32Array): boolean {
  const fn = off ? undefined : loaded()
  if (fn === undefined) return false
  const pages = bytes.length / PAGE
  if (!Number.isInteger(pages) || out.length < pages)
    throw new RangeError(`crc32Pages: ${bytes.length} bytes into ${out.length} crcs`)
  const table = new Uint8Array(out.buffer, out.byteOffset, out.byteLength)
  if (pages > 0) fn(Number(addressOf(bytes)), pages, Number(addressOf(table)))
  return true
}
