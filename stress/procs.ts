// The process side of the stress runs and of test/process/strays.test.ts: which processes of the
// descendant fixtures are alive, found by scanning /proc (not by asking procsnap), and killing them.
import { readdirSync, readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'

/** The repository: this file runs from stress/ (under Vitest) or, compiled, from build/stress/. */
export const ROOT = fileURLToPath(
  new URL(import.meta.url.includes('/build/stress/') ? '../../' : '../', import.meta.url),
)
export const FIXTURES = `${ROOT}fixtures/c/bin/`

/** The fixtures whose descendants we count (fixtures/c/descendants.h), each leaving children behind. */
export const DESCENDANT_FIXTURES = ['brood', 'sessions', 'doublefork', 'stubborn', 'vforksleep', 'spinner'] as const
export type DescendantFixture = (typeof DESCENDANT_FIXTURES)[number]

/** vforksleep's child: `/bin/sleep 4242`, told from other sleeps by its argument. */
const MARKED_SLEEP = 'sleep\u00004242\u0000'

export interface ProcInfo {
  readonly pid: number
  readonly ppid: number
  /** The state letter of /proc/PID/stat: R, S, D, T, t, Z... */
  readonly state: string
  readonly comm: string
}

/** /proc/PID/stat, or undefined when the process is gone. comm may hold spaces and parentheses. */
function readStat(pid: number): ProcInfo | undefined {
  let text: string
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'latin1')
  } catch {
    return undefined
  }
  const open = text.indexOf('(')
  const close = text.lastIndexOf(')')
  const rest = text.slice(close + 2).split(' ')
  return { pid, comm: text.slice(open + 1, close), state: rest[0] ?? '?', ppid: Number(rest[1]) }
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'latin1')
  } catch {
    return ''
  }
}

/** Every process of this machine (this PID namespace) that we can see. */
export function allProcesses(): ProcInfo[] {
  const out: ProcInfo[] = []
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    const info = readStat(Number(name))
    if (info) out.push(info)
  }
  return out
}

/**
 * Processes of the descendant fixtures: those named like one (`names`), the marked `sleep 4242`, and
 * any descendant of those (a zombie keeps its comm, so zombies count too).
 */
export function fixtureProcesses(names: readonly string[] = DESCENDANT_FIXTURES): ProcInfo[] {
  const all = allProcesses()
  const found = new Map<number, ProcInfo>()
  for (const p of all)
    if (
      names.includes(p.comm) ||
      (p.comm === 'sleep' && names.includes('vforksleep') && cmdline(p.pid) === MARKED_SLEEP)
    )
      found.set(p.pid, p)
  // Their descendants, whatever they became (an exec'd child).
  for (let grew = true; grew;) {
    grew = false
    for (const p of all)
      if (!found.has(p.pid) && found.has(p.ppid)) {
        found.set(p.pid, p)
        grew = true
      }
  }
  return [...found.values()].filter((p) => p.pid !== process.pid)
}

/** Processes that still run (or are stopped): everything but zombies, which are dead already. */
export function living(procs: readonly ProcInfo[]): ProcInfo[] {
  return procs.filter((p) => p.state !== 'Z' && p.state !== 'X')
}

/**
 * '3 (2 S, 1 t)': how many are alive, in which states; '+ 2 Z' adds zombies (dead, not yet reaped: after
 * a Vitest run they are orphans of the stress runner, a subreaper, so they say nothing about procsnap).
 */
export function describeProcs(procs: readonly ProcInfo[]): string {
  const live = living(procs)
  const zombies = procs.length - live.length
  const byState = new Map<string, number>()
  for (const p of live) byState.set(p.state, (byState.get(p.state) ?? 0) + 1)
  const states = [...byState].map(([s, n]) => `${n} ${s}`).join(', ')
  return `${live.length}${live.length > 0 ? ` (${states})` : ''}${zombies > 0 ? ` + ${zombies} Z` : ''}`
}

/** SIGKILL each process (a stopped one too); gone ones are skipped. */
export function killProcs(procs: readonly ProcInfo[]): void {
  for (const p of procs) {
    try {
      process.kill(p.pid, 'SIGKILL')
    } catch {
      // gone already
    }
  }
}

/** Kills every fixture process until none is alive (a fork in flight may add one), up to `ms`. */
export async function killFixtureProcesses(names: readonly string[] = DESCENDANT_FIXTURES, ms = 2000): Promise<void> {
  const until = performance.now() + ms
  for (;;) {
    const alive = living(fixtureProcesses(names))
    if (alive.length === 0 || performance.now() > until) return
    killProcs(alive)
    await sleep(20)
  }
}
