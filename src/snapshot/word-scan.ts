// The words of a range that differs, compared in JS as float64 numbers (V8 compiles typed-array
// compares to plain loads; twice as fast as int32 lanes), with native compares around them: a page's
// first half first, the rest of it past its first difference. A word that differs becomes a run
// unless it holds a pointer that moved with its map or the ids of the same threads.
import type { Alignment } from './changed-runs.js'
import { addRun } from './runs.js'

const PAGE = 4096
/** Bytes above which a range that differs is halved natively before JS compares its words. */
const NARROW = PAGE / 2
/** The kernel's PID_MAX_LIMIT on 64-bit: no thread id is larger, so a larger half is no id to look up. */
const PID_MAX = 1 << 22

/**
 * The words of two buffers from the first compared byte on, compared as float64 numbers four at a
 * time (V8 compiles that to plain loads and compares, twice as fast as int32 lanes here); a block
 * that differs is looked at word by word as int32 halves, which tell NaNs with the same bits (equal)
 * and +0 from -0 (different) apart. Only a word that differs and may be a pointer (Alignment.mayMove)
 * is read as a bigint.
 */
export class WordScan {
  /** Word k of each is byte start + 8k of a, start + shift + 8k of b. */
  private readonly fa: Float64Array
  private readonly fb: Float64Array
  /** Its low half is lane 2k, its high half 2k + 1 (little-endian). */
  private readonly ia: Int32Array
  private readonly ib: Int32Array

  private constructor(
    a: Uint8Array,
    b: Uint8Array,
    private readonly start: number,
    end: number,
    private readonly align: Alignment,
    private readonly runs: number[],
    private readonly first: number,
  ) {
    const count = (end - start) >> 3
    const atA = a.byteOffset + start
    const atB = b.byteOffset + start + align.shift
    this.fa = new Float64Array(a.buffer, atA, count)
    this.fb = new Float64Array(b.buffer, atB, count)
    this.ia = new Int32Array(a.buffer, atA, 2 * count)
    this.ib = new Int32Array(b.buffer, atB, 2 * count)
  }

  /** A scan of the whole words of [start, end), when both sides' words start at multiples of 8 in their buffers. */
  static of(
    a: Uint8Array,
    b: Uint8Array,
    start: number,
    end: number,
    align: Alignment,
    runs: number[],
    first: number,
  ): WordScan | undefined {
    if (((a.byteOffset + start) & 7) !== 0 || ((b.byteOffset + start + align.shift) & 7) !== 0) return undefined
    return new WordScan(a, b, start, end, align, runs, first)
  }

  /**
   * Adds the runs of [from, to) of a, both a whole number of words from start, page by page. JS
   * compares words at a third of memcmp's speed: a page's first half is compared natively first,
   * past its first differing word the rest of it (once), and a page unless the one before it differed
   * (pages that differ come in runs; a page alone that differs costs one native compare of it more).
   */
  scan(from: number, to: number, equalAt: (i: number, j: number) => boolean): void {
    const { fa, fb, ia, ib, start } = this
    let lastDiffered = false
    for (let page = from; page < to; page += PAGE) {
      const pageEnd = Math.min(page + PAGE, to)
      if (!lastDiffered && equalAt(page, pageEnd)) continue
      lastDiffered = false
      const stop = (pageEnd - start) >> 3
      // At most two native compares a page: a page where many words differ is left to JS, not to a
      // native call for each of them.
      let x = (narrowed(page, pageEnd, equalAt) - start) >> 3
      let native = true
      while (x < stop) {
        x = skipEqualBlocks(fa, fb, ia, ib, x, x, stop)
        let differed = false
        for (const last = Math.min(x + 4, stop); x < last; x++) {
          const loA = ia[2 * x] ?? 0
          const hiA = ia[2 * x + 1] ?? 0
          const loB = ib[2 * x] ?? 0
          const hiB = ib[2 * x + 1] ?? 0
          if (loA === loB && hiA === hiB) continue
          differed = true
          if (!sameWord(this.align, loA >>> 0, hiA >>> 0, loB >>> 0, hiB >>> 0))
            addWord(this.runs, this.first, start + (x << 3), loA ^ loB, hiA ^ hiB)
        }
        if (!differed) continue
        lastDiffered = true
        if (native && x < stop && equalAt(start + (x << 3), pageEnd)) break
        native = false
      }
    }
  }
}

/**
 * Whether two differing words (unsigned 32-bit halves) are no change: a pointer that moved with its
 * map, or thread ids of the same threads in both halves.
 */
export function sameWord(align: Alignment, loA: number, hiA: number, loB: number, hiB: number): boolean {
  if (
    (align.mayMove === undefined || align.mayMove(hiA, loA)) &&
    align.same((BigInt(hiA) << 32n) | BigInt(loA), (BigInt(hiB) << 32n) | BigInt(loB))
  )
    return true
  return (
    (loA === loB || (loA <= PID_MAX && align.sameId(loA, loB))) &&
    (hiA === hiB || (hiA <= PID_MAX && align.sameId(hiA, hiB)))
  )
}

/** The run of the word at byte `at` from its first to its last differing byte (`lo`, `hi`: its halves xored). */
export function addWord(runs: number[], first: number, at: number, lo: number, hi: number): void {
  const from = lo !== 0 ? lowByte(lo) : 4 + lowByte(hi)
  const to = hi !== 0 ? 5 + highByte(hi) : 1 + highByte(lo)
  addRun(runs, first, at + from, at + to)
}

/**
 * Past the halves of [lo, hi) natively equal while they are larger than NARROW bytes: where JS
 * compares from. A native compare costs ~80 ns of call, what JS takes for ~600 bytes: one halving
 * of a page pays (10% less a changed page), more do not.
 */
function narrowed(lo: number, hi: number, equalAt: (i: number, j: number) => boolean): number {
  while (hi - lo > NARROW) {
    const mid = lo + (((hi - lo) >> 1) & ~7)
    if (equalAt(lo, mid)) lo = mid
    else hi = mid
  }
  return lo
}

/**
 * Past the blocks of four words from a's word x (facing b's word y) on, before stop, that are equal bit
 * for bit: a's index of where the next difference may be.
 */
export function skipEqualBlocks(
  fa: Float64Array,
  fb: Float64Array,
  ia: Int32Array,
  ib: Int32Array,
  x: number,
  y: number,
  stop: number,
): number {
  const d = y - x
  while (x + 4 <= stop) {
    const a0 = fa[x]
    const a1 = fa[x + 1]
    const a2 = fa[x + 2]
    const a3 = fa[x + 3]
    if (a0 !== fb[x + d] || a1 !== fb[x + d + 1] || a2 !== fb[x + d + 2] || a3 !== fb[x + d + 3]) break
    // Equal as numbers: the same bits, unless one is +0 and the other -0 (only the sign, in the high half, differs).
    if (
      (a0 === 0 || a1 === 0 || a2 === 0 || a3 === 0) &&
      (ia[2 * x + 1] !== ib[2 * (x + d) + 1] ||
        ia[2 * x + 3] !== ib[2 * (x + d) + 3] ||
        ia[2 * x + 5] !== ib[2 * (x + d) + 5] ||
        ia[2 * x + 7] !== ib[2 * (x + d) + 7])
    )
      break
    x += 4
  }
  return x
}

/** Index (0-3) of the lowest non-zero byte of a non-zero 32-bit value. */
function lowByte(v: number): number {
  return (31 - Math.clz32(v & -v)) >> 3
}

/** Index (0-3) of the highest non-zero byte of a non-zero 32-bit value. */
function highByte(v: number): number {
  return (31 - Math.clz32(v)) >> 3
}
