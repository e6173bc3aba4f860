// Issue 11: waiting for tracees must not take libuv's thread pool from the rest of Node and Vitest,
// and a threads-pool run with a cont() left in flight must end. Bounded versions of
// `npm run stress -- latency hang` (stress/pool.ts), which prints the figures.
import { describe, expect, it } from 'vitest'
import { latencyWhileWaiting, leftoverContTest, shortBehindLong } from '../../stress/pool.js'
import { exitWithin, killVitest, removeProject, startVitest, writeProject } from '../../stress/project.js'
import { killFixtureProcesses } from '../../stress/procs.js'

describe("libuv's thread pool while tracees wait", () => {
  it('a small fs.promises.readFile takes under 250 ms while 16 tracees wait in cont()', async () => {
    const latencies = await latencyWhileWaiting(16)
    expect(Math.max(...latencies)).toBeLessThan(250)
  })

  it('a 0.2 s tracee resolves in under 1 s while four 3 s tracees wait', async () => {
    const { short } = await shortBehindLong()
    expect(short).toBeLessThan(1000)
  })
})

describe('the threads pool without the plugin', () => {
  it('a run whose test leaves cont() in flight on a long sleeper ends', async () => {
    const dir = writeProject({ pool: 'threads', plugin: false }, leftoverContTest(false))
    const vitest = startVitest(dir)
    try {
      expect(await exitWithin(vitest, 12_000)).toBeDefined()
    } finally {
      await killVitest(vitest, dir)
      await killFixtureProcesses(['brood'])
      removeProject(dir)
    }
  }, 19_000)
})
