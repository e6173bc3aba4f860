// Write tracking (src/process/written-pages.ts): what a scan of a large tracked heap costs when one
// page was written, against reading the whole heap (what an incremental snapshot avoids) and
// against the same PAGEMAP_SCAN made in C on its own memory; and what tracking costs the tracee
// (one minor fault per page written per reset).
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { launch, type Process } from '../src/index.js'
import { trackWrites, type PageRun } from '../src/process/written-pages.js'
import { median } from './median.js'
import { RUNS, type Row } from './report.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const FIX = `${ROOT}fixtures/c/bin/`
const BIN = `${ROOT}bench/bin/`
const MIB = Number(process.env.BENCH_MIB ?? 256)
/** Scans timed per run (each after one page written); the run's figure is their median. */
const SCANS = 20
const PAGE = 4096n

/** The dirty fixture's buffer, [g_buf, g_buf + g_pages pages). */
function buffer(proc: Process): PageRun {
  const bytes = (name: string): bigint => Buffer.from(proc.readMemory(name, 8)).readBigUInt64LE(0)
  const start = bytes('g_buf')
  return { start, end: start + bytes('g_pages') * PAGE }
}

/** Median ms of a scan with one page written (by us, through /proc/PID/mem), and of reading the whole buffer. */
async function scanAndRead(): Promise<{ scan: number; read: number }> {
  const proc = await launch(`${FIX}dirty`, { args: [String(MIB)], stdout: 'ignore' })
  try {
    proc.breakAt('ready')
    await proc.cont()
    const buf = buffer(proc)
    const { tracker, reason } = await trackWrites(proc, { ranges: [buf] })
    if (!tracker) throw new Error(`no write tracking here: ${reason}`)
    const scans: number[] = []
    const reads: number[] = []
    const whole = new Uint8Array(Number(buf.end - buf.start))
    proc.readMemoryInto(buf.start, whole) // fault the buffer in once: the reads below reuse it
    for (let i = 0; i < SCANS; i++) {
      proc.writeMemory(buf.start + BigInt(i * 97) * PAGE, Uint8Array.of(i))
      const t0 = performance.now()
      const { written } = tracker.scan()
      scans.push(performance.now() - t0)
      if (written.length !== 1) throw new Error(`expected one written page, got ${written.length} runs`)
      const t1 = performance.now()
      proc.readMemoryInto(buf.start, whole)
      reads.push(performance.now() - t1)
    }
    return { scan: median(scans), read: median(reads) }
  } finally {
    await proc.kill()
  }
}

/** ms from one sweep round's stop to the next (the tracee writes every page), tracked or not. */
async function sweep(track: boolean): Promise<number> {
  const rounds = 4
  const proc = await launch(`${FIX}dirty`, { args: [String(MIB), 'sweep', String(rounds)], stdout: 'ignore' })
  try {
    proc.breakAt('round_done')
    let stop = await proc.cont()
    while (stop.kind === 'breakpoint' && proc.regs.rdi !== 10n) stop = await proc.cont()
    // Round 10 populated every page: from here each round rewrites pages that exist.
    const { tracker } = track ? await trackWrites(proc, { ranges: [buffer(proc)] }) : { tracker: undefined }
    const times: number[] = []
    for (let r = 1; r < rounds; r++) {
      tracker?.scan()
      const t0 = performance.now()
      await proc.cont()
      times.push(performance.now() - t0)
    }
    return median(times)
  } finally {
    await proc.kill()
  }
}

function cScan(): number {
  const out = execFileSync(`${BIN}pagemap_scan`, ['--runs', String(SCANS), String(MIB)], { encoding: 'utf8' })
  return Number((JSON.parse(out.trim().split('\n').at(-1) ?? '{}') as { median_ms?: number }).median_ms)
}

export async function writtenRows(): Promise<Row[]> {
  const scan: number[] = []
  const read: number[] = []
  const cBase: number[] = []
  const tracked: number[] = []
  const plain: number[] = []
  for (let r = 0; r < RUNS; r++) {
    const m = await scanAndRead()
    scan.push(m.scan)
    read.push(m.read)
    cBase.push(cScan())
    plain.push(await sweep(false))
    tracked.push(await sweep(true))
  }
  return [
    {
      measure: `scan + reset of a tracked ${MIB} MiB heap with 1 page written (baseline: readMemoryInto of the ${MIB} MiB, reused buffer)`,
      ours: scan,
      baseline: read,
      unit: 'ms',
      better: 'lower',
      target: 'far below reading the heap',
    },
    {
      measure: `same scan + reset (baseline: C, PAGEMAP_SCAN on its own ${MIB} MiB)`,
      ours: scan,
      baseline: cBase,
      unit: 'ms',
      better: 'lower',
      target: 'for the record',
    },
    {
      measure: `tracee writes every page of ${MIB} MiB between two stops, tracked and reset (baseline: not tracked)`,
      ours: tracked,
      baseline: plain,
      unit: 'ms',
      better: 'lower',
      target: 'for the record',
    },
  ]
}
