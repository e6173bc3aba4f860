// Issue 12: a repeat 'writable' snapshot of a big process with one page written costs about one
// page. The pages written are laid over the earlier capture's (PatchedPages), so the capture costs a
// 'base' snapshot (registers, maps, backtraces, fds), the tracker's scan, and the pages written;
// against a 'base' snapshot of the same stop, and against the same capture with no tracker.
import { fileURLToPath } from 'node:url'
import { launch, type Process, type ProcessSnapshot } from '../src/index.js'
import { probeWriteTracking } from '../src/process/write-probe.js'
import { hasTracker, trackWrites } from '../src/snapshot/incremental.js'
import { median } from './median.js'
import { RUNS, type Row, lowerRow } from './report.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const FIX = `${ROOT}fixtures/c/bin/`
const MIB = Number(process.env.BENCH_MIB ?? 256)
const PAGES = (MIB << 20) / 4096
/** Stops timed per run (each after the fixture wrote one page); the run's figure is their median. */
const STOPS = 20
const MB = 1e6

const gc = (): void => (globalThis as { gc?: () => void }).gc?.()

/** Collects garbage twice across a turn of the event loop: WeakRef targets read in this turn (earlier bases) stay until it ends. */
async function settle(): Promise<void> {
  gc()
  await new Promise((resolve) => setTimeout(resolve, 0))
  gc()
}

/** reserve with `touched` pages of MIB MiB filled, at its first ready(), its first 'writable' capture taken. */
async function reserve(touched: number): Promise<{ proc: Process; first: ProcessSnapshot; ms: number }> {
  const proc = await launch(`${FIX}reserve`, {
    args: [String(MIB), String(touched), String(3 * STOPS + 5), '0'],
    stdout: 'ignore',
  })
  proc.breakAt('ready')
  await proc.cont()
  gc()
  const { ms, snap } = timed(() => proc.createSnapshot({ level: 'writable' }))
  return { proc, first: snap, ms }
}

/** Bytes of the buffers `snaps` hold of their own (not their predecessor's): the small maps each capture copies. */
function ownBuffers(snaps: readonly ProcessSnapshot[]): number {
  let bytes = 0
  snaps.forEach((snap, i) => {
    const before = new Set(snaps[i - 1]?.maps.map((m) => m.content))
    for (const m of snap.maps) if (i > 0 && m.content && !before.has(m.content)) bytes += m.content.length
  })
  return bytes
}

function timed(take: () => ProcessSnapshot): { ms: number; snap: ProcessSnapshot } {
  const t0 = performance.now()
  const snap = take()
  return { ms: performance.now() - t0, snap }
}

/** Median ms of STOPS repeat 'writable' captures (one page written before each) and of a 'base' one at each stop. */
async function repeats(proc: Process, keep: ProcessSnapshot[]): Promise<{ writable: number; base: number }> {
  const writable: number[] = []
  const base: number[] = []
  for (let i = 0; i < STOPS; i++) {
    await proc.cont()
    const w = timed(() => proc.createSnapshot({ level: 'writable' }))
    writable.push(w.ms)
    keep.push(w.snap)
    base.push(timed(() => proc.createSnapshot({ level: 'base' })).ms)
  }
  return { writable: median(writable), base: median(base) }
}

export async function incrementalRows(): Promise<Row[]> {
  if (probeWriteTracking().mechanism === undefined) throw new Error('no write tracking here (uffd-wp + PAGEMAP_SCAN)')
  const dense = { tracked: [] as number[], base: [] as number[], untracked: [] as number[], first: [] as number[] }
  const chain = { mb: [] as number[], copied: [] as number[] }
  const sparse = { tracked: [] as number[], base: [] as number[] }
  for (let r = 0; r < RUNS; r++) {
    // (1) a 256 MiB heap, every page touched: the first capture reads it all and starts tracking
    const { proc, first, ms } = await reserve(PAGES)
    dense.first.push(ms)
    const kept: ProcessSnapshot[] = [first]
    await settle()
    const heap0 = process.memoryUsage()
    const d = await repeats(proc, kept)
    if (!hasTracker(proc)) throw new Error('the heap is not tracked')
    await settle()
    const heap1 = process.memoryUsage()
    // what the STOPS snapshots kept alive cost in this process beyond their pages
    chain.mb.push((heap1.heapUsed + heap1.external - heap0.heapUsed - heap0.external) / MB)
    chain.copied.push(ownBuffers(kept) / MB)
    dense.tracked.push(d.writable)
    dense.base.push(d.base)
    // the same with no tracker: every page read again and compared with the earlier capture
    trackWrites(proc, undefined)
    const untracked: number[] = []
    for (let i = 0; i < 3; i++) {
      await proc.cont()
      untracked.push(timed(() => proc.createSnapshot({ level: 'writable' })).ms)
    }
    dense.untracked.push(median(untracked))
    await proc.kill()
    kept.length = 0
    // (2) a 256 MiB reservation with every fourth page touched (15,360 runs of pages)
    const res = await reserve(PAGES / 4)
    const s = await repeats(res.proc, [res.first])
    sparse.tracked.push(s.writable)
    sparse.base.push(s.base)
    await res.proc.kill()
  }
  const row = lowerRow
  return [
    row(
      `${MIB} MiB heap, one page written, incremental 'writable' snapshot, writes tracked by the kernel, median of ${STOPS} stops (baseline: a 'base' snapshot of the same stop)`,
      dense.tracked,
      dense.base,
      'ms',
      "a 'base' snapshot plus one page: a few ms at most",
    ),
    row(
      `same heap, one page written, no tracker: every page read and compared (baseline: the first capture)`,
      dense.untracked,
      dense.first,
      'ms',
      'for the record: a full read and compare',
    ),
    row(
      `JS heap + external memory kept by those ${STOPS} incremental snapshots (baseline: the small maps they copied: stack, data)`,
      chain.mb,
      chain.copied,
      'MB',
      'about 1x: the heap shared',
    ),
    row(
      `${MIB} MiB reservation, every 4th page touched (15,360 runs), one page written, incremental tracked (baseline: 'base' snapshot)`,
      sparse.tracked,
      sparse.base,
      'ms',
      "a 'base' snapshot plus one page",
    ),
  ]
}

/** For a quick look without the report: `node --expose-gc build/bench/incremental.js`. */
if (process.argv[1] === fileURLToPath(import.meta.url))
  for (const r of await incrementalRows())
    console.log(`${r.measure}: ${median(r.ours).toFixed(2)} vs ${median(r.baseline).toFixed(2)} ${r.unit}`)
