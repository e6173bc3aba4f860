// The pages of a map that an incremental capture shares with an earlier snapshot: that snapshot's
// pages (its buffer, or its page list) with the pages written since replaced, as one read-only Map.
// Building it costs the pages replaced, not the pages of the map: a repeat capture of a 256 MiB heap
// with one page written makes a Map of one entry, not 65,536 views.
import { inspect } from 'node:util'
import type { PageRun } from './model.js'

/** What the replaced pages are laid over: a buffer whose listed runs are pages, or a page list. */
export type PageRoot =
  | { readonly content: Uint8Array; readonly listed: readonly PageRun[] }
  | { readonly pages: ReadonlyMap<number, Uint8Array> }

/** Replaced pages by offset: their new bytes, or null for a page the map no longer lists (zeros). */
export type PagePatch = ReadonlyMap<number, Uint8Array | null>

const PAGE = 4096
/** A patch at least this large (pages), and more than an eighth of the pages listed, is flattened into a plain Map. */
const FLATTEN_MIN = 1024

/**
 * A SparseContent page list over a root and a patch. It holds its root alive: that is the sharing (a
 * snapshot built on another keeps the other's buffer, not a copy). A patch over a PatchedPages is merged
 * into that one's patch over the same root, so a chain of captures never reads through more than one
 * level; a patch that grows large is flattened into a plain Map (the cost of a page list, once).
 * Read-only; iteration is ascending by offset, computed on the fly (nothing is materialized). Note that
 * structuredClone sees a Map subclass as an empty Map: copy it with `new Map(pages)` first.
 */
export class PatchedPages extends Map<number, Uint8Array> {
  readonly #root: PageRoot
  readonly #patch: PagePatch
  readonly #size: number
  #sortedPatch: number[] | undefined

  private constructor(root: PageRoot, patch: PagePatch, size: number) {
    super()
    this.#root = root
    this.#patch = patch
    this.#size = size
  }

  /** `earlier` with `patch` laid over it: a PatchedPages, or a plain Map when the patch is large. */
  static over(earlier: PageRoot, patch: PagePatch): ReadonlyMap<number, Uint8Array> {
    let root = earlier
    let merged = patch
    if ('pages' in earlier && earlier.pages instanceof PatchedPages) {
      root = earlier.pages.#root
      merged = new Map([...earlier.pages.#patch, ...patch])
    }
    const pages = new PatchedPages(root, merged, rootCount(root) + sizeChange(root, merged))
    if (merged.size >= FLATTEN_MIN && merged.size * 8 > pages.size) return new Map(pages)
    return pages
  }

  override get size(): number {
    return this.#size
  }

  override get(offset: number): Uint8Array | undefined {
    const patched = this.#patch.get(offset)
    if (patched !== undefined) return patched ?? undefined
    return rootGet(this.#root, offset)
  }

  override has(offset: number): boolean {
    const patched = this.#patch.get(offset)
    if (patched !== undefined) return patched !== null
    return rootHas(this.#root, offset)
  }

  /**
   * The bytes [from, from + length) as one view of the root's buffer, when the root is a buffer and no
   * replaced page lies in the range (its unlisted pages are zeros there too); else undefined.
   */
  denseView(from: number, length: number): Uint8Array | undefined {
    if ('pages' in this.#root || this.#patchedIn(from, from + length)) return undefined
    return this.#root.content.subarray(from, from + length)
  }

  /**
   * What [from, to) reads through, when no replaced page lies there: the root's buffer or page list
   * (two maps that read a range through the same object hold the same bytes there); else undefined.
   */
  rootIn(from: number, to: number): object | undefined {
    if (this.#patchedIn(from, to)) return undefined
    return 'pages' in this.#root ? this.#root.pages : this.#root.content
  }

  /** Whether a replaced page lies in [from, to). */
  #patchedIn(from: number, to: number): boolean {
    const keys = (this.#sortedPatch ??= [...this.#patch.keys()].sort((a, b) => a - b))
    const first = from - (from % PAGE)
    let lo = 0
    let hi = keys.length
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (keys[mid]! < first) lo = mid + 1
      else hi = mid
    }
    return lo < keys.length && keys[lo]! < to
  }

  override *entries(): MapIterator<[number, Uint8Array]> {
    const patchKeys = (this.#sortedPatch ??= [...this.#patch.keys()].sort((a, b) => a - b))
    let p = 0
    for (const at of rootKeys(this.#root)) {
      for (; p < patchKeys.length && patchKeys[p]! < at; p++) {
        const bytes = this.#patch.get(patchKeys[p]!)
        if (bytes) yield [patchKeys[p]!, bytes]
      }
      if (patchKeys[p] === at) {
        p++
        const bytes = this.#patch.get(at)
        if (bytes) yield [at, bytes]
        continue
      }
      yield [at, rootGet(this.#root, at)!]
    }
    for (; p < patchKeys.length; p++) {
      const bytes = this.#patch.get(patchKeys[p]!)
      if (bytes) yield [patchKeys[p]!, bytes]
    }
  }

  override [Symbol.iterator](): MapIterator<[number, Uint8Array]> {
    return this.entries()
  }

  override *keys(): MapIterator<number> {
    for (const [at] of this.entries()) yield at
  }

  override *values(): MapIterator<Uint8Array> {
    for (const [, bytes] of this.entries()) yield bytes
  }

  override forEach(
    callback: (value: Uint8Array, key: number, map: Map<number, Uint8Array>) => void,
    self?: unknown,
  ): void {
    for (const [at, bytes] of this.entries()) callback.call(self, bytes, at, this)
  }

  override set(): this {
    throw new TypeError('the pages of a snapshot are read-only')
  }

  override delete(): boolean {
    throw new TypeError('the pages of a snapshot are read-only')
  }

  override clear(): void {
    throw new TypeError('the pages of a snapshot are read-only')
  }

  /** Printed as the Map it stands for (util.inspect reads a Map's own slots, which this one leaves empty). */
  [inspect.custom](depth: number, options: Parameters<typeof inspect>[1]): string {
    if (depth < 0) return `PatchedPages(${this.#size}) [Map]`
    return `PatchedPages(${this.#size}) ${inspect(new Map(this), options)}`
  }
}

function rootCount(root: PageRoot): number {
  if ('pages' in root) return root.pages.size
  return root.listed.reduce((n, [from, to]) => n + Math.ceil((to - from) / PAGE), 0)
}

/** How many pages the patch adds to the root's list (replacing a listed page adds none, removing one takes one). */
function sizeChange(root: PageRoot, patch: PagePatch): number {
  let change = 0
  for (const [at, bytes] of patch) {
    const listed = rootHas(root, at)
    if (bytes && !listed) change++
    else if (!bytes && listed) change--
  }
  return change
}

function rootHas(root: PageRoot, offset: number): boolean {
  if ('pages' in root) return root.pages.has(offset)
  return offset % PAGE === 0 && insideRuns(root.listed, offset, offset + 1)
}

function rootGet(root: PageRoot, offset: number): Uint8Array | undefined {
  if ('pages' in root) return root.pages.get(offset)
  if (!rootHas(root, offset)) return undefined
  return root.content.subarray(offset, Math.min(offset + PAGE, root.content.length))
}

function* rootKeys(root: PageRoot): Generator<number> {
  if ('pages' in root) {
    yield* root.pages.keys()
    return
  }
  for (const [from, to] of root.listed) for (let at = from; at < to; at += PAGE) yield at
}

/** Whether [from, to) lies inside one of the ascending, disjoint runs (binary search). */
export function insideRuns(runs: readonly PageRun[], from: number, to: number): boolean {
  let lo = 0
  let hi = runs.length
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    const run = runs[mid]!
    if (from < run[0]) hi = mid
    else if (from >= run[1]) lo = mid + 1
    else return to <= run[1]
  }
  return false
}
