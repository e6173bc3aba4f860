// Costs that must not grow with what they do not touch: a diff's cost per changed page against an
// unchanged one, and a snapshot's or read's cost with 10,000 breakpoints armed against one.
import { fileURLToPath } from 'node:url'
import { launch, type Process } from '../src/index.js'
import { median } from './median.js'
import { fmt, RUNS, type Row } from './report.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const FIX = `${ROOT}fixtures/c/bin/`
const MIB = Number(process.env.BENCH_MIB ?? 256)
/** Breakpoint counts of the curve. */
const COUNTS = [1, 100, 1_000, 10_000]
const SMALL_READS = 500
const SNAPSHOTS = 20

interface DiffRun {
  /** µs a page: two snapshots of the same stop, no page differs. */
  unchanged: number
  /** µs a page: one byte differs in every page. */
  changed: number
  /** µs a page: memcmp (Buffer.equals) over the same maps, nothing else. */
  memcmp: number
}

/** a.diff(b) of two 'writable' snapshots of pagediff's MIB map, per page of it. */
async function diffRun(): Promise<DiffRun> {
  const proc = await launch(`${FIX}pagediff`, { args: [String(MIB), '1'], stdout: 'ignore' })
  proc.breakAt('ready')
  await proc.cont({ timeout: 60_000 })
  const pages = (MIB << 20) / 4096
  // Each with buffers of its own: an incremental one would share a's, and a diff skips shared bytes.
  const a = proc.createSnapshot({ level: 'writable', incremental: false })
  const same = proc.createSnapshot({ level: 'writable', incremental: false })
  await proc.cont({ timeout: 60_000 })
  const b = proc.createSnapshot({ level: 'writable', incremental: false })
  await proc.kill()
  ;(globalThis as { gc?: () => void }).gc?.()
  let t0 = performance.now()
  const none = a.diff(same)
  const unchanged = ((performance.now() - t0) * 1000) / pages
  if (!none.isEmpty) throw new Error('two snapshots of the same stop differ')
  ;(globalThis as { gc?: () => void }).gc?.()
  t0 = performance.now()
  const every = a.diff(b)
  void every.memory.length // its records are made on the first read of memory: timed, as when they were made with it
  const changed = ((performance.now() - t0) * 1000) / pages
  const inMap = every.memory.filter((c) => c.before.length === 1).length
  if (inMap < pages) throw new Error(`expected ${pages} one-byte changes, got ${inMap}`)
  t0 = performance.now()
  a.maps.forEach((m, i) => {
    const other = same.maps[i]?.content
    if (m.content && other) Buffer.from(m.content.buffer, m.content.byteOffset, m.content.length).equals(other)
  })
  const memcmp = ((performance.now() - t0) * 1000) / pages
  return { unchanged, changed, memcmp }
}

interface BreakpointRun {
  /** ms of a 'base' snapshot, by breakpoint count. */
  snapshot: number[]
  /** µs of an 8-byte readMemory of the stack, by breakpoint count. */
  read: number[]
  /** µs of a 1 MiB readMemory over libc's text, which holds every breakpoint, by count. */
  textRead: number[]
}

/** The counter stopped at bump with n breakpoints spread over libc's text (none runs while we measure). */
async function withBreakpoints(n: number): Promise<Process> {
  const proc = await launch(`${FIX}counter`, { args: ['3'], stdout: 'ignore' })
  proc.breakAt('bump')
  await proc.cont()
  const text = proc.maps.find((m) => m.path.endsWith('/libc.so.6') && m.perms.startsWith('r-x'))
  if (!text) throw new Error('no libc text map')
  const stride = (text.end - text.start) / BigInt(n + 1)
  for (let i = 1; i < n; i++) proc.breakAt(text.start + BigInt(i) * stride)
  return proc
}

async function breakpointRun(): Promise<BreakpointRun> {
  const run: BreakpointRun = { snapshot: [], read: [], textRead: [] }
  // A first round with one breakpoint, not kept: the JIT warms up on it rather than on the curve's first point.
  for (const [round, n] of [1, ...COUNTS].entries()) {
    const proc = await withBreakpoints(n)
    const text = proc.maps.find((m) => m.path.endsWith('/libc.so.6') && m.perms.startsWith('r-x'))
    const sp = proc.regs.rsp
    const times: number[] = []
    for (let i = 0; i < SNAPSHOTS; i++) {
      const t0 = performance.now()
      proc.createSnapshot()
      times.push(performance.now() - t0)
    }
    run.snapshot.push(median(times.slice(3)))
    // Batches after a warm-up batch (the JIT), median of their µs a read.
    const batches: number[] = []
    for (let batch = 0; batch < 6; batch++) {
      const t0 = performance.now()
      for (let i = 0; i < SMALL_READS; i++) proc.readMemory(sp + BigInt((i & 63) * 8), 8)
      if (batch > 0) batches.push(((performance.now() - t0) * 1000) / SMALL_READS)
    }
    run.read.push(median(batches))
    const size = Math.min(1 << 20, Number((text?.end ?? 0n) - (text?.start ?? 0n)))
    const target = new Uint8Array(size)
    const reads: number[] = []
    for (let i = 0; i < 9; i++) {
      const t0 = performance.now()
      proc.readMemoryInto(text?.start ?? 0n, target)
      reads.push((performance.now() - t0) * 1000)
    }
    run.textRead.push(median(reads))
    await proc.kill()
    if (round === 0) run.snapshot.length = run.read.length = run.textRead.length = 0
  }
  return run
}

/** The curve for bench/RESULTS.md: each measure by breakpoint count, medians of the runs. */
function curveTable(runs: BreakpointRun[]): string {
  const col = (pick: (r: BreakpointRun) => number[], i: number): string => fmt(median(runs.map((r) => pick(r)[i] ?? 0)))
  return [
    '| breakpoints armed | base snapshot (ms) | readMemory 8 bytes of stack (µs) | readMemory 1 MiB of libc text holding them all (µs) |',
    '|---|---|---|---|',
    ...COUNTS.map(
      (n, i) =>
        `| ${n.toLocaleString('en')} | ${col((r) => r.snapshot, i)} | ${col((r) => r.read, i)} | ${col((r) => r.textRead, i)} |`,
    ),
  ].join('\n')
}

export async function linearRows(): Promise<Row[]> {
  const diffs: DiffRun[] = []
  const bps: BreakpointRun[] = []
  for (let r = 0; r < RUNS; r++) {
    diffs.push(await diffRun())
    bps.push(await breakpointRun())
  }
  console.log(curveTable(bps))
  const last = COUNTS.length - 1
  const pages = `${MIB} MiB map, ${((MIB << 20) / 4096).toLocaleString('en')} pages`
  return [
    {
      measure: `diff of two 'writable' snapshots, one byte changed in every page, then diff.memory read (its records made), µs a page (${pages}; baseline: no page changed)`,
      ours: diffs.map((d) => d.changed),
      baseline: diffs.map((d) => d.unchanged),
      unit: 'µs',
      better: 'lower',
      target: '<= 2x',
    },
    {
      measure: `diff of two 'writable' snapshots, no page changed, µs a page (${pages}; baseline: memcmp of the same maps)`,
      ours: diffs.map((d) => d.unchanged),
      baseline: diffs.map((d) => d.memcmp),
      unit: 'µs',
      better: 'lower',
      target: 'memcmp-class (<= 1 µs a page)',
    },
    {
      measure: `'base' snapshot of the counter at bump with ${COUNTS[last]?.toLocaleString('en')} breakpoints armed in libc (baseline: 1)`,
      ours: bps.map((b) => b.snapshot[last] ?? 0),
      baseline: bps.map((b) => b.snapshot[0] ?? 0),
      unit: 'ms',
      better: 'lower',
      target: 'flat (~1x)',
    },
    {
      measure: `readMemory of 8 stack bytes with ${COUNTS[last]?.toLocaleString('en')} breakpoints armed (baseline: 1)`,
      ours: bps.map((b) => b.read[last] ?? 0),
      baseline: bps.map((b) => b.read[0] ?? 0),
      unit: 'µs',
      better: 'lower',
      target: 'flat (~1x)',
    },
  ]
}
