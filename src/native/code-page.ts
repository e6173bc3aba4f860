// Machine code of ours run in this process (CPUID, the kernels): copied into fresh anonymous pages
// that are then made executable, never writable and executable at once, and called through koffi.
import { pointerAddress, sys } from './libc.js'

/**
 * The compiler that made the kernels' committed bytes (kernels/build.sh): the kernels' tests rebuild
 * them with it, when it is the one installed, and compare.
 */
export const KERNEL_COMPILER = 'gcc (Debian 12.2.0-14+deb12u1) 12.2.0'
const PAGE = 4096
const PROT_READ = 1
const PROT_WRITE = 2
const PROT_EXEC = 4
const MAP_PRIVATE = 2
const MAP_ANONYMOUS = 0x20
const MAP_FAILED = (1n << 64n) - 1n

/**
 * A pointer to `code` in pages of its own, read-only and executable; undefined on a machine other
 * than x86_64 or where the system refuses executable memory (then callers take their JS path).
 */
export function executableCode(code: Uint8Array): unknown {
  if (process.arch !== 'x64' || code.length === 0) return undefined
  const size = Math.ceil(code.length / PAGE) * PAGE
  const page = sys.mmap(null, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
  if (page === null || pointerAddress(page) === MAP_FAILED) return undefined
  sys.memcpy(page, code, code.length)
  if (sys.mprotect(page, size, PROT_READ | PROT_EXEC) !== 0) return undefined
  return page
}
