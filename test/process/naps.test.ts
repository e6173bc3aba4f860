// The kernel naps of a launch's startup on this thread's CPU (waiter.ts): the SIGCHLD listener that lets
// a stop end a nap lives from a launch to its entry point (and a moment after, for the next launch),
// whichever way it ends.
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { launch } from '../../src/index.js'
import { fixture } from '../helpers.js'

const listeners = (): number => process.listenerCount('SIGCHLD')
/** Longer than the listener lingers after the last launch (LINGER_MS). */
const afterLinger = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 400))

describe('startup naps', () => {
  it('leave no SIGCHLD listener behind after launches to main, isolated or not, with fixedRandom or the clock', async () => {
    await afterLinger()
    const before = listeners()
    const variants = [
      {},
      { isolate: false },
      { clock: 'real' as const },
      { fixedRandom: false },
      { clock: 'real' as const, fixedRandom: false }, // no rdtsc traps: no pin, no naps
      { pin: true },
    ]
    for (const options of variants) {
      const proc = await launch(fixture('manylibs-16/main'), { stdout: 'ignore', ...options })
      expect(listeners()).toBeLessThanOrEqual(before + 1)
      proc.breakAt('main')
      expect((await proc.cont()).kind).toBe('breakpoint')
      expect(await proc.wait()).toEqual({ exitCode: 0 })
    }
    await afterLinger()
    expect(listeners()).toBe(before)
  })

  it('leave none behind after a launch whose loader fails before the entry point (its libraries missing)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'procsnap-naps-'))
    try {
      // $ORIGIN holds no library here: ld.so ends with 127 while the launch waits for the entry point.
      copyFileSync(fixture('manylibs-16/main'), join(dir, 'main'))
      await afterLinger()
      const before = listeners()
      const err: unknown = await launch(join(dir, 'main')).catch((e: unknown) => e)
      expect(err).toMatchObject({ code: 'ERR_PROCESS_EXITED' })
      await afterLinger()
      expect(listeners()).toBe(before)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
