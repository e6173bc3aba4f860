// The serial schedule (launch's default): one thread runs at a time and the runner changes only at
// deterministic points, so which thread reaches a breakpoint first, and what every thread shows at
// that stop, is the same in every run. A thread that spins without a syscall gets a time slice.
import { describe, expect, it } from 'vitest'
import { goldenSections, renderGolden } from '../../src/golden/render.js'
import type { Process, StopEvent } from '../../src/index.js'
import { ProcsnapError } from '../../src/errors.js'
import { fixture, start } from '../helpers.js'

const RUNS = 10

/** The golden text of a stop: every thread's registers, the program's data, the maps. */
function golden(proc: Process): string {
  const snap = proc.createSnapshot({ level: 'writable' })
  return renderGolden({ key: 'schedule 1', test: 'schedule.test.ts' }, goldenSections(snap.data, snap.modules()))
}

async function expectBreakpoint(proc: Process): Promise<StopEvent & { kind: 'breakpoint' }> {
  const ev = await proc.cont()
  if (ev.kind !== 'breakpoint') throw new Error(`expected a breakpoint, got ${ev.kind}`)
  return ev
}

/** Runs to the end: the exit event. */
async function finish(proc: Process): Promise<StopEvent> {
  let ev = await proc.cont()
  while (ev.kind === 'breakpoint') ev = await proc.cont()
  return ev
}

describe("schedule: 'serial' (default)", () => {
  it(`stops the same worker first at thread_started, with the same golden, in ${RUNS} runs`, async () => {
    const seen = new Set<string>()
    const texts = new Set<string>()
    for (let i = 0; i < RUNS; i++) {
      const proc = await start(fixture('threads'), { args: ['3', '5'] })
      proc.breakAt('thread_started')
      const ev = await expectBreakpoint(proc)
      seen.add(`thread ${ev.thread.index}, worker ${ev.thread.regs.rdi}`)
      // Every thread created so far is there and stopped: the main thread and the three workers.
      expect(proc.threads.map((t) => t.index)).toEqual([1, 2, 3, 4])
      texts.add(golden(proc))
      expect(proc.timeSlices).toBe(0)
      await proc.kill()
    }
    // Main creates all three workers before it blocks in pthread_join; then the first one runs.
    expect([...seen]).toEqual(['thread 2, worker 0'])
    expect(texts.size).toBe(1)
    const [text] = texts
    expect(text).toContain('thread 4 registers:')
  })

  it('reports the hits of worker_tick in the same thread order in every run', async () => {
    const orders = new Set<string>()
    for (let i = 0; i < 3; i++) {
      const proc = await start(fixture('threads'), { args: ['3', '4'] })
      proc.breakAt('worker_tick')
      const order: string[] = []
      let ev = await proc.cont()
      while (ev.kind === 'breakpoint') {
        order.push(`${ev.thread.index}:${ev.thread.regs.rdi}`)
        ev = await proc.cont()
      }
      expect(ev).toMatchObject({ kind: 'exited', exitCode: 0 })
      expect(order).toHaveLength(12)
      orders.add(order.join(' '))
    }
    expect(orders.size).toBe(1)
    // A worker runs until it ends (no syscall in its loop), then the next one, in creation order.
    expect([...orders][0]).toBe('2:0 2:0 2:0 2:0 3:1 3:1 3:1 3:1 4:2 4:2 4:2 4:2')
  })

  it(`gives the same golden after the joins in ${RUNS} runs`, async () => {
    const texts = new Set<string>()
    for (let i = 0; i < RUNS; i++) {
      const proc = await start(fixture('threads'), { args: ['3', '50'] })
      // printf runs once, in main, after every pthread_join returned.
      proc.breakAt('libc.so.6!printf')
      const ev = await expectBreakpoint(proc)
      expect(ev.thread.index).toBe(1)
      expect(proc.threads.map((t) => t.index)).toEqual([1])
      texts.add(golden(proc))
      expect(await finish(proc)).toMatchObject({ kind: 'exited', exitCode: 0 })
      expect(proc.stdout).toBe('ticks 150\n')
    }
    expect(texts.size).toBe(1)
  })

  it('lets a worker that busy-waits on a flag be switched out after a time slice: the program ends', async () => {
    for (const mode of ['join', 'exit']) {
      const proc = await start(fixture('spin'), { args: [mode], timeout: 10_000 })
      proc.breakAt('spun')
      const ev = await expectBreakpoint(proc)
      // Main yielded right after creating the worker: the worker ran first and had to spin.
      expect(ev.thread.index).toBe(2)
      expect(ev.thread.regs.rdi).toBe(1n)
      expect(await proc.cont()).toMatchObject({ kind: 'exited', exitCode: 0 })
      expect(proc.stdout).toBe(mode === 'join' ? 'done\n' : '')
      expect(proc.timeSlices).toBeGreaterThan(0)
    }
  })

  it('stops a worker at a breakpoint after the main thread called pthread_exit (a zombie leader)', async () => {
    const proc = await start(fixture('spin'), { args: ['exit'] })
    proc.breakAt('spun')
    const ev = await expectBreakpoint(proc)
    expect(ev.thread.index).toBe(2)
    expect(ev.thread.regs.rip).toBe(proc.resolve('spun'))
    expect(await proc.step()).toMatchObject({ kind: 'step' })
    expect(await proc.cont()).toMatchObject({ kind: 'exited', exitCode: 0 })
  })

  it('runs python3 with threads to completion', async () => {
    const script = [
      'import threading',
      'out = []',
      'def work(i):',
      '    s = 0',
      '    for k in range(20000): s += k',
      '    out.append((i, s))',
      'ts = [threading.Thread(target=work, args=(i,)) for i in range(4)]',
      'for t in ts: t.start()',
      'for t in ts: t.join()',
      'print(sorted(out))',
    ].join('\n')
    const proc = await start('/usr/bin/python3', { args: ['-c', script], timeout: 30_000 })
    expect(await proc.cont()).toMatchObject({ kind: 'exited', exitCode: 0 })
    expect(proc.stdout).toBe(`[${[0, 1, 2, 3].map((i) => `(${i}, 199990000)`).join(', ')}]\n`)
  })

  it('answers getrandom() in a worker thread (fixedRandom: a seccomp stop between syscall stops)', async () => {
    const script = [
      'import os, threading',
      'r = []',
      't = threading.Thread(target=lambda: r.append(os.urandom(8).hex()))',
      't.start()',
      't.join()',
      'print(r[0], os.urandom(4).hex())',
    ].join('\n')
    const outputs = new Set<string>()
    for (let i = 0; i < 2; i++) {
      const proc = await start('/usr/bin/python3', { args: ['-c', script] })
      expect(await proc.cont()).toMatchObject({ kind: 'exited', exitCode: 0 })
      expect(proc.stdout).toMatch(/^[0-9a-f]{16} [0-9a-f]{8}\n$/)
      outputs.add(proc.stdout)
    }
    expect(outputs.size).toBe(1)
  })

  it('runs python3 threads that sleep, fork children, and exec while another thread waits', async () => {
    const scripts: [string, string, boolean][] = [
      [
        'import threading, time\ndef f(): time.sleep(0.02)\nts = [threading.Thread(target=f) for _ in range(3)]\n' +
          'for t in ts: t.start()\nfor t in ts: t.join()\nprint("slept")',
        'slept\n',
        true,
      ],
      [
        'import subprocess, threading\nr = []\n' +
          'def f(): r.append(subprocess.run(["/bin/echo", "child"], capture_output=True).stdout)\n' +
          'ts = [threading.Thread(target=f) for _ in range(3)]\nfor t in ts: t.start()\nfor t in ts: t.join()\nprint(len(r), r[0])',
        "3 b'child\\n'\n",
        true,
      ],
      // fixedRandom: false: an exec from a multi-threaded process fails under fixedRandom in both schedules (its AT_RANDOM write).
      [
        'import os, threading\nt = threading.Thread(target=threading.Event().wait, daemon=True)\nt.start()\n' +
          'os.execv("/bin/echo", ["echo", "execd"])',
        'execd\n',
        false,
      ],
    ]
    for (const [script, out, fixedRandom] of scripts) {
      const proc = await start('/usr/bin/python3', { args: ['-c', script], fixedRandom, timeout: 20_000 })
      expect(await proc.cont()).toMatchObject({ kind: 'exited', exitCode: 0 })
      expect(proc.stdout).toBe(out)
    }
  })

  it('times out a program whose threads all wait forever, stops it, and kills it', async () => {
    const script = [
      'import threading',
      'e = threading.Event()',
      't = threading.Thread(target=e.wait)',
      't.start()',
      't.join()',
    ].join('\n')
    const proc = await start('/usr/bin/python3', { args: ['-c', script] })
    const error = await proc.cont({ timeout: 500 }).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(ProcsnapError)
    expect((error as ProcsnapError).code).toBe('ERR_TIMEOUT')
    expect(proc.threads.length).toBe(2)
    for (const t of proc.threads) expect(typeof t.regs.rip).toBe('bigint')
    expect(await proc.kill()).toMatchObject({ signal: 'SIGKILL' })
  })
})

describe("schedule: 'free'", () => {
  it('lets every thread run at once: all hits are still reported', async () => {
    const proc = await start(fixture('threads'), { args: ['3', '50'], schedule: 'free' })
    const bp = proc.breakAt('worker_tick')
    expect(await finish(proc)).toMatchObject({ kind: 'exited', exitCode: 0 })
    expect(bp.hits).toBe(150)
    expect(proc.stdout).toBe('ticks 150\n')
  })

  it('stops a worker at a breakpoint after the main thread called pthread_exit', async () => {
    const proc = await start(fixture('spin'), { args: ['exit'], schedule: 'free' })
    proc.breakAt('spun')
    const ev = await expectBreakpoint(proc)
    expect(ev.thread.index).toBe(2)
    expect(await proc.cont()).toMatchObject({ kind: 'exited', exitCode: 0 })
  })
})
