// The changed runs of a memory diff, kept compact (five numbers a run, their bytes copied into slabs)
// until the diff's `memory` is first read; then the records, plain objects: a diff of 65,536 changed
// pages makes 65,536 of them, and a diff only asked whether it is empty makes none.
import { copyHeld } from './content.js'
import type { MapLocator } from './map-locator.js'
import type { MapIdentity, MapState, MemoryChange } from './model.js'

/** Bytes of the ArrayBuffers that hold the changed bytes read out of a diff's records. */
const SLAB = 1 << 16
/** Numbers kept a run: its source, start, end, slab, and where in the slab its bytes start. */
const STRIDE = 5

/** What the records of one compared range of a map pair share: a's byte i faces b's byte i + shift. */
interface ChangeSource {
  readonly identity: MapIdentity
  readonly shift: number
  /** a's and b's start as numbers, when their maps end below 2^53 (every user-space map); else as bigints. */
  readonly startA: number | undefined
  readonly startB: number | undefined
  readonly baseA: bigint
  readonly baseB: bigint
  /** Names the run's address in b's map; undefined: each run's location was symbolized when it was added. */
  readonly locate: MapLocator | undefined
}

/**
 * A diff's changed runs, added range by range, and the records made of them on demand. It holds no
 * snapshot: the bytes of a run are copied when it is added, a's first then b's, into one slab.
 */
export class MemoryChanges {
  private readonly sources: ChangeSource[] = []
  /** STRIDE numbers a run, in a typed array: a number[] of 65,536 runs costs as much again in growth and GC. */
  private runs = new Float64Array(STRIDE * 256)
  /** Numbers of `runs` in use. */
  private filled = 0
  private readonly slabs: Uint8Array[] = []
  /** Locations of the runs of sources without a locator, by run index. */
  private readonly located = new Map<number, string>()
  /** The range runs are added to. */
  private source: ChangeSource | undefined
  /** The slab small runs go to, its index in `slabs`, and how much of it they use. */
  private small = new Uint8Array(0)
  private smallIndex = -1
  private used = SLAB

  get count(): number {
    return this.filled / STRIDE
  }

  /** Runs added next are of a's map `a` at i facing b's map `b` at i + shift. */
  range(identity: MapIdentity, a: MapState, b: MapState, shift: number, locate: MapLocator | undefined): void {
    this.source = {
      identity,
      shift,
      startA: exact(a),
      startB: exact(b),
      baseA: a.start,
      baseB: b.start,
      locate,
    }
    this.sources.push(this.source)
  }

  /**
   * The run [start, end) of a's map in the last range: its bytes copied now. `symbolize` names an
   * address of b when the range has no locator.
   */
  add(a: MapState, b: MapState, start: number, end: number, symbolize: (address: bigint) => string | undefined): void {
    const s = this.source
    if (!s) throw new Error('MemoryChanges.add before range')
    const length = end - start
    let into: Uint8Array
    let slab: number
    let at = 0
    if (2 * length > SLAB / 4) {
      into = new Uint8Array(2 * length) // a large run: a slab of its own
      slab = this.slabs.push(into) - 1
    } else {
      if (this.used + 2 * length > SLAB) {
        this.small = new Uint8Array(SLAB)
        this.smallIndex = this.slabs.push(this.small) - 1
        this.used = 0
      }
      into = this.small
      slab = this.smallIndex
      at = this.used
      this.used += 2 * length
    }
    copyInto(a, start, into, at, length)
    copyInto(b, start + s.shift, into, at + length, length)
    if (!s.locate) this.located.set(this.count, symbolize(addressAfter(s, start + s.shift)) ?? s.identity)
    let runs = this.runs
    const k = this.filled
    if (k + STRIDE > runs.length) {
      runs = new Float64Array(2 * runs.length)
      runs.set(this.runs)
      this.runs = runs
    }
    runs[k] = this.sources.length - 1
    runs[k + 1] = start
    runs[k + 2] = end
    runs[k + 3] = slab
    runs[k + 4] = at
    this.filled = k + STRIDE
  }

  /** The records, in the order the runs were added: plain objects, their bytes views of the slabs. */
  records(): MemoryChange[] {
    const { runs, sources, slabs, located } = this
    const changes: MemoryChange[] = []
    for (let k = 0; k < this.filled; k += STRIDE) {
      // Small integers as int32s (| 0): doubles from the Float64Array make typed-array views twice as dear.
      const s = sources[(runs[k] ?? 0) | 0] as ChangeSource
      const start = runs[k + 1] ?? 0
      const span = (runs[k + 2] ?? 0) - start
      const length = span < SLAB ? span | 0 : span
      const buffer = (slabs[(runs[k + 3] ?? 0) | 0] as Uint8Array).buffer
      const at = (runs[k + 4] ?? 0) | 0
      const offset = start + s.shift
      const after = addressAfter(s, offset)
      changes.push({
        identity: s.identity,
        mapOffset: BigInt(offset),
        // Without ASLR both addresses are one value: one bigint
        addressBefore:
          s.startA === undefined
            ? s.baseA + BigInt(start)
            : s.startA === s.startB && s.shift === 0
              ? after
              : BigInt(s.startA + start),
        addressAfter: after,
        before: new Uint8Array(buffer, at, length),
        after: new Uint8Array(buffer, at + length, length),
        location: (s.locate ? s.locate(offset, after) : located.get(k / STRIDE)) ?? s.identity,
      })
    }
    return changes
  }
}

function addressAfter(s: ChangeSource, offset: number): bigint {
  return s.startB !== undefined ? BigInt(s.startB + offset) : s.baseB + BigInt(offset)
}

/** A map's start as a number, when every address in it is an exact one. */
function exact(map: MapState): number | undefined {
  return map.end <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(map.start) : undefined
}

/** Copies the bytes [from, from + length) a map holds (`content` or `sparse`) to `into` at `at`. */
function copyInto(map: MapState, from: number, into: Uint8Array, at: number, length: number): void {
  const content = map.content
  // A few bytes (most changes) by hand: a subarray to set() from costs more than copying them.
  if (content && length <= 32) for (let k = 0; k < length; k++) into[at + k] = content[from + k] ?? 0
  else copyHeld(map, from, into, at, length)
}
