// Snapshot fuzzing (issue 13): the loop "restore -> write an input into memory -> run to the end point"
// against relaunching the program and running it to the same point, in iterations per second.
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { launch } from '../src/index.js'
import { median } from './median.js'
import { RUNS, type Row } from './report.js'

const PARSE = fileURLToPath(new URL('../../fixtures/c/bin/parse', import.meta.url))
const FORKSERVER = fileURLToPath(new URL('../../bench/bin/forkserver', import.meta.url))
const DIRTY = fileURLToPath(new URL('../../fixtures/c/bin/dirty', import.meta.url))
const BIGHEAP = fileURLToPath(new URL('../../fixtures/c/bin/bigheap', import.meta.url))
const VM_READ = fileURLToPath(new URL('../../bench/bin/vm_read', import.meta.url))
/** The dirty fixture's map (MiB), of which it touches half before ready(). */
const BIG_MIB = Number(process.env.BENCH_MIB ?? 256)
/** Restores timed per run of the large process; the run's figure is their median. */
const BIG_RESTORES = 30
const ITERATIONS = Number(process.env.BENCH_RESTORE_ITERATIONS ?? 1000)
/** Untimed iterations first: a fuzzer runs for hours, so the loop is timed once the JIT has compiled it. */
const WARMUP = Math.ceil(ITERATIONS / 5)
/** Relaunches are ~20x slower than restores: a fifth as many give as steady a rate. */
const RELAUNCHES = Math.ceil(ITERATIONS / 5)

/** Iterations per second of restore + input + run from fuzz_start to fuzz_end. */
async function restoreLoop(pin = false): Promise<number> {
  const proc = await launch(PARSE, { stdout: 'ignore', pin })
  proc.breakAt('fuzz_start')
  await proc.cont()
  await proc.cont() // the second fuzz_start: one parse has warmed the allocator (its heap exists)
  proc.breakAt('fuzz_end')
  const s = proc.createSnapshot({ level: 'writable' })
  const input = new Uint8Array(8)
  let t0 = performance.now()
  for (let i = -WARMUP; i < ITERATIONS; i++) {
    if (i === 0) t0 = performance.now()
    await proc.restore(s)
    new DataView(input.buffer).setBigUint64(0, BigInt(i), true)
    proc.writeMemory('g_input', input)
    const ev = await proc.cont()
    if (ev.kind !== 'breakpoint' || !ev.location.includes('fuzz_end')) throw new Error(`restore loop: ${ev.kind}`)
  }
  const rate = ITERATIONS / ((performance.now() - t0) / 1000)
  await proc.kill()
  return rate
}

/** Iterations per second of launch + run to fuzz_start + input + run to fuzz_end + kill. */
async function relaunchLoop(): Promise<number> {
  const input = new Uint8Array(8)
  const t0 = performance.now()
  for (let i = 0; i < RELAUNCHES; i++) {
    const proc = await launch(PARSE, { stdout: 'ignore' })
    proc.breakAt('fuzz_start')
    await proc.cont()
    await proc.cont() // the same point: the second fuzz_start
    proc.breakAt('fuzz_end')
    new DataView(input.buffer).setBigUint64(0, BigInt(i), true)
    proc.writeMemory('g_input', input)
    const ev = await proc.cont()
    if (ev.kind !== 'breakpoint') throw new Error(`relaunch loop: ${ev.kind}`)
    await proc.kill()
  }
  return RELAUNCHES / ((performance.now() - t0) / 1000)
}

/** AFL's fork-server loop in C (bench/c/forkserver.c): fork at the point, run, exit, reap. */
function forkServerLoop(): number {
  const out = execFileSync(FORKSERVER, ['--iterations', String(ITERATIONS * 10), '--runs', '1'], { encoding: 'utf8' })
  return Number((JSON.parse(out.trim()) as { median_per_s?: number }).median_per_s)
}

/**
 * Median ms of a restore of the dirty fixture (BIG_MIB MiB mapped, half of it touched) to its
 * ready() stop, after each run of its first round (7 pages written); the snapshot taken with
 * write tracking (incremental, the default) or without.
 */
async function bigRestore(tracked: boolean): Promise<number> {
  const proc = await launch(DIRTY, { args: [String(BIG_MIB)], stdout: 'ignore' })
  try {
    proc.breakAt('ready')
    await proc.cont()
    const s = proc.createSnapshot({ level: 'writable', incremental: tracked })
    proc.breakAt('round_done')
    const times: number[] = []
    for (let i = 0; i < BIG_RESTORES + 1; i++) {
      const ev = await proc.cont()
      if (ev.kind !== 'breakpoint') throw new Error(`big restore: ${ev.kind}`)
      const t0 = performance.now()
      const report = await proc.restore(s)
      if (i > 0) times.push(performance.now() - t0) // the first: the tracker starts at the first resume
      if (tracked && i > 0 && report.pagesCompared > 1000)
        throw new Error(`tracked restore compared ${report.pagesCompared} pages`)
    }
    return median(times)
  } finally {
    await proc.kill()
  }
}

/** ms for C to read the touched half of the dirty fixture's map with process_vm_readv (bigheap of that size). */
function readTouchedInC(): number {
  const nm = execFileSync('nm', [BIGHEAP], { encoding: 'utf8' })
    .split('\n')
    .find((l) => l.endsWith(' ready'))
  const ready = nm?.split(' ')[0] ?? ''
  const out = execFileSync(VM_READ, ['--runs', '5', BIGHEAP, ready, String(BIG_MIB / 2)], { encoding: 'utf8' })
  const gbps = Number((JSON.parse(out.trim().split('\n').at(-1) ?? '{}') as { median_gbps?: number }).median_gbps)
  return (((BIG_MIB / 2) * 2 ** 20) / (gbps * 1e9)) * 1000
}

/** Restores of a large process: what the run wrote (tracked) against what it holds (untracked), against C reading it. */
export async function bigRestoreRows(): Promise<Row[]> {
  const tracked: number[] = []
  const untracked: number[] = []
  const base: number[] = []
  for (let r = 0; r < RUNS; r++) {
    base.push(readTouchedInC())
    tracked.push(await bigRestore(true))
    untracked.push(await bigRestore(false))
  }
  const what =
    `proc.restore of the dirty fixture (${BIG_MIB} MiB mapped, ${BIG_MIB / 2} MiB touched) after a round that ` +
    `wrote 7 pages, median of ${BIG_RESTORES}`
  const baseline = `baseline: C process_vm_readv of the ${BIG_MIB / 2} MiB touched (bigheap)`
  return [
    {
      measure: `${what}; writes tracked (the snapshot is incremental, the default); ${baseline}`,
      ours: tracked,
      baseline: base,
      unit: 'ms',
      better: 'lower',
      target: 'what the run dirtied, not the memory',
    },
    {
      measure: `${what}; untracked (incremental: false: the touched pages are compared); ${baseline}`,
      ours: untracked,
      baseline: base,
      unit: 'ms',
      better: 'lower',
      target: '(for comparison)',
    },
  ]
}

export async function restoreRows(): Promise<Row[]> {
  const ours: number[] = []
  const pinned: number[] = []
  const base: number[] = []
  const forks: number[] = []
  for (let r = 0; r < RUNS; r++) {
    base.push(await relaunchLoop())
    forks.push(forkServerLoop())
    ours.push(await restoreLoop())
    pinned.push(await restoreLoop(true))
  }
  const loop =
    `proc.restore (writable) + 8-byte input written + run to the end point, iterations/s over ${ITERATIONS} ` +
    `after ${WARMUP} untimed (parse fixture: malloc, checksum of the input, free; the point is the second ` +
    'fuzz_start, after one warm-up parse)'
  const forkServer =
    'fork server (C, bench/c/forkserver.c: the parse fixture forked after one warm-up parse, the child writes ' +
    `its input, runs to fuzz_end and exits; ${ITERATIONS * 10} iterations)`
  return [
    {
      measure: `snapshot fuzzing loop: ${loop}; baseline: relaunch and run to the same point (${RELAUNCHES} launches)`,
      ours,
      baseline: base,
      unit: 'it/s',
      better: 'higher',
      target: '>= 10x relaunch',
    },
    {
      measure: `the same loop against a ${forkServer}`,
      ours,
      baseline: forks,
      unit: 'it/s',
      better: 'higher',
      target: '>= the fork server',
    },
    {
      measure: `the same loop with launch's \`pin: true\` (tracer and tracee on one CPU) against the ${forkServer}`,
      ours: pinned,
      baseline: forks,
      unit: 'it/s',
      better: 'higher',
      target: '>= the fork server',
    },
  ]
}
