// The record of one changed run of a memory diff: a diff of 65,536 changed pages makes 65,536 of
// them, so each holds numbers and makes its byte copies, addresses and symbol when first read.
import { copyHeld } from './content.js'
import type { MapIdentity, MapState, MemoryChange, SnapshotData } from './model.js'
import { symbolizeIn, type SnapshotModule } from './regions.js'

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
  /** b's snapshot and modules, which name the run's address in b. */
  readonly dataB: SnapshotData
  readonly modulesB: readonly SnapshotModule[]
  readonly slab: ByteSlab
}

/** What a record makes on first read: its byte copies and its symbolized location. */
interface Made {
  before?: Uint8Array
  after?: Uint8Array
  location?: string
}

/**
 * A MemoryChange as four fields (its source, its run in a's map, what was made of it): its fields are
 * getters, the addresses made on each read (bigints compare by value), the bytes and location once.
 * So the records hold on to both sides' maps, and b's snapshot data to name places, until dropped.
 * toJSON gives the plain record (pretty-format and JSON use it; the plugin's toEqual tester too).
 */
export class LazyMemoryChange implements MemoryChange {
  readonly #source: ChangeSource
  /** [start, end) of the run in a's map. */
  readonly #start: number
  readonly #end: number
  #made: Made | undefined = undefined

  constructor(source: ChangeSource, start: number, end: number) {
    this.#source = source
    this.#start = start
    this.#end = end
  }

  get identity(): MapIdentity {
    return this.#source.identity
  }

  get mapOffset(): bigint {
    return BigInt(this.#start + this.#source.shift)
  }

  get addressBefore(): bigint {
    const { startA, a } = this.#source
    return startA !== undefined ? BigInt(startA + this.#start) : a.start + BigInt(this.#start)
  }

  get addressAfter(): bigint {
    const { startB, b, shift } = this.#source
    return startB !== undefined ? BigInt(startB + this.#start + shift) : b.start + BigInt(this.#start + shift)
  }

  get before(): Uint8Array {
    const made = (this.#made ??= {})
    return (made.before ??= this.#source.slab.copy(this.#source.a, this.#start, this.#end - this.#start))
  }

  get after(): Uint8Array {
    const { b, shift, slab } = this.#source
    const made = (this.#made ??= {})
    return (made.after ??= slab.copy(b, this.#start + shift, this.#end - this.#start))
  }

  get location(): string {
    const { dataB, modulesB, identity } = this.#source
    const made = (this.#made ??= {})
    return (made.location ??= symbolizeIn(dataB, modulesB, this.addressAfter) ?? identity)
  }

  toJSON(): MemoryChange {
    const { identity, mapOffset, addressBefore, addressAfter, before, after, location } = this
    return { identity, mapOffset, addressBefore, addressAfter, before, after, location }
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
