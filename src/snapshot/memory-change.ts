// The record of one changed run of a memory diff, and the slabs its bytes are copied into: a diff of
// 65,536 changed pages makes 65,536 of them.
import { copyHeld } from './content.js'
import type { MapLocator } from './map-locator.js'
import type { MapIdentity, MapState, MemoryChange } from './model.js'

/** Bytes of the ArrayBuffers that hold the changed bytes read out of a diff's records. */
const SLAB = 1 << 16

/** What the records of one compared range of a map pair share: a's byte i faces b's byte i + shift. */
export interface ChangeSource {
  readonly identity: MapIdentity
  readonly a: MapState
  readonly b: MapState
  readonly shift: number
  /** a's and b's start as numbers, when their maps end below 2^53 (every user-space map). */
  readonly startA: number | undefined
  readonly startB: number | undefined
  /** Names the run's address in b's map. */
  readonly locate: MapLocator
  readonly slab: ByteSlab
}

/**
 * The record of the run [start, end) of a's map: a plain object (what users print, spread, clone and
 * compare), its bytes copied into the source's slab, its location symbolized in b.
 */
export function memoryChange(source: ChangeSource, start: number, end: number): MemoryChange {
  const { identity, a, b, shift, startA, startB, locate, slab } = source
  const offset = start + shift
  const addressAfter = startB !== undefined ? BigInt(startB + offset) : b.start + BigInt(offset)
  // Without ASLR both addresses are one value: one bigint
  const addressBefore =
    startA === undefined
      ? a.start + BigInt(start)
      : startA === startB && shift === 0
        ? addressAfter
        : BigInt(startA + start)
  return {
    identity,
    mapOffset: BigInt(offset),
    addressBefore,
    addressAfter,
    before: slab.copy(a, start, end - start),
    after: slab.copy(b, offset, end - start),
    location: locate(offset, addressAfter) ?? identity,
  }
}

/** Copies of changed bytes, many to one ArrayBuffer: a copy of its own per change (slice) cost twice as much. */
export class ByteSlab {
  private chunk = new Uint8Array(0)
  private used = 0

  /** A copy of the bytes [from, from + length) a map holds (`content` or `sparse`). */
  copy(map: MapState, from: number, length: number): Uint8Array {
    if (length > SLAB / 4) {
      const own = new Uint8Array(length)
      copyHeld(map, from, own, 0, length)
      return own
    }
    if (this.used + length > this.chunk.length) {
      this.chunk = new Uint8Array(SLAB)
      this.used = 0
    }
    const at = this.used
    const content = map.content
    // A few bytes (most changes) by hand: a subarray to set() from costs more than copying them.
    if (content && length <= 32) for (let k = 0; k < length; k++) this.chunk[at + k] = content[from + k] ?? 0
    else copyHeld(map, from, this.chunk, at, length)
    this.used += length
    return new Uint8Array(this.chunk.buffer, at, length)
  }
}
