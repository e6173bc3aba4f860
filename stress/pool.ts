// Issue 11, "Processes": the thread pool. Does a threads-pool Vitest run with a cont() in flight end,
// are its tracees reaped, and does waiting for tracees starve libuv's pool (fs reads, short tracees)?
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { launch, type Process } from '../src/index.js'
import { FIXTURES, ROOT, allProcesses, fixtureProcesses, living, type ProcInfo } from './procs.js'
import { exitWithin, killVitest, removeProject, startVitest, writeProject } from './project.js'
import { cleanFixtures } from './strays.js'

const HANG_RUNS = Number(process.env.STRESS_HANG_RUNS ?? 4)
const HANG_CAP_MS = Number(process.env.STRESS_HANG_CAP_MS ?? 60_000)
const ZOMBIE_TESTS = Number(process.env.STRESS_ZOMBIE_TESTS ?? 200)
const WAITERS = Number(process.env.STRESS_WAITERS ?? 16)
const READS = 20
const BROOD = JSON.stringify(`${FIXTURES}brood`)

/** A test that leaves cont() in flight on a 1000 s sleeper; `awaited`: the test awaits it instead (and times out). */
export function leftoverContTest(awaited: boolean): string {
  return [
    "import { test } from 'vitest'",
    "import { launch } from 'procsnap'",
    "test('leaves cont() in flight', async () => {",
    `  const proc = await launch(${BROOD}, { args: ['0', '1000'] })`,
    awaited ? '  await proc.cont()' : '  void proc.cont()',
    '})',
    '',
  ].join('\n')
}

/** Milliseconds until the run ends, or undefined when it had to be killed at the cap. */
async function timeRun(awaited: boolean): Promise<number | undefined> {
  const dir = writeProject(
    { pool: 'threads', plugin: false, testTimeout: awaited ? 1000 : 60_000 },
    leftoverContTest(awaited),
  )
  const child = startVitest(dir)
  try {
    return await exitWithin(child, HANG_CAP_MS)
  } finally {
    await killVitest(child, dir)
    await cleanFixtures()
    removeProject(dir)
  }
}

async function hang(): Promise<string> {
  const rows: string[] = []
  for (const awaited of [false, true]) {
    const times: string[] = []
    for (let i = 0; i < HANG_RUNS; i++) {
      const ms = await timeRun(awaited)
      times.push(ms === undefined ? `hung (killed at ${HANG_CAP_MS / 1000} s)` : `${(ms / 1000).toFixed(1)} s`)
    }
    const what = awaited ? 'the test awaits cont() and hits a 1 s test timeout' : '`void proc.cont()`, test ends'
    rows.push(`| ${what} | ${times.join(', ')} |`)
  }
  return [
    '### Threads pool, no plugin, a cont() left in flight on a 1000 s sleeper: does `vitest run` end?',
    '',
    '| test | time from start to exit, per run |',
    '| --- | --- |',
    ...rows,
  ].join('\n')
}

/** ZOMBIE_TESTS tests that launch and leave their tracee, then one that holds 2 s (writing `last`). */
function manyLeftTest(isolate: boolean): string {
  return [
    "import { writeFileSync } from 'node:fs'",
    "import { test } from 'vitest'",
    "import { launch } from 'procsnap'",
    `const options = { args: ['0', '1000'], stdout: 'ignore', isolate: ${isolate} } as const`,
    `for (let i = 0; i < ${ZOMBIE_TESTS}; i++)`,
    `  test('leaves ' + i, async () => { await launch(${BROOD}, options) })`,
    "test('last', async () => {",
    "  writeFileSync('last', '')",
    '  await new Promise((r) => setTimeout(r, 2000))',
    '})',
    '',
  ].join('\n')
}

/** Zombies of a run: children of its main process (the threads pool's workers are threads of it), brood zombies. */
function zombiesOf(mainPid: number): ProcInfo[] {
  return allProcesses().filter((p) => p.state === 'Z' && (p.ppid === mainPid || p.comm === 'brood'))
}

/** Samples the run every 100 ms until it ends: the most zombies seen, and zombies and live brood 1 s into the last test. */
async function zombieRun(plugin: boolean, isolate: boolean): Promise<string> {
  const dir = writeProject({ pool: 'threads', plugin }, manyLeftTest(isolate))
  const child = startVitest(dir)
  const main = child.pid ?? 0
  let max = 0
  let atLast = '-'
  try {
    const until = performance.now() + 180_000
    while (child.exitCode === null && child.signalCode === null && performance.now() < until) {
      max = Math.max(max, zombiesOf(main).length)
      if (atLast === '-' && existsSync(join(dir, 'last'))) {
        await sleep(1000) // the plugin's cleanup of the last leaving test has run
        atLast = `${zombiesOf(main).length} | ${living(fixtureProcesses(['brood'])).length}`
      }
      await sleep(100)
    }
    const ended = child.exitCode !== null || child.signalCode !== null
    await sleep(500)
    const liveAfter = living(fixtureProcesses(['brood'])).length
    const project = `${plugin ? 'plugin' : 'no plugin'}, isolate ${isolate}`
    return `| ${project} | ${max} | ${atLast} | ${ended ? liveAfter : 'did not end in 180 s'} |`
  } finally {
    await killVitest(child, dir)
    await cleanFixtures()
    removeProject(dir)
  }
}

async function zombies(): Promise<string> {
  const rows: string[] = []
  for (const isolate of [true, false]) for (const plugin of [false, true]) rows.push(await zombieRun(plugin, isolate))
  return [
    `### Threads pool: ${ZOMBIE_TESTS} tests each launching \`brood 0 1000\` and leaving it`,
    '',
    'Zombies of the run (children of its process in state Z, and brood zombies), sampled every 100 ms, and 1 s into a',
    'final test that holds 2 s (the tracees of the 200 are then killed by the plugin, or left to the exit without it);',
    "live brood processes 500 ms after vitest exited. (Zombies after the exit are the stress runner's, a subreaper.)",
    '',
    '| project | max zombies while running | zombies at last test | live brood at last test | live brood after exit |',
    '| --- | --- | --- | --- | --- |',
    ...rows,
  ].join('\n')
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)] ?? NaN
}

/** READS reads of a small file, one after another, each timed (ms). */
export async function readLatencies(reads = READS): Promise<number[]> {
  const file = join(ROOT, 'package.json')
  const out: number[] = []
  for (let i = 0; i < reads; i++) {
    const t0 = performance.now()
    await readFile(file)
    out.push(performance.now() - t0)
  }
  return out
}

/** `n` tracees sleeping `seconds`, launched and stopped at their entry. */
export async function sleepers(n: number, seconds: string): Promise<Process[]> {
  const procs: Process[] = []
  for (let i = 0; i < n; i++)
    procs.push(await launch(`${FIXTURES}brood`, { args: ['0', seconds], stdout: 'ignore', stderr: 'ignore' }))
  return procs
}

/** Read latencies while `n` tracees sleeping 3 s wait in cont(), after a 200 ms head start. */
export async function latencyWhileWaiting(n: number): Promise<number[]> {
  const procs = await sleepers(n, '3')
  try {
    const conts = procs.map((p) => p.cont())
    await sleep(200)
    const lat = await readLatencies()
    await Promise.all(conts)
    return lat
  } finally {
    for (const p of procs) await p.kill()
  }
}

/**
 * Four 3 s tracees wait in cont(); 300 ms later (their waits have left the quick polling for the pool)
 * a 0.2 s tracee's cont() begins. When each resolves, in ms from its own cont().
 */
export async function shortBehindLong(): Promise<{ short: number; long: number[] }> {
  const procs = [...(await sleepers(4, '3')), ...(await sleepers(1, '0.2'))]
  const timed = async (p: Process): Promise<number> => {
    const t0 = performance.now()
    await p.cont()
    return performance.now() - t0
  }
  try {
    const long = procs.slice(0, 4).map(timed)
    await sleep(300)
    const short = await timed(procs[4] as Process)
    return { short, long: await Promise.all(long) }
  } finally {
    for (const p of procs) await p.kill()
  }
}

function ms(x: number): string {
  return x.toFixed(1)
}

async function latency(): Promise<string> {
  const idle = await readLatencies()
  const busy = await latencyWhileWaiting(WAITERS)
  const { short, long } = await shortBehindLong()
  const pool = process.env.UV_THREADPOOL_SIZE ?? '4 (default)'
  return [
    `### Pool latency (UV_THREADPOOL_SIZE ${pool}), in the stress runner's own process`,
    '',
    `| measure | median ms | max ms | first ms |`,
    '| --- | --- | --- | --- |',
    `| fs.promises.readFile of package.json, ${READS} reads, no tracee waiting | ${ms(median(idle))} | ${ms(Math.max(...idle))} | ${ms(idle[0] ?? NaN)} |`,
    `| the same while ${WAITERS} tracees (3 s sleeps) wait in cont() | ${ms(median(busy))} | ${ms(Math.max(...busy))} | ${ms(busy[0] ?? NaN)} |`,
    '',
    `Four 3 s tracees wait in cont(), and 300 ms later a 0.2 s tracee's cont() begins: it resolved after ${ms(short)} ms; the 3 s ones after ${long.map(ms).join(', ')} ms (each from its own cont()).`,
  ].join('\n')
}

export async function run(): Promise<string> {
  return [await hang(), '', await zombies(), '', await latency()].join('\n')
}

export { hang, zombies, latency }
