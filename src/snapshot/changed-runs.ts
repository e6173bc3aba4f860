// The byte ranges where two buffers differ, at memcmp speed: natively compared chunks and pages skip
// what is equal, and inside a page that differs, 32-bit lanes (typed arrays, which V8 compiles to
// plain loads) find the differing bytes; only the few words that differ are read as 64-bit values.

/** Equal bytes between two changed runs up to which they are reported as one range. */
export const MERGE_GAP = 4
const PAGE = 4096
/** Bytes compared natively at once before looking page by page: most of a snapshot does not change. */
const CHUNK = 64 * PAGE

/** Whether a value of `a` and a value of `b` name the same place: equal, or a pointer that moved with its map. */
export type SamePlace = (before: bigint, after: bigint) => boolean

/** A range of a's map compared with b's at i + shift. */
export interface Alignment {
  readonly shift: number
  /** [from, to) of a's map. */
  readonly from: number
  readonly to: number
  readonly same: SamePlace
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
  const { a: fa, b: fb, hiA, hiB, offA, offB } = words
  if (((i + offA) & 7) !== 0) return i
  let x = (i + offA) >> 3
  let y = (i + offB) >> 3
  const stop = (to + offA) >> 3
  const from = x
  while (x + 4 <= stop) {
    const a0 = fa[x] ?? 0
    const a1 = fa[x + 1] ?? 0
    const a2 = fa[x + 2] ?? 0
    const a3 = fa[x + 3] ?? 0
    if (a0 !== fb[y] || a1 !== fb[y + 1] || a2 !== fb[y + 2] || a3 !== fb[y + 3]) break
    // Equal as numbers: the same bits, unless one is +0 and the other -0 (only the sign, in the high half, differs).
    if (
      (a0 === 0 || a1 === 0 || a2 === 0 || a3 === 0) &&
      (hiA[2 * x + 1] !== hiB[2 * y + 1] ||
        hiA[2 * x + 3] !== hiB[2 * y + 3] ||
        hiA[2 * x + 5] !== hiB[2 * y + 5] ||
        hiA[2 * x + 7] !== hiB[2 * y + 7])
    )
      break
    x += 4
    y += 4
  }
  return x === from ? i : (x << 3) - offA
}

/**
 * [from, to) ranges of `a` whose bytes differ from b's at i + shift, runs at most MERGE_GAP apart
 * merged. Words count 8 bytes from the first compared byte (a stack pointer is 8-byte aligned); a
 * word holding a pointer that moved with its map, or a thread id of the same thread, is no change.
 */
export function changedRuns(a: Uint8Array, b: Uint8Array, align: Alignment): Array<[number, number]> {
  const { shift } = align
  const bufA = Buffer.from(a.buffer, a.byteOffset, a.length)
  const bufB = Buffer.from(b.buffer, b.byteOffset, b.length)
  const start = Math.max(0, -shift, align.from)
  const end = Math.min(align.to, a.length, b.length - shift)
  const runs: Array<[number, number]> = []
  if (end <= start) return runs
  const lanes = lanesOf(a, b, shift)
  const words = wordsOf(a, b, shift)
  const equalAt = (i: number, j: number): boolean => bufA.compare(bufB, i + shift, j + shift, i, j) === 0
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
          const last = runs[runs.length - 1]
          if (last && i - last[1] <= MERGE_GAP) last[1] = to
          else runs.push([i, to])
        }
        i = firstDiff(a, b, shift, lanes, words, wEnd, pageEnd)
      }
    }
  }
  return runs
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
