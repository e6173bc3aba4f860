// Virtual time under the serial schedule (clock: 'simulated'): while a process has two threads or
// more, a sleep is not executed and a timed wait waits without its timeout; when no thread can run,
// the clock jumps to the earliest deadline and that thread times out. The same result in every run,
// whatever the machine's speed, and no real waiting.
import { describe, expect, it } from 'vitest'
import { goldenSections, renderGolden } from '../../src/golden/render.js'
import type { LaunchOptions } from '../../src/index.js'
import { fixture, start } from '../helpers.js'

const RUNS = 5

async function run(args: string[], options: LaunchOptions = {}): Promise<{ out: string; ms: number }> {
  const t0 = performance.now()
  const proc = await start(fixture('timedwait'), {
    args,
    stdout: 'pipe',
    stderr: 'pipe',
    timeout: 20_000,
    clock: 'simulated',
    ...options,
  })
  const end = await proc.wait()
  expect(end.exitCode).toBe(0)
  return { out: proc.stdout, ms: performance.now() - t0 }
}

describe('virtual time: timed waits of threads expire when no thread can run', () => {
  it(`python3 with a thread that sleeps, stopped at exit: one golden and one printed time in ${RUNS} runs`, async () => {
    // Python's GIL: a thread that waits for it does 5 ms timed waits, which used to time out or not
    // depending on how fast the other thread ran.
    const program =
      'import threading,time; t=threading.Thread(target=lambda: time.sleep(0.1)); t.start(); t.join(); print(time.time())'
    const goldens = new Set<string>()
    const printed = new Set<string>()
    for (let i = 0; i < RUNS; i++) {
      const proc = await start('/usr/bin/python3', {
        args: ['-c', program],
        stdout: 'pipe',
        timeout: 20_000,
        clock: 'simulated',
      })
      proc.breakAt('libc.so.6!exit')
      const ev = await proc.cont()
      expect(ev.kind).toBe('breakpoint')
      const s = proc.createSnapshot({ level: 'writable' })
      goldens.add(
        renderGolden({ key: 'k', test: 't' }, goldenSections(s.data, s.modules(), { include: ['regs', 'memory'] })),
      )
      await proc.cont()
      await proc.wait()
      printed.add(proc.stdout)
    }
    expect(goldens.size).toBe(1)
    expect([...printed]).toHaveLength(1)
    expect([...printed][0]).toMatch(/^946684800\.\d+\n$/)
  })

  it(`a condition wait with 10 ms deadlines counts the same timeouts in ${RUNS} runs, without real waiting`, async () => {
    const outs = new Set<string>()
    for (let i = 0; i < RUNS; i++) {
      const r = await run(['cond'])
      outs.add(r.out)
      // the worker's 55 ms sleep and the waits are virtual
      expect(r.ms).toBeLessThan(2000)
    }
    expect([...outs]).toEqual(['timeouts 5\n'])
  })

  it('a thread that sleeps 50 ms wakes after one that sleeps 20 ms, in every run', async () => {
    for (let i = 0; i < RUNS; i++) expect((await run(['sleeps'])).out).toBe('woke 20\nwoke 50\n')
  })

  it('nothing hangs: a thread that waits forever behind a timed waiter; the program ends', async () => {
    expect((await run(['forever'])).out).toBe('timeouts 3\n')
  })

  it('poll, select, pselect, ppoll, epoll_wait, futex and the sleeps time out in a thread with what the kernel gives', async () => {
    // The results a real timeout gives (clock.test.ts, single-threaded), in a second thread on virtual time.
    const expected = [
      'poll: 0 after 101 ms',
      'select: 0 after 101 ms',
      'select left: set 0, 0.000000 s', // the fd set cleared and no time left, as on a real timeout
      'pselect: 0 after 101 ms',
      'ppoll: 0 after 101 ms',
      'epoll_wait: 0 after 101 ms',
      'futex: -110 after 101 ms', // ETIMEDOUT
      'nanosleep: 0 after 101 ms',
      'clock_nanosleep: 0 after 102 ms', // an absolute deadline read one step earlier
    ]
    const virtual = await run(['waits'])
    expect(virtual.out).toBe(
      [
        ...expected,
        // woken by another thread's write after its 30 ms sleep: the time left is virtual too
        'select woken: 1 after 31 ms',
        'select left: set 1, 0.070000 s',
        '',
      ].join('\n'),
    )
    expect(virtual.ms).toBeLessThan(600) // 800 ms of waits in real time
    // Not simulated: the same program on the real clock, or with every thread running at once.
    const free = await run(['waits'], { schedule: 'free' })
    expect(free.out.split('\n').slice(0, expected.length)).toEqual(expected)
    expect(free.ms).toBeGreaterThanOrEqual(790)
  })

  it('a wait broken off by a stop of every thread keeps its deadline: the same count as without the stop', async () => {
    const proc = await start(fixture('timedwait'), {
      args: ['cond'],
      stdout: 'pipe',
      timeout: 20_000,
      clock: 'simulated',
    })
    proc.breakAt('libc.so.6!usleep') // the worker, while the waiter is in its condition wait
    const ev = await proc.cont()
    expect(ev.kind).toBe('breakpoint')
    await proc.cont()
    await proc.wait()
    expect(proc.stdout).toBe('timeouts 5\n')
  })

  it('a thread busy-waiting for a flag that a sleeping thread sets: its time slice moves the clock, the program ends', async () => {
    const proc = await start(fixture('timedwait'), {
      args: ['spin'],
      stdout: 'pipe',
      timeout: 20_000,
      clock: 'simulated',
    })
    const end = await proc.wait()
    expect(end.exitCode).toBe(0)
    expect(proc.stdout).toBe('flag 1\n')
  })

  it("the default clock ('virtual') leaves sleeps and timed waits of threads on the real clock", async () => {
    const real = await run(['waits'], { clock: 'virtual' })
    expect(real.ms).toBeGreaterThan(700) // the fixture's 800 ms of waits, taken for real
  }, 30_000)
})
