// Contents a dump leaves in the stopped process (proc.saveSnapshot): a large map is not copied into
// the snapshot, the writer reads it from the process a chunk at a time, twice (once to find zero and
// repeated pages, once to write), so that a dump holds a few MiB, not the process's size.
import type { MapState } from './model.js'

/** A map's bytes in the live process; a read's finish throws LiveReadError when part of [at, at + into.length) cannot be read. */
export interface LiveContent {
  readonly size: number
  /** A read (each page's crc32 into `crcs` if given), begun now by the helper thread for a large shared buffer, ended by `finish`. */
  start(at: number, into: Uint8Array, crcs?: Uint32Array): { finish(): void }
}

/** A live map that turned out, while the dump read it, to be partly unreadable: the dump copies it the usual way. */
export class LiveReadError extends Error {
  constructor(readonly map: MapState) {
    super(`the map at 0x${map.start.toString(16)} could not be read whole`)
  }
}

const liveOf = new WeakMap<MapState, LiveContent>()

/** The map, whose contents are `live`'s (it holds no `content` of its own). */
export function withLiveContent(map: MapState, live: LiveContent): MapState {
  liveOf.set(map, live)
  return map
}

export function liveContent(map: MapState): LiveContent | undefined {
  return liveOf.get(map)
}
