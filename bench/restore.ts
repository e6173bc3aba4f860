// Snapshot fuzzing (issue 13): the loop "restore -> write an input into memory -> run to the end point"
// against relaunching the program and running it to the same point, in iterations per second.
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { launch } from '../src/index.js'
import { RUNS, type Row } from './report.js'

const PARSE = fileURLToPath(new URL('../../fixtures/c/bin/parse', import.meta.url))
const FORKSERVER = fileURLToPath(new URL('../../bench/bin/forkserver', import.meta.url))
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
