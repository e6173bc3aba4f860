// Page runs for write tracking: which ranges to track by default, which of them the mechanism can
// answer for, and sorting, merging and gaps of [start, end) runs.
import { ProcsnapError } from '../errors.js'
import { PAGE, type PageRun } from '../native/pagemap.js'
import { hex, type MemoryMap } from './maps.js'

/** A range the tracker does not track, and why (callers treat it as fully written). */
export interface UntrackedRange extends PageRun {
  reason: string
}

/**
 * Why a mapping's pages can change without a write fault of this process: shared memory (another
 * process writes it), and private file mappings (MADV_DONTNEED puts the file's bytes back, and the
 * kernel keeps the page protected: checked on 6.18). undefined when the mapping is private anonymous.
 */
function changesUnseen(m: MemoryMap): string | undefined {
  if (m.perms[3] === 's') return 'shared: other processes write it without a fault here'
  if (m.inode !== 0)
    return 'file-backed: MADV_DONTNEED would put the file back into a page without a write (pass fileBacked: true to track it anyway)'
  return undefined
}

/** Every writable mapping but the kernel's own ([vvar], [vsyscall]). */
export function writableRanges(maps: readonly MemoryMap[]): PageRun[] {
  return maps
    .filter((m) => m.perms[1] === 'w' && !m.path.startsWith('[vvar') && m.path !== '[vsyscall]')
    .map((m) => ({ start: m.start, end: m.end }))
}

/**
 * Splits `ranges` along the mappings: the parts to register (one per mapping, so that a refusal
 * costs one mapping), and the parts left out with why (unmapped; shared or file-backed unless `fileBacked`).
 */
export function classify(
  ranges: readonly PageRun[],
  maps: readonly MemoryMap[],
  fileBacked: boolean,
): { track: PageRun[]; skip: UntrackedRange[] } {
  const track: PageRun[] = []
  const skip: UntrackedRange[] = []
  for (const range of normalize(ranges)) {
    const covered: PageRun[] = []
    for (const m of maps) {
      const start = m.start > range.start ? m.start : range.start
      const end = m.end < range.end ? m.end : range.end
      if (start >= end) continue
      covered.push({ start, end })
      const why = changesUnseen(m)
      if (why && !(fileBacked && m.perms[3] === 'p')) skip.push({ start, end, reason: why })
      else track.push({ start, end })
    }
    for (const gap of gaps(range, covered)) skip.push({ ...gap, reason: 'not mapped' })
  }
  return { track, skip }
}

/** Sorted, page-aligned runs, overlapping ones merged; a range not aligned is a caller's mistake. */
export function normalize(ranges: readonly PageRun[]): PageRun[] {
  for (const r of ranges) {
    if (r.start % PAGE !== 0n || r.end % PAGE !== 0n || r.end <= r.start)
      throw new ProcsnapError(
        'ERR_BAD_ARGUMENT',
        `Track page-aligned, non-empty ranges: ${hex(r.start)}-${hex(r.end)} is not one.`,
      )
  }
  return sortRuns(
    ranges.map((r) => ({ start: r.start, end: r.end })),
    false,
  )
}

/** Sorted runs, overlapping ones merged (and adjacent ones with `adjacent`). */
export function sortRuns(runs: PageRun[], adjacent: boolean): PageRun[] {
  runs.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0))
  const out: PageRun[] = []
  for (const r of runs) {
    const last = out.at(-1)
    if (last && (r.start < last.end || (adjacent && r.start === last.end)))
      last.end = r.end > last.end ? r.end : last.end
    else out.push({ ...r })
  }
  return out
}

/** The parts of `range` that `inside` (sorted, within it) does not cover. */
export function gaps(range: PageRun, inside: readonly PageRun[]): PageRun[] {
  const out: PageRun[] = []
  let at = range.start
  for (const r of inside) {
    if (r.start > at) out.push({ start: at, end: r.start })
    at = r.end
  }
  if (at < range.end) out.push({ start: at, end: range.end })
  return out
}
