// Issue 11, "Processes": what outlives a kill. The launcher race (a launching Node process SIGKILLed at
// random moments) and the descendant fixtures under kill(), `await using`, the plugin's cleanup in both
// pools, and SIGKILL of a Vitest worker or of Vitest's main process. Every count should be 0.
import { spawn } from 'node:child_process'
import { existsSync, readlinkSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { launch, type LaunchOptions } from '../src/index.js'
import {
  DESCENDANT_FIXTURES,
  FIXTURES,
  allProcesses,
  describeProcs,
  fixtureProcesses,
  killProcs,
  living,
  type ProcInfo,
} from './procs.js'
import { exitWithin, killVitest, processesIn, removeProject, startVitest, writeProject } from './project.js'
import { reap } from './reaper.js'

const TRIES = Number(process.env.STRESS_RACE_TRIES ?? 40)
/** How long after a kill before counting: what is still alive then stayed. */
const SETTLE_MS = Number(process.env.STRESS_SETTLE_MS ?? 300)
const LOOP = fileURLToPath(new URL('./launch-loop.js', import.meta.url))

/**
 * Kills every fixture process and reaps what was orphaned to us, until none is left (or 3 s pass).
 * Called only when no child of ours that libuv waits for is left (reaping one would hide its exit).
 */
export async function cleanFixtures(): Promise<void> {
  for (let i = 0; i < 150; i++) {
    const procs = fixtureProcesses().filter((p) => p.state !== 'Z' || p.ppid === process.pid)
    killProcs(living(procs))
    // Zombies orphaned to this subreaper: fixtures, launchers, isolate inits.
    for (const p of allProcesses()) if (p.ppid === process.pid && p.state === 'Z') reap(p.pid)
    if (procs.length === 0) return
    await sleep(20)
  }
}

/** procsnap's launcher (or the isolate init cloned from it) that its tracer no longer parents. */
function orphanLaunchers(): ProcInfo[] {
  return allProcesses().filter((p) => {
    try {
      return p.ppid === process.pid && readlinkSync(`/proc/${p.pid}/exe`).includes('procsnap-launcher')
    } catch {
      return false
    }
  })
}

/** One try: start the loop, let it launch, SIGKILL it 0-200 ms in; returns the strays it left. */
async function raceOnce(isolate: boolean): Promise<ProcInfo[]> {
  const child = spawn(process.execPath, [LOOP, isolate ? 'isolate' : 'plain'], { stdio: ['ignore', 'pipe', 'ignore'] })
  await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()))
  await sleep(Math.random() * 200)
  child.kill('SIGKILL')
  await exitWithin(child, 5000)
  await sleep(SETTLE_MS)
  const strays = [...living(fixtureProcesses(['brood'])), ...orphanLaunchers()]
  killProcs(strays)
  await cleanFixtures()
  for (const p of orphanLaunchers()) reap(p.pid)
  return strays
}

async function launcherRace(): Promise<string> {
  const rows: string[] = []
  for (const isolate of [true, false]) {
    const perTry: number[] = []
    for (let i = 0; i < TRIES; i++) perTry.push((await raceOnce(isolate)).length)
    const hit = perTry.filter((n) => n > 0).length
    rows.push(`| ${isolate} | ${TRIES} | ${hit} | ${perTry.reduce((a, b) => a + b, 0)} | ${perTry.join(' ')} |`)
  }
  return [
    `### Launcher race: a Node process looping launch()+kill() of brood, SIGKILLed 0-200 ms after its first launch`,
    '',
    `Strays ${SETTLE_MS} ms after each SIGKILL: live brood processes, and launchers or isolate inits orphaned (should be 0).`,
    '',
    '| isolate | tries | tries with strays | strays in all | strays per try |',
    '| --- | --- | --- | --- | --- |',
    ...rows,
  ].join('\n')
}

interface Condition {
  readonly isolate: boolean
  readonly clock: 'real' | 'virtual'
}

const CONDITIONS: Condition[] = [
  { isolate: true, clock: 'virtual' },
  { isolate: true, clock: 'real' },
  { isolate: false, clock: 'virtual' },
  { isolate: false, clock: 'real' },
]

function options(c: Condition): LaunchOptions {
  return { isolate: c.isolate, clock: c.clock, stdout: 'ignore', stderr: 'ignore' }
}

/** What of `name` is left SETTLE_MS after `end` ran; cleans up after counting. */
async function leftAfter(name: string, end: () => Promise<void>): Promise<string> {
  await end()
  await sleep(SETTLE_MS)
  const left = fixtureProcesses([name])
  await cleanFixtures()
  return describeProcs(left)
}

/** (a) `await proc.kill()` at ready, every descendant in place. */
function byKill(name: string, c: Condition): Promise<string> {
  return leftAfter(name, async () => {
    const proc = await launch(`${FIXTURES}${name}`, options(c))
    await proc.runTo('ready', { timeout: 10_000 })
    await proc.kill()
  })
}

/** (b) the same, ended by `await using` leaving its block. */
function byUsing(name: string, c: Condition): Promise<string> {
  return leftAfter(name, async () => {
    await using proc = await launch(`${FIXTURES}${name}`, options(c))
    await proc.runTo('ready', { timeout: 10_000 })
  })
}

/** Test file source: one test per fixture that reaches ready; `hold` then waits (for a SIGKILL). */
function descendantsTest(c: Condition, hold: boolean): string {
  const tests = DESCENDANT_FIXTURES.map(
    (name) => `test${hold ? '.concurrent' : ''}(${JSON.stringify(name)}, async () => {
  const proc = await launch(${JSON.stringify(FIXTURES + name)}, ${JSON.stringify(options(c))})
  await proc.runTo('ready', { timeout: 20_000 })${hold ? `\n  writeFileSync(${JSON.stringify(name)} + '.ready', '')\n  await new Promise((r) => setTimeout(r, 120_000))` : ''}
})`,
  )
  return [
    "import { writeFileSync } from 'node:fs'",
    "import { test } from 'vitest'",
    "import { launch } from 'procsnap'",
    '',
    ...tests,
    '',
  ].join('\n')
}

type VitestCase = 'c' | 'd' | 'e'

/** Children of Vitest's main process that are fork workers (node), not esbuild or a tracee. */
function forkWorkers(mainPid: number, dir: string): ProcInfo[] {
  return processesIn(dir).filter((p) => p.ppid === mainPid)
}

/** Runs one project; (c) to its end, (d) and (e) until every fixture is ready, then a SIGKILL. */
async function vitestRun(c: Condition, pool: 'forks' | 'threads', kase: VitestCase): Promise<Record<string, string>> {
  const dir = writeProject({ pool, plugin: true, testTimeout: 180_000 }, descendantsTest(c, kase !== 'c'))
  const child = startVitest(dir)
  let note = ''
  try {
    if (kase === 'c') {
      if ((await exitWithin(child, 90_000)) === undefined) note = 'vitest did not end in 90 s'
    } else {
      const until = performance.now() + 60_000
      while (!DESCENDANT_FIXTURES.every((n) => existsSync(join(dir, `${n}.ready`))) && performance.now() < until)
        await sleep(50)
      if (performance.now() >= until) note = 'not all ready in 60 s'
      const victims = kase === 'e' ? [child.pid ?? 0] : forkWorkers(child.pid ?? 0, dir).map((p) => p.pid)
      for (const pid of victims) process.kill(pid, 'SIGKILL')
      // What the killed process's survivors do within a moment (Vitest's main process may end the run).
      await exitWithin(child, 3000)
    }
    await sleep(SETTLE_MS)
    const counts: Record<string, string> = {}
    for (const name of DESCENDANT_FIXTURES) counts[name] = describeProcs(fixtureProcesses([name]))
    // Vitest's own processes still there: a fork worker that outlives its killed main process holds its tracees.
    const fixtures = new Set(fixtureProcesses().map((p) => p.pid))
    counts.vitest = String(living(processesIn(dir)).filter((p) => !fixtures.has(p.pid)).length)
    if (note) counts.note = note
    return counts
  } finally {
    await killVitest(child, dir)
    await cleanFixtures()
    removeProject(dir)
  }
}

const CASES: { label: string; pool: 'forks' | 'threads'; kase: VitestCase }[] = [
  { label: 'c: plugin, forks', pool: 'forks', kase: 'c' },
  { label: 'c: plugin, threads', pool: 'threads', kase: 'c' },
  { label: 'd: SIGKILL worker, forks', pool: 'forks', kase: 'd' },
  { label: 'e: SIGKILL main, forks', pool: 'forks', kase: 'e' },
  { label: 'e: SIGKILL main, threads', pool: 'threads', kase: 'e' },
]

function conditionLabel(c: Condition): string {
  return `isolate ${c.isolate}, clock ${c.clock}`
}

async function descendants(): Promise<string> {
  const header = [
    '| case | condition | ' + DESCENDANT_FIXTURES.join(' | ') + ' | vitest processes left |',
    '| --- | --- |' + ' --- |'.repeat(7),
  ]
  const rows: string[] = []
  const notes: string[] = []
  for (const c of CONDITIONS) {
    await cleanFixtures()
    const kills: string[] = []
    const usings: string[] = []
    for (const name of DESCENDANT_FIXTURES) {
      kills.push(await byKill(name, c))
      usings.push(await byUsing(name, c))
    }
    rows.push(`| a: kill() | ${conditionLabel(c)} | ${kills.join(' | ')} | - |`)
    rows.push(`| b: await using | ${conditionLabel(c)} | ${usings.join(' | ')} | - |`)
    for (const { label, pool, kase } of CASES) {
      const counts = await vitestRun(c, pool, kase)
      const cells = [...DESCENDANT_FIXTURES, 'vitest'].map((n) => counts[n])
      rows.push(`| ${label} | ${conditionLabel(c)} | ${cells.join(' | ')} |`)
      if (counts.note) notes.push(`${label}, ${conditionLabel(c)}: ${counts.note}`)
    }
  }
  return [
    '### Descendants: what of each fixture is left, by kind of end',
    '',
    `Live processes of the fixture (itself, its children, grandchildren, vforksleep's \`sleep 4242\`) ${SETTLE_MS} ms after`,
    'the end, with their states (S sleeping, R running, T/t stopped); "+ n Z": zombies besides, dead and unreaped (orphans',
    'of the stress runner, a subreaper: not strays). Should be 0 everywhere. brood forks 20 sleepers, sessions 3 that call',
    'setsid(), doublefork orphans a grandchild, stubborn 3 that ignore SIGTERM/INT/HUP, vforksleep execs /bin/sleep in a',
    'vfork child, spinner 2 that spin. (c) tests leave the process to the plugin; (d) and (e) hold the six at ready in',
    '`test.concurrent` tests and SIGKILL the fork worker or the main process (the threads pool has no worker process: (d)',
    'is (e) there). "vitest processes left": its main process or workers still alive then (killed after counting).',
    '',
    ...header,
    ...rows,
    ...(notes.length > 0 ? ['', ...notes.map((n) => `- ${n}`)] : []),
  ].join('\n')
}

export async function run(): Promise<string> {
  return [await launcherRace(), '', await descendants()].join('\n')
}

/** The two halves apart, for `npm run stress -- race` or `-- descendants`. */
export { launcherRace, descendants }
