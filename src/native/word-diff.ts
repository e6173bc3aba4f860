// The native word-diff kernel (kernels/word-diff.c, SSE2): which 8-byte words of two memory ranges
// differ, at memcmp's speed, where JS compares words at a third of it. Run from an executable page of
// ours (code-page.ts); absent off x86_64, where executable memory is refused, or when switched off.
import { executableCode } from './code-page.js'
import { addressOf, functionAt } from './libc.js'

/** src/native/kernels/build.sh src/native/kernels/word-diff.c */
export const WORD_DIFF_CODE = Buffer.from(
  '4585c00f849701000041554989f94989f24189d341545589d5c1ed04534889cb48c1e5074801fd4839ef0f831d0100004889f24889f831f6' +
    'eb17660f1f4400004883e8804883ea804839e80f83ff000000f30f6f1af30f6f000f1888000200000f188840020000f30f6f6210f30f6f48' +
    '100f188a000200000f188a40020000660f74c3f30f6f6a20f30f6f5030660f74ccf30f6f7230f30f6f7a70f30f6f5a60f30f6f6250660f74' +
    'd6660fdbc1f30f6f4820660f74cdf30f6f6a40660fdbcaf30f6f5060660fdbc1f30f6f4870660f74d3660f74cf660fdbcaf30f6f5040660f' +
    'dbc1f30f6f4850660f74d5660f74cc660fdbca660fdbc1660fd7c881f9ffff00000f8439ffffff4989c531c94d29cd49c1ed03eb130f1f00' +
    '89fe4883c1014883f9100f8418ffffff488b3cca48393cc874e8458d640d008d7e01448924b34139f875d55b4489c05d415c415dc331f690' +
    '4489da83e2f04439da733089d048c1e0030f1f8000000000498b3c0249393c01740d8d4e018914b34139c874c689ce83c2014883c0084139' +
    'd375dd4189f05b5d4489c0415c415dc30f1f8400000000004489c0c3',
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
let enabled = process.env.PROCSNAP_KERNELS !== '0'

/** The kernel, or undefined where it cannot run or is switched off (then callers compare in JS). */
export function wordDiff(): WordDiff | undefined {
  if (!enabled) return undefined
  if (!tried) kernel = load()
  tried = true
  return kernel
}

/** Switches the kernel off (false) or back on: tests compare both paths; PROCSNAP_KERNELS=0 starts it off. */
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
