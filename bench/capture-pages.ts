// Issue 12: captures that read only the pages a process touched, and incremental snapshots that
// share the unchanged pages of the previous one; against C reading the same touched pages.
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { launch, type Process, type ProcessSnapshot } from '../src/index.js'
import { Residency } from '../src/snapshot/capture-memory.js'
import { probeWriteTracking } from '../src/process/write-probe.js'
import { hasTracker, trackWrites } from '../src/snapshot/incremental.js'
import { median } from './median.js'
import { RUNS, type Row, lowerRow } from './report.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const FIX = `${ROOT}fixtures/c/bin/`
const BIN = `${ROOT}bench/bin/`
const THREADS = Number(process.env.BENCH_PAGES_THREADS ?? 256)
const MIB = Number(process.env.BENCH_MIB ?? 256)
const MB = 1e6

const gc = (): void => (globalThis as { gc?: () => void }).gc?.()

/** Milliseconds and resident-set growth (MB) of one capture. */
function measured(take: () => ProcessSnapshot): { ms: number; mb: number; snap: ProcessSnapshot } {
  const rss = process.memoryUsage().rss
  const t0 = performance.now()
  const snap = take()
  const ms = performance.now() - t0
  return { ms, mb: (process.memoryUsage().rss - rss) / MB, snap }
}

/** Milliseconds to find the touched runs of [start, end): PAGEMAP_SCAN, or 8-byte pagemap entries; median of 5. */
function touchedMs(pid: number, start: bigint, end: bigint, useScan: boolean): number {
  const times: number[] = []
  for (let i = 0; i < 5; i++) {
    const residency = new Residency(pid, { scan: useScan })
    const t0 = performance.now()
    residency.touched(start, end)
    times.push(performance.now() - t0)
    residency.close()
  }
  return median(times)
}

/** bench/c/touched_read against the stopped process: median ms, and bytes it read. */
function cTouched(pid: number, range?: [bigint, bigint]): { ms: number; bytes: number } {
  const args = ['--runs', '3', String(pid), ...(range ? range.map((a) => a.toString(16)) : [])]
  const out = JSON.parse(execFileSync(`${BIN}touched_read`, args, { encoding: 'utf8' }).trim()) as {
    median_ms: number
    bytes: number
  }
  return { ms: out.median_ms, bytes: out.bytes }
}

async function stopped(file: string, args: string[]): Promise<Process> {
  const proc = await launch(`${FIX}${file}`, { args, stdout: 'ignore', stderr: 'ignore' })
  proc.breakAt('ready')
  const ev = await proc.cont({ timeout: 120_000 })
  if (ev.kind !== 'breakpoint') throw new Error(`${file} did not reach ready()`)
  return proc
}

export async function capturePagesRows(): Promise<Row[]> {
  const threads = {
    ms: [] as number[],
    mb: [] as number[],
    base: [] as number[],
    c: [] as number[],
    cMb: [] as number[],
  }
  const reserve = { ms: [] as number[], c: [] as number[] }
  const repeat = { first: [] as number[], collected: [] as number[], alive: [] as number[], shared: [] as number[] }
  const repeatMb = { alive: [] as number[], shared: [] as number[] }
  const onePage = { ms: [] as number[], mb: [] as number[], c: [] as number[], tracked: [] as number[] }
  const scan = { sparse: [] as number[], sparseRead: [] as number[], dense: [] as number[], denseRead: [] as number[] }
  for (let r = 0; r < RUNS; r++) {
    // (1) 256 threads asleep: each 8 MiB stack has a few pages touched
    const many = await stopped('manythreads', [String(THREADS)])
    gc()
    const w = measured(() => many.createSnapshot({ level: 'writable' }))
    threads.ms.push(w.ms)
    threads.mb.push(w.mb)
    threads.base.push(measured(() => many.createSnapshot({ level: 'base' })).ms)
    const ct = cTouched(many.pid)
    threads.c.push(ct.ms)
    threads.cMb.push(ct.bytes / MB)
    await many.kill()
    // (2) 256 MiB reserved, 1 MiB of it touched (256 pages, 1 MiB apart)
    const res = await stopped('reserve', [String(MIB), String(MIB), '1'])
    gc()
    reserve.ms.push(measured(() => res.createSnapshot({ level: 'writable' })).ms)
    const buf = res.regs.rdi
    reserve.c.push(cTouched(res.pid, [buf, buf + res.regs.rsi]).ms)
    scan.sparse.push(touchedMs(res.pid, buf, buf + res.regs.rsi, true))
    scan.sparseRead.push(touchedMs(res.pid, buf, buf + res.regs.rsi, false))
    await res.kill()
    // (3) a 256 MiB heap, all touched, captured again: first; again with the first collected; with it alive
    const heap = await stopped('reserve', [String(MIB), String((MIB << 20) / 4096), '3'])
    gc()
    let first: ProcessSnapshot | undefined = measured(() =>
      heap.createSnapshot({ level: 'writable', incremental: false }),
    ).snap
    first = undefined
    gc()
    const cold = measured(() => heap.createSnapshot({ level: 'writable', incremental: false }))
    repeat.first.push(cold.ms)
    first = cold.snap
    gc()
    const again = measured(() => heap.createSnapshot({ level: 'writable', incremental: false }))
    repeat.alive.push(again.ms)
    repeatMb.alive.push(again.mb)
    const kept = [first, again.snap]
    first = undefined
    kept.length = 0
    gc()
    const lone = measured(() => heap.createSnapshot({ level: 'writable', incremental: false }))
    repeat.collected.push(lone.ms)
    gc()
    const shared = measured(() => heap.createSnapshot({ level: 'writable' }))
    repeat.shared.push(shared.ms)
    repeatMb.shared.push(shared.mb)
    scan.dense.push(touchedMs(heap.pid, heap.regs.rdi, heap.regs.rdi + heap.regs.rsi, true))
    scan.denseRead.push(touchedMs(heap.pid, heap.regs.rdi, heap.regs.rdi + heap.regs.rsi, false))
    // (4) one page written between two stops: since the capture above read 256 MiB, the pages the
    // process writes are tracked by the kernel from the next resume on (tracked-writes.ts)
    await heap.cont()
    if (!hasTracker(heap)) throw new Error(`no write tracking: ${JSON.stringify(probeWriteTracking())}`)
    const hbuf = heap.regs.rdi
    gc()
    const inc = measured(() => heap.createSnapshot({ level: 'writable' }))
    onePage.tracked.push(inc.ms)
    onePage.mb.push(inc.mb)
    onePage.c.push(cTouched(heap.pid, [hbuf + BigInt(MIB << 20) / 2n, hbuf + BigInt(MIB << 20) / 2n + 4096n]).ms)
    // the same without a tracker: every touched page read again and compared with the earlier capture
    trackWrites(heap, undefined)
    await heap.cont()
    gc()
    const untracked = measured(() => heap.createSnapshot({ level: 'writable' }))
    onePage.ms.push(untracked.ms)
    if ([inc.snap, untracked.snap, shared.snap, lone.snap].some((x) => x.maps.length === 0)) throw new Error('no maps')
    await heap.kill()
  }
  const row = lowerRow
  return [
    row(
      `'writable' snapshot of ${THREADS} threads asleep (8 MiB stacks; baseline: C pagemap + process_vm_readv of the touched pages)`,
      threads.ms,
      threads.c,
      'ms',
      'the C read + registers and backtraces',
    ),
    row(`RSS growth of that snapshot (baseline: bytes C read)`, threads.mb, threads.cMb, 'MB', 'about what C reads'),
    row(
      `'base' snapshot of the same ${THREADS} threads (no memory; baseline: the 'writable' one)`,
      threads.base,
      threads.ms,
      'ms',
      'for the record',
    ),
    row(
      `'writable' snapshot, ${MIB} MiB reserved with 1 MiB touched (baseline: C reads the touched pages of that map)`,
      reserve.ms,
      reserve.c,
      'ms',
      'a few ms',
    ),
    row(
      `${MIB} MiB heap, 'writable' incremental: false, again with the earlier snapshot alive (baseline: the first capture)`,
      repeat.alive,
      repeat.first,
      'ms',
      'about 1x',
    ),
    row(
      `${MIB} MiB heap, 'writable' incremental: false, earlier ones collected (baseline: the first capture)`,
      repeat.collected,
      repeat.first,
      'ms',
      'about 1x',
    ),
    row(
      `${MIB} MiB heap, 'writable' again, incremental (default), nothing written (baseline: the first capture)`,
      repeat.shared,
      repeat.first,
      'ms',
      'below 1x',
    ),
    row(
      `RSS growth of that incremental snapshot (baseline: a non-incremental one with the earlier alive)`,
      repeatMb.shared,
      repeatMb.alive,
      'MB',
      'near 0',
    ),
    row(
      `${MIB} MiB heap, one page written, incremental 'writable' snapshot, no tracker (baseline: C reads one page)`,
      onePage.ms,
      onePage.c,
      'ms',
      'for the record: a full read and compare',
    ),
    row(
      `${MIB} MiB heap, one page written, incremental 'writable' snapshot, writes tracked by the kernel (baseline: C reads one page)`,
      onePage.tracked,
      onePage.c,
      'ms',
      'about one page',
    ),
    row(
      `touched runs of ${MIB} MiB with 256 pages touched: PAGEMAP_SCAN (baseline: pagemap read 8 bytes a page)`,
      scan.sparse,
      scan.sparseRead,
      'ms',
      'below 1x',
    ),
    row(
      `touched runs of ${MIB} MiB all touched: PAGEMAP_SCAN (baseline: pagemap read 8 bytes a page)`,
      scan.dense,
      scan.denseRead,
      'ms',
      'about 1x',
    ),
    row(
      `RSS growth of the tracked one-page snapshot (baseline: one page, MB; a GC during the capture can make it negative)`,
      onePage.mb,
      onePage.mb.map(() => 4096 / MB),
      'MB',
      'a few pages',
    ),
  ]
}

/** For a quick look without the report: `node --expose-gc build/bench/capture-pages.js`. */
if (process.argv[1] === fileURLToPath(import.meta.url))
  for (const r of await capturePagesRows())
    console.log(`${r.measure}: ${median(r.ours).toFixed(1)} vs ${median(r.baseline).toFixed(2)} ${r.unit}`)
