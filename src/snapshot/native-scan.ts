// The words of a range compared by the native kernel (src/native/word-diff.ts), at memcmp's speed and
// at any alignment of either side: JS only reads the words it reports, as 32-bit halves through
// DataViews, and makes them runs exactly as word-scan.ts does.
import { bytesAddress, type WordDiff } from '../native/word-diff.js'
import type { Alignment } from './changed-runs.js'
import { addWord, sameWord } from './word-scan.js'

/** Bytes handed to one call at most, after a native compare says they differ: most of a snapshot does not. */
const PIECE = 64 * 4096

/**
 * Adds the runs of the whole words of [start, end) (end - start a multiple of 8) of a, facing b at
 * + shift, to `runs` after `first`.
 */
export function nativeRuns(
  kernel: WordDiff,
  a: Uint8Array,
  b: Uint8Array,
  align: Alignment,
  start: number,
  end: number,
  runs: number[],
  first: number,
  equalAt: (i: number, j: number) => boolean,
): void {
  const { shift } = align
  const va = new DataView(a.buffer, a.byteOffset, a.length)
  const vb = new DataView(b.buffer, b.byteOffset, b.length)
  const addressA = bytesAddress(a)
  const addressB = bytesAddress(b) + shift
  const { found } = kernel
  for (let piece = start; piece < end; piece += PIECE) {
    const pieceEnd = Math.min(piece + PIECE, end)
    if (equalAt(piece, pieceEnd)) continue
    let at = piece
    for (;;) {
      const count = kernel.diff(addressA + at, addressB + at, (pieceEnd - at) >> 3)
      for (let k = 0; k < count; k++) {
        const i = at + 8 * (found[k] ?? 0)
        const loA = va.getUint32(i, true)
        const hiA = va.getUint32(i + 4, true)
        const loB = vb.getUint32(i + shift, true)
        const hiB = vb.getUint32(i + shift + 4, true)
        if (!sameWord(align, loA, hiA, loB, hiB)) addWord(runs, first, i, loA ^ loB, hiA ^ hiB)
      }
      if (count < found.length) break
      at += 8 * ((found[count - 1] ?? 0) + 1)
    }
  }
}
