// What a snapshot holds of one map's bytes, whether as one buffer (`content`) or page by page with
// zeros left out (`sparse`): how far it holds them, copies out of them, and where data may be.
import type { MapState } from './model.js'
import { PatchedPages } from './patched-pages.js'

export const PAGE = 4096

/** How many bytes from the map's start the snapshot holds: all of them, a prefix, or none. */
export function heldSize(map: MapState): number {
  return map.content?.length ?? map.sparse?.size ?? 0
}

/** Copies the held bytes [from, from + length) of a map into `into` at `at`; the range must be held. */
export function copyHeld(map: MapState, from: number, into: Uint8Array, at: number, length: number): void {
  if (map.content) {
    into.set(map.content.subarray(from, from + length), at)
    return
  }
  into.fill(0, at, at + length)
  const pages = map.sparse?.pages
  if (!pages) return
  const end = from + length
  for (let page = from - (from % PAGE); page < end; page += PAGE) {
    const bytes = pages.get(page)
    if (!bytes) continue
    const lo = Math.max(from, page)
    const hi = Math.min(end, page + bytes.length)
    into.set(bytes.subarray(lo - page, hi - page), at + lo - from)
  }
}

/** The held bytes [from, from + length) of a map: a view of `content`, or a copy with the zeros filled in. */
export function heldBytes(map: MapState, from: number, length: number): Uint8Array {
  if (map.content) return map.content.subarray(from, from + length)
  const out = new Uint8Array(length)
  copyHeld(map, from, out, 0, length)
  return out
}

/** Whether [from, to) of a held map may hold a non-zero byte: always for `content`, only at listed pages for `sparse`. */
export function mayHoldData(map: MapState, from: number, to: number): boolean {
  if (map.content) return true
  const pages = map.sparse?.pages
  if (!pages || pages.size === 0) return false
  const first = from - (from % PAGE)
  if ((to - first) / PAGE < pages.size) {
    for (let page = first; page < to; page += PAGE) if (pages.has(page)) return true
    return false
  }
  for (const page of pages.keys()) if (page < to && page + PAGE > from) return true
  return false
}

/**
 * Whether two maps hold the same bytes in [from, to) by construction: they read it through the same
 * buffer or page list (an incremental capture and the one it was laid over, where it replaced no page).
 * False says nothing: compare the bytes.
 */
export function sameHeld(a: MapState, b: MapState, from: number, to: number): boolean {
  const through = heldThrough(a, from, to)
  return through !== undefined && through === heldThrough(b, from, to)
}

function heldThrough(map: MapState, from: number, to: number): object | undefined {
  if (map.content) return map.content
  const pages = map.sparse?.pages
  return pages instanceof PatchedPages ? pages.rootIn(from, to) : pages
}
