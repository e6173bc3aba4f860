// A diff's cost per changed page against an unchanged page whose bytes sit in buffers of their own
// (a second run of pagediff: bench/linear.ts's unchanged snapshot shares the first one's buffer, so
// its memcmp reads half the memory), and what reading every record costs on top. A diff makes its
// memory records on the first read of `memory`: the diff alone (isEmpty) makes none.
import { fileURLToPath } from 'node:url'
import { launch, type Snapshot, type SnapshotDiff } from '../src/index.js'
import { RUNS, type Row } from './report.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const FIX = `${ROOT}fixtures/c/bin/`
const MIB = Number(process.env.BENCH_MIB ?? 256)
const PAGES = (MIB << 20) / 4096

interface PagesRun {
  /** µs a page: one byte differs in every page, and diff.memory read (its records made). */
  changed: number
  /** µs a page: the same diff, only isEmpty read (no record made). */
  alone: number
  /** µs a page: the same, then every field of every record read. */
  read: number
  /** µs a page: no page differs, a and b in buffers of their own. */
  unchanged: number
  /** µs a page: Buffer.equals over the same maps. */
  memcmp: number
}

/** pagediff's snapshots at its first ready() and, when `second`, at its second (every page changed). */
export async function pagediff(second: boolean): Promise<Snapshot[]> {
  const proc = await launch(`${FIX}pagediff`, { args: [String(MIB), '1'], stdout: 'ignore' })
  proc.breakAt('ready')
  await proc.cont({ timeout: 60_000 })
  const snaps = [proc.createSnapshot({ level: 'writable' })]
  if (second) {
    await proc.cont({ timeout: 60_000 })
    snaps.push(proc.createSnapshot({ level: 'writable' }))
  }
  await proc.kill()
  return snaps
}

/** µs a page of `run`, after a full collection. */
function timed<T>(run: () => T): [number, T] {
  ;(globalThis as { gc?: () => void }).gc?.()
  const t0 = performance.now()
  const out = run()
  return [((performance.now() - t0) * 1000) / PAGES, out]
}

function readAll(d: SnapshotDiff): number {
  let n = 0
  for (const c of d.memory) n += c.before.length + c.after.length + c.location.length + Number(c.addressAfter & 1n)
  return n + Number(d.memory[0]?.mapOffset ?? 0n) + Number(d.memory[0]?.addressBefore ?? 0n)
}

async function pagesRun(): Promise<PagesRun> {
  const [a, b] = (await pagediff(true)) as [Snapshot, Snapshot]
  const [again] = (await pagediff(false)) as [Snapshot]
  const [unchanged, none] = timed(() => a.diff(again))
  if (none.memory.length > 0) throw new Error(`two runs differ in ${none.memory.length} ranges`)
  const [changed, count] = timed(() => a.diff(b).memory.length)
  if (count < PAGES) throw new Error(`expected ${PAGES} changes, got ${count}`)
  const [alone, empty] = timed(() => a.diff(b).isEmpty)
  if (empty) throw new Error('a diff of every page changed is empty')
  const [read] = timed(() => readAll(a.diff(b)))
  const [memcmp] = timed(() =>
    a.maps.forEach((m, i) => {
      const other = again.maps[i]?.content
      if (m.content && other) Buffer.from(m.content.buffer, m.content.byteOffset, m.content.length).equals(other)
    }),
  )
  return { changed, alone, read, unchanged, memcmp }
}

export async function diffPagesRows(): Promise<Row[]> {
  const runs: PagesRun[] = []
  for (let r = 0; r < RUNS; r++) runs.push(await pagesRun())
  const pages = `${MIB} MiB map, ${PAGES.toLocaleString('en')} pages`
  return [
    {
      measure: `diff of two 'writable' snapshots, one byte changed in every page, then diff.memory.length read (its ${PAGES.toLocaleString('en')} records made), µs a page (${pages}; baseline: no page changed, the same bytes in buffers of their own: a second run)`,
      ours: runs.map((r) => r.changed),
      baseline: runs.map((r) => r.unchanged),
      unit: 'µs',
      better: 'lower',
      target: '<= 2x',
    },
    {
      measure: `the same diff, only isEmpty read (no record made), µs a page (baseline: no page changed, as above)`,
      ours: runs.map((r) => r.alone),
      baseline: runs.map((r) => r.unchanged),
      unit: 'µs',
      better: 'lower',
      target: '<= 2x',
    },
    {
      measure: `the same diff, then every field of its ${PAGES.toLocaleString('en')} records read (bytes, location, addresses), µs a page (baseline: the diff and memory.length)`,
      ours: runs.map((r) => r.read),
      baseline: runs.map((r) => r.changed),
      unit: 'µs',
      better: 'lower',
      target: 'what reading the fields adds',
    },
    {
      measure: `diff of two runs' 'writable' snapshots, no page changed, µs a page (${pages}; baseline: memcmp of the same maps)`,
      ours: runs.map((r) => r.unchanged),
      baseline: runs.map((r) => r.memcmp),
      unit: 'µs',
      better: 'lower',
      target: 'memcmp-class',
    },
  ]
}
