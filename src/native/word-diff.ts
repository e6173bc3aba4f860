// The native word-diff kernel (kernels/word-diff.c, SSE2): which 8-byte words of two memory ranges
// differ, at memcmp's speed, where JS compares words at a third of it. Run from an executable page of
// ours (code-page.ts); absent off x86_64, where executable memory is refused, or when switched off.
import { executableCode } from './code-page.js'
import { addressOf, functionAt } from './libc.js'

/** The compiler whose output WORD_DIFF_CODE is: test/native/word-diff.test.ts rebuilds it with the same. */
export const WORD_DIFF_COMPILER = 'gcc (Debian 12.2.0-14+deb12u1) 12.2.0'

/** src/native/kernels/build.sh src/native/kernels/word-diff.c */
export const WORD_DIFF_CODE = Buffer.from(
  '4585c00f84070100004189d141544989f34989fa5531d231f6534889cb4183f907771ee9a80000000f1f84000000000083c2084489c829d0' +
    '83f8070f868f00000089d048c1e003498d0c024c01d8f30f6f4110f30f6f5810f30f6f09f30f6f20660f74c3f30f6f6930f30f6f5120660f' +
    '74ccf30f6f7020660f74d6660fdbc1f30f6f4830660f74cd660fdbca660fdbc1660fd7f881ffffff0000749431ffeb0c89ee4883c7014883' +
    'ff087484488b2cf848392cf974ec448d243a8d6e01448924b34139e875da5b4489c05d415cc366904439ca732e89d048c1e0030f1f440000' +
    '498b3c0349393c02740d8d4e018914b34139c874d189ce83c2014883c0084139d175dd4189f05b5d4489c0415cc366904489c0c3',
  'hex',
)

const PROTOTYPE = 'uint32_t procsnap_diff_words(uint64_t a, uint64_t b, uint32_t n, uint64_t out, uint32_t cap)'
/** Indices found a call at most: a range with more differing words takes more calls. */
const CAP = 4096

/** The kernel, ready to run: indices land in `found`. */
export interface WordDiff {
  /** Where diff() writes the indices of the words that differ. */
  readonly found: Uint32Array
  /**
   * How many of the `words` 8-byte words at address `a` differ from those at `b` (any alignment),
   * their indices in found[0..count); a count of found.length may leave some: call again past the
   * last. \`words\` below 2^32.
   */
  diff(a: number, b: number, words: number): number
}

let kernel: WordDiff | undefined
let tried = false
let enabled = process.env.PROCSNAP_NATIVE_DIFF !== '0'

/** The kernel, or undefined where it cannot run or is switched off (then callers compare in JS). */
export function wordDiff(): WordDiff | undefined {
  if (!enabled) return undefined
  if (!tried) kernel = load()
  tried = true
  return kernel
}

/** Switches the kernel off (false) or back on: tests compare both paths; PROCSNAP_NATIVE_DIFF=0 starts it off. */
export function useNativeWordDiff(on: boolean): void {
  enabled = on
}

/** The address of a view's first byte, as a number (user-space addresses are below 2^47). */
export function bytesAddress(bytes: Uint8Array): number {
  return Number(addressOf(bytes))
}

function load(): WordDiff | undefined {
  const code = executableCode(WORD_DIFF_CODE)
  if (code === undefined) return undefined
  const run = functionAt(code, PROTOTYPE) as (a: number, b: number, n: number, out: number, cap: number) => number
  const found = new Uint32Array(CAP)
  const out = bytesAddress(new Uint8Array(found.buffer))
  return {
    found,
    diff: (a, b, words) => run(a, b, words, out, CAP),
  }
}
