// What the serial schedule costs: multi-threaded programs under schedule 'serial' (the default)
// against the same runs under 'free', interleaved. Each function returns one run of each.
import { launch, type LaunchOptions } from '../src/index.js'

type Schedule = NonNullable<LaunchOptions['schedule']>

/** Milliseconds from launch to exit of `file args`. */
async function toExit(file: string, args: string[], schedule: Schedule): Promise<number> {
  const t0 = performance.now()
  const proc = await launch(file, { args, schedule, stdout: 'ignore', timeout: 120_000 })
  const ev = await proc.cont()
  if (ev.kind !== 'exited' || ev.exitCode !== 0) throw new Error(`${file} ended with ${JSON.stringify(ev)}`)
  return performance.now() - t0
}

/** Breakpoint hits per second on worker_tick in `threads 4 hits/4`, first hit to exit. */
async function tickRate(fixtures: string, hits: number, schedule: Schedule): Promise<number> {
  const proc = await launch(`${fixtures}threads`, { args: ['4', String(hits / 4)], schedule, stdout: 'ignore' })
  const bp = proc.breakAt('worker_tick')
  await proc.cont()
  const t0 = performance.now()
  let ev = await proc.cont({ timeout: 120_000 })
  while (ev.kind === 'breakpoint') ev = await proc.cont({ timeout: 120_000 })
  const seconds = (performance.now() - t0) / 1000
  if (bp.hits !== hits) throw new Error(`expected ${hits} hits, got ${bp.hits}`)
  return (hits - 1) / seconds
}

/** Two python3 threads making `n` getppid() syscalls each: the per-syscall cost of serial. */
const PY_SYSCALLS = (n: number): string =>
  [
    'import os, threading',
    `def f():\n    for i in range(${n}): os.getppid()`,
    'ts = [threading.Thread(target=f) for _ in range(2)]',
    'for t in ts: t.start()',
    'for t in ts: t.join()',
  ].join('\n')

export interface ScheduleRuns {
  toExit: { serial: number; free: number }
  ticks: { serial: number; free: number }
  syscalls: { serial: number; free: number }
}

export async function scheduleRun(
  fixtures: string,
  ticks: number,
  hits: number,
  syscalls: number,
): Promise<ScheduleRuns> {
  const args = ['4', String(ticks)]
  const py = ['-c', PY_SYSCALLS(syscalls)]
  return {
    toExit: {
      serial: await toExit(`${fixtures}threads`, args, 'serial'),
      free: await toExit(`${fixtures}threads`, args, 'free'),
    },
    ticks: { serial: await tickRate(fixtures, hits, 'serial'), free: await tickRate(fixtures, hits, 'free') },
    syscalls: {
      serial: await toExit('/usr/bin/python3', py, 'serial'),
      free: await toExit('/usr/bin/python3', py, 'free'),
    },
  }
}
