// The byte ranges where two buffers differ. On x86_64 the native word-diff kernel finds the words that
// differ (native-scan.ts), at any alignment. Elsewhere natively compared chunks, blocks and half pages
// skip what is equal; inside what differs, float64 words compared in JS (typed arrays, which V8 compiles
// to plain loads) find the words that differ; buffers whose words do not start at multiples of 8 take
// the slower path of 32-bit lanes, page by page. Only words that may be pointers are read as bigints.

import { wordDiff } from '../native/word-diff.js'
import { nativeRuns } from './native-scan.js'
import { addRun } from './runs.js'
import { WordScan, skipEqualBlocks } from './word-scan.js'

export { MERGE_GAP } from './runs.js'

const PAGE = 4096
/** Bytes compared natively at once before looking page by page: most of a snapshot does not change. */
const CHUNK = 64 * PAGE
/** Bytes compared natively at once inside a chunk that differs, before its words are. */
const BLOCK = 16 * PAGE

/** Whether a value of `a` and a value of `b` name the same place: equal, or a pointer that moved with its map. */
export type SamePlace = (before: bigint, after: bigint) => boolean

/** A range of a's map compared with b's at i + shift. */
export interface Alignment {
  readonly shift: number
  /** [from, to) of a's map. */
  readonly from: number
  readonly to: number
  readonly same: SamePlace
  /**
   * Whether a word of a, by its high and low 32 bits (unsigned), may be a place `same` matches with
   * another value: false spares the bigints of a word far from every map. Absent: every word may.
   */
  readonly mayMove?: (hi: number, lo: number) => boolean
  /** 32-bit values that are the same thread's id on both sides (struct pthread's tid, a saved pid). */
  readonly sameId: (before: number, after: number) => boolean
}

/** 32-bit views of two buffers whose lanes line up: byte i of a and byte i + shift of b start lanes together. */
interface Lanes {
  readonly a: Int32Array
  readonly b: Int32Array
  /** Byte i of a is in lane (i + offA) >> 2 of `a`; byte i + shift of b in lane (i + offB) >> 2 of `b`. */
  readonly offA: number
  readonly offB: number
}

function lanesOf(a: Uint8Array, b: Uint8Array, shift: number): Lanes | undefined {
  const alignA = a.byteOffset & 3
  const alignB = b.byteOffset & 3
  const offB = alignB + shift
  if ((((alignA - offB) % 4) + 4) % 4 !== 0) return undefined // bytes that face each other sit at different lane offsets
  return {
    a: new Int32Array(a.buffer, a.byteOffset - alignA, (a.length + alignA) >> 2),
    b: new Int32Array(b.buffer, b.byteOffset - alignB, (b.length + alignB) >> 2),
    offA: alignA,
    offB,
  }
}

/**
 * 64-bit views of two buffers whose words line up, as float64 (V8's fastest typed-array compare, twice
 * as fast as int32 lanes here) with the high halves as int32: two float64 words compare equal with
 * different bits only as +0 and -0, which the high halves tell apart.
 */
interface Words {
  readonly a: Float64Array
  readonly b: Float64Array
  readonly hiA: Int32Array
  readonly hiB: Int32Array
  /** Byte i of a is in word (i + offA) >> 3 of `a`; byte i + shift of b in word (i + offB) >> 3 of `b`. */
  readonly offA: number
  readonly offB: number
}

function wordsOf(a: Uint8Array, b: Uint8Array, shift: number): Words | undefined {
  const alignA = a.byteOffset & 7
  const alignB = b.byteOffset & 7
  const offB = alignB + shift
  if ((((alignA - offB) % 8) + 8) % 8 !== 0) return undefined
  const baseA = a.byteOffset - alignA
  const baseB = b.byteOffset - alignB
  const countA = (a.length + alignA) >> 3
  const countB = (b.length + alignB) >> 3
  return {
    a: new Float64Array(a.buffer, baseA, countA),
    b: new Float64Array(b.buffer, baseB, countB),
    hiA: new Int32Array(a.buffer, baseA, countA * 2),
    hiB: new Int32Array(b.buffer, baseB, countB * 2),
    offA: alignA,
    offB,
  }
}

/** Past the blocks of four words from i (a word's start) on that are equal bit for bit: where a difference may be. */
function skipEqualWords(words: Words, i: number, to: number): number {
  const { a, b, hiA, hiB, offA, offB } = words
  if (((i + offA) & 7) !== 0) return i
  const from = (i + offA) >> 3
  const x = skipEqualBlocks(a, b, hiA, hiB, from, (i + offB) >> 3, (to + offA) >> 3)
  return x === from ? i : (x << 3) - offA
}

/**
 * [from, to) ranges of `a` whose bytes differ from b's at i + shift, runs at most MERGE_GAP apart
 * merged. Words count 8 bytes from the first compared byte (a stack pointer is 8-byte aligned); a
 * word holding a pointer that moved with its map, or a thread id of the same thread, is no change.
 */
export function changedRuns(a: Uint8Array, b: Uint8Array, align: Alignment): Array<[number, number]> {
  const flat: number[] = []
  collectRuns(a, b, align, flat)
  const runs: Array<[number, number]> = []
  for (let k = 0; k < flat.length; k += 2) runs.push([flat[k] ?? 0, flat[k + 1] ?? 0])
  return runs
}

/**
 * changedRuns' runs appended to `runs` as start, end, start, end...: no pair array a run. Runs in
 * `runs` before the call are not merged with the new ones.
 */
export function collectRuns(a: Uint8Array, b: Uint8Array, align: Alignment, runs: number[]): void {
  const { shift } = align
  const bufA = Buffer.from(a.buffer, a.byteOffset, a.length)
  const bufB = Buffer.from(b.buffer, b.byteOffset, b.length)
  const start = Math.max(0, -shift, align.from)
  const end = Math.min(align.to, a.length, b.length - shift)
  if (end <= start) return
  const equalAt = (i: number, j: number): boolean => bufA.compare(bufB, i + shift, j + shift, i, j) === 0
  const first = runs.length
  const wordsEnd = end - ((end - start) & 7)
  const kernel = wordDiff()
  if (kernel) {
    nativeRuns(kernel, a, b, align, start, wordsEnd, runs, first, equalAt)
    if (wordsEnd < end) tailRun(a, b, shift, wordsEnd, end, runs, first)
    return
  }
  const scan = WordScan.of(a, b, start, wordsEnd, align, runs, first)
  if (scan) {
    // Whole words compared as numbers, the tail (less than a word) byte by byte.
    for (let chunk = start; chunk < wordsEnd; chunk += CHUNK) {
      const chunkEnd = Math.min(chunk + CHUNK, wordsEnd)
      if (equalAt(chunk, chunkEnd)) continue
      // Where a chunk differs, blocks of 16 pages natively, then the words of those that differ.
      for (let block = chunk; block < chunkEnd; block += BLOCK) {
        const blockEnd = Math.min(block + BLOCK, chunkEnd)
        if (!equalAt(block, blockEnd)) scan.scan(block, blockEnd, equalAt)
      }
    }
    if (wordsEnd < end) tailRun(a, b, shift, wordsEnd, end, runs, first)
    return
  }
  const lanes = lanesOf(a, b, shift)
  const words = wordsOf(a, b, shift)
  const sameWord = (i: number): boolean => {
    if (align.same(bufA.readBigUInt64LE(i), bufB.readBigUInt64LE(i + shift))) return true
    const half = (k: number): boolean => {
      const x = bufA.readUInt32LE(i + k)
      const y = bufB.readUInt32LE(i + shift + k)
      return x === y || align.sameId(x, y)
    }
    return half(0) && half(4)
  }
  for (let chunk = start; chunk < end; chunk += CHUNK) {
    const chunkEnd = Math.min(chunk + CHUNK, end)
    if (equalAt(chunk, chunkEnd)) continue
    for (let page = chunk; page < chunkEnd; page += PAGE) {
      const pageEnd = Math.min(page + PAGE, chunkEnd)
      if (equalAt(page, pageEnd)) continue
      for (let i = firstDiff(a, b, shift, lanes, words, page, pageEnd); i < pageEnd;) {
        // The word holding the first differing byte; the bytes before that one in it are equal.
        const w = i - ((i - start) & 7)
        const wEnd = Math.min(w + 8, pageEnd)
        if (wEnd - w !== 8 || !sameWord(w)) {
          let to = wEnd
          while (to > i && a[to - 1] === b[to - 1 + shift]) to--
          addRun(runs, first, i, to)
        }
        i = firstDiff(a, b, shift, lanes, words, wEnd, pageEnd)
      }
    }
  }
}

/** The differing bytes of [from, to), less than a word, as one run: no word there to hold a pointer. */
function tailRun(
  a: Uint8Array,
  b: Uint8Array,
  shift: number,
  from: number,
  to: number,
  runs: number[],
  first: number,
): void {
  let i = from
  while (i < to && a[i] === b[i + shift]) i++
  if (i === to) return
  let j = to
  while (a[j - 1] === b[j - 1 + shift]) j--
  addRun(runs, first, i, j)
}

/** The first byte in [i, to) of `a` that differs from b's at + shift, else `to`. */
function firstDiff(
  a: Uint8Array,
  b: Uint8Array,
  shift: number,
  lanes: Lanes | undefined,
  words: Words | undefined,
  i: number,
  to: number,
): number {
  if (words) i = skipEqualWords(words, i, to)
  if (lanes) {
    const { a: la, b: lb, offA, offB } = lanes
    while (i < to && ((i + offA) & 3) !== 0) {
      if (a[i] !== b[i + shift]) return i
      i++
    }
    if (i >= to) return to // the lanes below start at i, which only the loop above puts on a lane's start
    let x = (i + offA) >> 2
    let y = (i + offB) >> 2
    const stop = (to + offA) >> 2
    // Eight lanes (32 bytes) at a time, one branch for all: the hot loop when a page differs.
    while (x + 8 <= stop) {
      const d =
        ((la[x] ?? 0) ^ (lb[y] ?? 0)) |
        ((la[x + 1] ?? 0) ^ (lb[y + 1] ?? 0)) |
        ((la[x + 2] ?? 0) ^ (lb[y + 2] ?? 0)) |
        ((la[x + 3] ?? 0) ^ (lb[y + 3] ?? 0)) |
        ((la[x + 4] ?? 0) ^ (lb[y + 4] ?? 0)) |
        ((la[x + 5] ?? 0) ^ (lb[y + 5] ?? 0)) |
        ((la[x + 6] ?? 0) ^ (lb[y + 6] ?? 0)) |
        ((la[x + 7] ?? 0) ^ (lb[y + 7] ?? 0))
      if (d !== 0) break
      x += 8
      y += 8
    }
    while (x < stop && la[x] === lb[y]) {
      x++
      y++
    }
    i = (x << 2) - offA
  }
  while (i < to && a[i] === b[i + shift]) i++
  return i
}
