// Issue 11: every descendant of a tracee ends with it, whatever it does (fork, setsid, a double fork,
// ignored signals, vfork+exec, spinning). Counted from /proc, by the fixtures' names (stress/procs.ts);
// `npm run stress -- descendants` measures the same under the plugin and under killed Vitest processes.
import { setTimeout as sleep } from 'node:timers/promises'
import { afterEach, describe, expect, it } from 'vitest'
import { DESCENDANT_FIXTURES, FIXTURES, fixtureProcesses, killFixtureProcesses, living } from '../../stress/procs.js'
import { start } from '../helpers.js'

/** 'pid comm state' of the live processes of fixture `name`, polled until none or `ms` pass. */
async function aliveAfter(name: string, ms: number): Promise<string[]> {
  const until = performance.now() + ms
  for (;;) {
    const alive = living(fixtureProcesses([name])).map((p) => `${p.pid} ${p.comm} ${p.state}`)
    if (alive.length === 0 || performance.now() > until) return alive
    await sleep(20)
  }
}

afterEach(() => killFixtureProcesses())

const CONDITIONS = [
  { isolate: true, clock: 'virtual' },
  { isolate: false, clock: 'virtual' },
  { isolate: true, clock: 'real' },
  { isolate: false, clock: 'real' },
] as const

describe.each(CONDITIONS)('isolate $isolate, clock $clock', ({ isolate, clock }) => {
  it.each(DESCENDANT_FIXTURES)('kill() of %s leaves none of its descendants alive', async (name) => {
    const proc = await start(`${FIXTURES}${name}`, { isolate, clock, stdout: 'ignore', stderr: 'ignore' })
    await proc.runTo('ready', { timeout: 10_000 })
    // The tree is in place: the fixture and at least one descendant.
    expect(living(fixtureProcesses([name])).length).toBeGreaterThan(1)
    await proc.kill()
    expect(await aliveAfter(name, 1000)).toEqual([])
  })
})
