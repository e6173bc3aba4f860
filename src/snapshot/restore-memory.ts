// Restore, step 3: the bytes. Every map whose contents the snapshot holds is compared with the
// process's memory a chunk at a time, and only the pages that differ are written back, so a restore
// costs what the process changed (text pages that did not change stay shared with their file).
// A page that the snapshot holds as zeros in private anonymous memory is given back to the kernel
// (madvise MADV_DONTNEED) rather than written: it reads as zeros and stays untouched, as it was.
import type { Process } from '../process/process.js'
import { copyHeld, heldSize, mayHoldData, PAGE } from './content.js'
import type { MapState } from './model.js'

/** Bytes compared per read of the process's memory. */
const CHUNK = 1 << 20

export interface MemoryRestore {
  /** Pages written back. */
  pagesWritten: number
  /** Pages of private anonymous memory dropped (they read as zeros again). */
  pagesDropped: number
  /** Page runs to drop with madvise, by address: [start, end). */
  readonly drops: [bigint, bigint][]
}

/**
 * Writes back the pages of `map` that differ from what the snapshot holds; queues zero pages of
 * anonymous memory to drop. `only`: the byte ranges [from, to) of the map that may differ (page
 * aligned, ascending); the rest is known to be as the snapshot holds it. Default: all of it.
 */
export function restoreMapBytes(
  proc: Process,
  map: MapState,
  into: MemoryRestore,
  buffers: ChunkBuffers,
  only?: readonly (readonly [number, number])[],
): void {
  const held = heldSize(map)
  for (const [lo, hi] of only ?? [[0, held] as const]) {
    for (let from = lo; from < Math.min(hi, held); from += CHUNK)
      restoreChunk(proc, map, from, Math.min(CHUNK, Math.min(hi, held) - from), into, buffers)
  }
}

function restoreChunk(
  proc: Process,
  map: MapState,
  from: number,
  length: number,
  into: MemoryRestore,
  buffers: ChunkBuffers,
): void {
  const anonymous = map.inode === 0 && map.perms[3] === 'p' && map.path !== '[vdso]'
  const address = map.start + BigInt(from)
  const live = buffers.live.subarray(0, length)
  proc.readMemoryInto(address, live)
  // The snapshot's bytes: a view of its buffer when it holds the map whole, else a copy with zeros filled in.
  const want = map.content ? map.content.subarray(from, from + length) : buffers.want.subarray(0, length)
  if (!map.content) {
    if (mayHoldData(map, from, from + length)) copyHeld(map, from, want, 0, length)
    else want.fill(0)
  }
  if (Buffer.from(live.buffer, live.byteOffset, length).equals(want)) return
  let run: [number, number] | undefined // a run of pages to write, offsets in the chunk
  const flush = (): void => {
    if (!run) return
    proc.writeMemory(address + BigInt(run[0]), want.subarray(run[0], run[1]))
    into.pagesWritten += (run[1] - run[0] + PAGE - 1) >> 12
    run = undefined
  }
  for (let at = 0; at < length; at += PAGE) {
    const end = Math.min(at + PAGE, length)
    const a = Buffer.from(live.buffer, live.byteOffset + at, end - at)
    const b = Buffer.from(want.buffer, want.byteOffset + at, end - at)
    if (a.equals(b)) {
      flush()
      continue
    }
    if (anonymous && end - at === PAGE && isZero(b)) {
      flush()
      addDrop(into, address + BigInt(at))
      continue
    }
    if (run && run[1] === at) run[1] = end
    else {
      flush()
      run = [at, end]
    }
  }
  flush()
}

/** Two reusable chunk buffers: the process's bytes and the snapshot's. */
export interface ChunkBuffers {
  readonly live: Uint8Array
  readonly want: Uint8Array
}

let buffers: ChunkBuffers | undefined

/** The chunk buffers, allocated once per thread: a fuzzing loop restores thousands of times. */
export function chunkBuffers(): ChunkBuffers {
  buffers ??= { live: new Uint8Array(CHUNK), want: new Uint8Array(CHUNK) }
  return buffers
}

function addDrop(into: MemoryRestore, page: bigint): void {
  into.pagesDropped++
  const last = into.drops.at(-1)
  if (last && last[1] === page) last[1] = page + BigInt(PAGE)
  else into.drops.push([page, page + BigInt(PAGE)])
}

const ZERO_PAGE = Buffer.alloc(PAGE)

function isZero(page: Buffer): boolean {
  return page.length === PAGE && page.equals(ZERO_PAGE)
}
