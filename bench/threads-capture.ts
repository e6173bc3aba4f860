// `BENCH_ONLY=threads`: a 'base' snapshot of 1, 16 and 256 blocked threads (the crowd fixture at
// all_started) against the kernel's price for the same threads, a C loop doing PTRACE_GETREGS,
// PTRACE_GETREGSET(NT_X86_XSTATE) and one 4 KiB process_vm_readv of the stack per thread
// (bench/c/threads_capture.c); and what reading every register of 257 threads costs.
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { launch, type Process } from '../src/index.js'
import { readXState } from '../src/native/arch/x86_64-xstate.js'
import { median } from './median.js'
import { RUNS, type Row } from './report.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const CROWD = `${ROOT}fixtures/c/bin/crowd`
const C_BASELINE = `${ROOT}bench/bin/threads_capture`
const WORKERS = [1, 16, 256] as const
/** Snapshots timed per run (after one untimed, which parses the ELF files), median kept. */
const SNAPSHOTS = 5

function allStartedOffset(): string {
  const line = execFileSync('nm', [CROWD], { encoding: 'utf8' })
    .split('\n')
    .find((l) => l.endsWith(' all_started'))
  if (!line) throw new Error(`no all_started in ${CROWD}`)
  return line.split(' ')[0] ?? ''
}

async function crowdAtStart(workers: number): Promise<Process> {
  const proc = await launch(CROWD, { args: [String(workers)], stdout: 'ignore', stderr: 'ignore', timeout: 60_000 })
  proc.breakAt('all_started')
  const ev = await proc.cont()
  if (ev.kind !== 'breakpoint') throw new Error(`crowd ${workers}: stopped by ${ev.kind}, not at all_started`)
  return proc
}

interface OursRun {
  /** Median ms of createSnapshot() once warm. */
  snapshot: number
  /** The first createSnapshot() of the process. */
  first: number
  /** Reading every register of every thread of a new snapshot (Object.entries), ms. */
  enumerate: number
  /** The eager record capture built before (general registers' toJSON spread with readXState), for every thread, ms. */
  eager: number
  threads: number
}

async function oursRun(workers: number): Promise<OursRun> {
  const proc = await crowdAtStart(workers)
  try {
    let t0 = performance.now()
    proc.createSnapshot()
    const first = performance.now() - t0
    const times: number[] = []
    for (let i = 0; i < SNAPSHOTS; i++) {
      t0 = performance.now()
      proc.createSnapshot()
      times.push(performance.now() - t0)
    }
    const snap = proc.createSnapshot()
    t0 = performance.now()
    let count = 0
    for (const t of snap.threads) count += Object.entries(t.regs).length
    const enumerate = performance.now() - t0
    const threads = proc.threads
    t0 = performance.now()
    let eagerCount = 0
    for (const t of threads) eagerCount += Object.keys({ ...t.regs.toJSON(), ...readXState(t.tid) }).length
    const eager = performance.now() - t0
    if (count !== eagerCount) throw new Error(`enumerated ${count} registers, the eager record has ${eagerCount}`)
    return { snapshot: median(times), first, enumerate, eager, threads: snap.threads.length }
  } finally {
    await proc.kill()
  }
}

function cRun(workers: number, offset: string): { ms: number; threads: number } {
  const out = execFileSync(C_BASELINE, ['--runs', String(SNAPSHOTS), CROWD, offset, String(workers)], {
    encoding: 'utf8',
  })
  const result = JSON.parse(out.trim().split('\n').at(-1) ?? '{}') as { median_ms: number; threads: number }
  return { ms: result.median_ms, threads: result.threads }
}

export async function threadsCaptureRows(): Promise<Row[]> {
  const offset = allStartedOffset()
  const ours = new Map<number, OursRun[]>(WORKERS.map((n) => [n, []]))
  const base = new Map<number, number[]>(WORKERS.map((n) => [n, []]))
  for (let r = 0; r < RUNS; r++) {
    for (const n of WORKERS) {
      const run = await oursRun(n)
      const c = cRun(n, offset)
      if (c.threads !== run.threads) throw new Error(`C saw ${c.threads} threads, procsnap ${run.threads}`)
      ours.get(n)?.push(run)
      base.get(n)?.push(c.ms)
    }
  }
  const rows: Row[] = []
  const target = 'under 50 ms for 256 threads'
  for (const n of WORKERS) {
    const runs = ours.get(n) ?? []
    const c = base.get(n) ?? []
    rows.push({
      measure: `'base' snapshot of crowd, ${n + 1} threads (${n} blocked in hold()), warm (baseline: C GETREGS + GETREGSET xsave + 4 KiB stack read per thread)`,
      ours: runs.map((x) => x.snapshot),
      baseline: c,
      unit: 'ms',
      better: 'lower',
      target: n === 256 ? target : 'for the record',
    })
  }
  const big = ours.get(256) ?? []
  const threads = big[0]?.threads ?? 257
  rows.push({
    measure: `same, 257 threads, per thread`,
    ours: big.map((x) => (x.snapshot / threads) * 1000),
    baseline: (base.get(256) ?? []).map((ms) => (ms / threads) * 1000),
    unit: 'µs',
    better: 'lower',
    target: 'ptrace cost',
  })
  rows.push({
    measure: `same, 257 threads, the process's first snapshot (ELF files and CFI parsed) (baseline: C as above)`,
    ours: big.map((x) => x.first),
    baseline: base.get(256) ?? [],
    unit: 'ms',
    better: 'lower',
    target: 'for the record',
  })
  rows.push({
    measure: `every register of 257 threads read from a new snapshot (Object.entries) (baseline: the eager record capture built before: toJSON + readXState, spread)`,
    ours: big.map((x) => x.enumerate),
    baseline: big.map((x) => x.eager),
    unit: 'ms',
    better: 'lower',
    target: 'for the record',
  })
  return rows
}
