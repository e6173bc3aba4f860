// Incremental captures of big processes: after a capture that read much memory, the pages the process
// writes from then on are tracked (userfaultfd write-protect, src/process/written-pages.ts), so that
// the next capture reads only those. Started at the next resume, while the process is still at the
// stop of that capture: nothing written in between is missed.
import type { Process } from '../process/process.js'
import { trackWrites as startTracking, type WriteTracker } from '../process/written-pages.js'
import { probeWriteTracking } from '../process/write-probe.js'
import { hasTracker, trackWrites, type WrittenPages } from './incremental.js'
import type { MapState, PageRun, SnapshotLevel } from './model.js'

/**
 * Bytes a capture must have read for the next one to track writes: starting the tracker costs ~4 ms
 * (two injected system calls and a registration per map), what reading ~32 MiB costs; and each page
 * the program then writes takes one more minor fault (~1.7 µs). Small processes read everything.
 */
export const TRACK_FROM_BYTES = 32 << 20

/** After a capture of `maps` at `level`: schedules tracking of writes when it pays and can work. */
export function trackAfterCapture(proc: Process, level: SnapshotLevel, maps: readonly MapState[]): void {
  if (level === 'base' || hasTracker(proc) || heldBytes(maps) < TRACK_FROM_BYTES) return
  if (probeWriteTracking().mechanism === undefined) return
  const writes = proc.memoryWrites
  proc.atNextResume(async () => {
    if (hasTracker(proc) || proc.memoryWrites !== writes) return // written by us since: not a base
    const { tracker } = await startTracking(proc)
    if (tracker) trackWrites(proc, new TrackedPages(tracker), true)
  })
}

/** Bytes of the maps' contents that were read (untouched pages excluded). */
function heldBytes(maps: readonly MapState[]): number {
  let bytes = 0
  for (const m of maps) {
    const size = m.content?.length ?? m.sparse?.size ?? 0
    bytes += size - (m.untouched ?? []).reduce((sum, [from, to]) => sum + (to - from), 0)
  }
  return bytes
}

/**
 * A WriteTracker as the capture's seam: each capture scans (and protects again) what was written,
 * and what a capture that failed half-way had scanned is kept until one completes (reset).
 */
class TrackedPages implements WrittenPages {
  private readonly tracker: WriteTracker
  /** Runs written since the last completed capture, absolute, sorted. */
  private written_: { start: bigint; end: bigint }[] = []
  /** Ranges that stopped being tracked since the last completed capture. */
  private lost: { start: bigint; end: bigint }[] = []

  constructor(tracker: WriteTracker) {
    this.tracker = tracker
  }

  begin(): void {
    if (!this.tracker.open) return
    const found = this.tracker.scan({ reset: true })
    this.written_ = mergeRuns([...this.written_, ...found.written])
    this.lost.push(...found.lost)
  }

  tracked(start: bigint, end: bigint): boolean {
    if (!this.tracker.open) return false
    if (this.lost.some((r) => r.start < end && r.end > start)) return false
    const ranges = this.tracker.tracked
    const range = ranges[firstEndingAfter(ranges, start)]
    return range !== undefined && range.start <= start && range.end >= end
  }

  written(start: bigint, end: bigint): readonly PageRun[] | undefined {
    const runs: PageRun[] = []
    // asked once per map: from the first run that reaches the map, not through every run of the process
    for (let i = firstEndingAfter(this.written_, start); i < this.written_.length; i++) {
      const r = this.written_[i]!
      if (r.start >= end) break
      const from = r.start > start ? r.start : start
      const to = r.end < end ? r.end : end
      runs.push([Number(from - start), Number(to - start)])
    }
    return runs
  }

  reset(): void {
    this.written_ = []
    this.lost = []
  }
}

function mergeRuns(runs: { start: bigint; end: bigint }[]): { start: bigint; end: bigint }[] {
  runs.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0))
  const out: { start: bigint; end: bigint }[] = []
  for (const r of runs) {
    const last = out.at(-1)
    if (last && r.start <= last.end) last.end = r.end > last.end ? r.end : last.end
    else out.push({ start: r.start, end: r.end })
  }
  return out
}

/** Index of the first of ascending, disjoint runs that ends after `at` (runs.length if none). */
function firstEndingAfter(runs: readonly { start: bigint; end: bigint }[], at: bigint): number {
  let lo = 0
  let hi = runs.length
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if (runs[mid]!.end <= at) lo = mid + 1
    else hi = mid
  }
  return lo
}
