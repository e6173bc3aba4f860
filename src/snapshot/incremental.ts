// Incremental capture: a snapshot of a process that was captured before shares the pages that did
// not change with that earlier snapshot, instead of holding a second copy. The earlier capture is
// found through a weak reference (a snapshot that was collected is no base: the map is read whole);
// a tracker of written pages, when one is attached, says which pages to read at all.
import type { MemoryMap } from '../process/maps.js'
import type { Process } from '../process/process.js'
import type { MapState, PageRun, SnapshotLevel } from './model.js'

/**
 * Pages a tracee wrote since the last reset (userfaultfd write-protect + PAGEMAP_SCAN, or soft-dirty
 * bits): the seam where a tracker plugs into capture (`trackWrites`). Offsets are from `start`.
 */
export interface WrittenPages {
  /** Whether every write to [start, end) since the last reset is known (the range was tracked all along). */
  tracked(start: bigint, end: bigint): boolean
  /** Page-aligned runs [from, to) of offsets from `start`, ascending, written since the last reset; undefined when unknown. */
  written(start: bigint, end: bigint): readonly PageRun[] | undefined
  /** A capture begins: learn what was written since the last reset (nothing before it is asked). */
  begin?(): void
  /** Forgets what was written: called once a capture has read the process (it is the new base). */
  reset(): void
}

/** What capture knows of a map from the previous capture of the same process. */
export interface CaptureBase {
  /** The same map (start, end, perms, offset, inode) as captured then, holding all its bytes. */
  readonly map: MapState
  /** Runs written since then, from the tracker; undefined: not known, every touched page is read and compared. */
  readonly written: readonly PageRun[] | undefined
}

interface Previous {
  readonly maps: WeakRef<readonly MapState[]>
  /** By start address, built at the first lookup. */
  byStart?: Map<bigint, MapState>
}

const previousCaptures = new WeakMap<Process, Previous>()
const trackers = new WeakMap<Process, WrittenPages>()
/**
 * The maps the process's memory equalled when its tracker was last reset (a capture's, or those of
 * a snapshot it was restored to): the pages not written since hold what those maps hold. Weak, as
 * the previous capture is.
 */
const trackerBases = new WeakMap<Process, WeakRef<readonly MapState[]>>()

/** Attaches (or, with undefined, detaches) a tracker of the pages `proc` writes; reset at once. */
export function trackWrites(proc: Process, tracker: WrittenPages | undefined, keepBase = false): void {
  if (!tracker) {
    trackers.delete(proc)
    return
  }
  trackers.set(proc, tracker)
  tracker.reset()
  // Writes before now are not known, and the next capture is the base; unless the caller knows that
  // the process did not run nor was written since the last capture (the tracker started right after it).
  if (!keepBase) {
    previousCaptures.delete(proc)
    trackerBases.delete(proc)
  }
}

/** Whether a tracker of written pages is attached to `proc`. */
export function hasTracker(proc: Process): boolean {
  return trackers.has(proc)
}

/** The previous capture's maps of `proc`, when they are still alive, as bases for the maps of a new one. */
export function captureBases(proc: Process): ((m: MemoryMap) => CaptureBase | undefined) | undefined {
  const previous = previousCaptures.get(proc)
  const maps = previous?.maps.deref()
  if (!previous || !maps) return undefined
  const byStart = (previous.byStart ??= new Map(maps.map((m) => [m.start, m])))
  const tracker = trackers.get(proc)
  tracker?.begin?.()
  return (m) => {
    const old = byStart.get(m.start)
    if (!old || !sameMap(old, m) || old.unreadable !== undefined || !holdsAll(old)) return undefined
    const written = tracker?.tracked(m.start, m.end) ? tracker.written(m.start, m.end) : undefined
    return { map: old, written }
  }
}

/**
 * The process's memory changed behind the tracker's back (a restore wrote it, dropped pages with
 * madvise, mapped and unmapped): the next capture reads it whole and becomes the base again.
 */
export function forgetCaptures(proc: Process): void {
  previousCaptures.delete(proc)
}

/** Remembers a capture that holds memory as the base of the next one, and resets the tracker. */
export function rememberCapture(proc: Process, level: SnapshotLevel, maps: readonly MapState[]): void {
  if (level === 'base') return // no contents: the next capture keeps the older base
  previousCaptures.set(proc, { maps: new WeakRef(maps) })
  trackerBases.set(proc, new WeakRef(maps))
  trackers.get(proc)?.reset()
}

/**
 * A restore made the process's memory equal to `maps` (a snapshot's) again: what the tracker found
 * written is forgotten, and the next restore of the same snapshot asks it what was written since.
 */
export function restoredTo(proc: Process, maps: readonly MapState[]): void {
  const tracker = trackers.get(proc)
  if (!tracker) return
  tracker.begin?.() // the restore's own writes and drops: protected again, then forgotten
  tracker.reset()
  trackerBases.set(proc, new WeakRef(maps))
}

/**
 * When the tracker was last reset with the memory equal to `maps` (a capture of them, or a restore
 * to them): for a map of them, the page runs written since (offsets from its start), or undefined
 * where the tracker does not watch the map. Undefined when no tracker knows.
 */
export function writtenSince(
  proc: Process,
  maps: readonly MapState[],
): ((map: MapState) => readonly PageRun[] | undefined) | undefined {
  const tracker = trackers.get(proc)
  if (!tracker || trackerBases.get(proc)?.deref() !== maps) return undefined
  tracker.begin?.()
  return (map) => (tracker.tracked(map.start, map.end) ? tracker.written(map.start, map.end) : undefined)
}

function sameMap(a: MemoryMap, b: MemoryMap): boolean {
  return a.start === b.start && a.end === b.end && a.perms === b.perms && a.offset === b.offset && a.inode === b.inode
}

function holdsAll(m: MapState): boolean {
  const size = Number(m.end - m.start)
  return m.content?.length === size || m.sparse?.size === size
}
