// attach(): the cost of attaching to a running process (every thread stopped) and detaching it,
// against gdb doing the same (`gdb -batch -p PID`: attach, read the symbols, detach), and how soon
// interrupt() stops a busy process against the timeout path that stops it the same way.
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { attach } from '../src/index.js'
import { RUNS, type Row } from './report.js'

const LOOPER = fileURLToPath(new URL('../../fixtures/c/bin/looper', import.meta.url))
/** Attach/detach round trips per run (each: attach, read the pc, detach). */
const ROUNDS = Number(process.env.BENCH_ATTACH_ROUNDS ?? 20)
const INTERRUPTS = Number(process.env.BENCH_INTERRUPTS ?? 20)

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** Starts the looper outside procsnap (a subshell's child, not ours) and returns its pid once it is ready. */
async function startLooper(dir: string, mode: string, threads = 0): Promise<number> {
  const args = [LOOPER, mode, dir, ...(threads > 0 ? [String(threads)] : [])].join(' ')
  spawnSync('sh', ['-c', `( ${args} </dev/null >/dev/null 2>&1 ) </dev/null >/dev/null 2>&1 &`])
  while (!existsSync(join(dir, 'pid'))) await pause(5)
  return Number(readFileSync(join(dir, 'pid'), 'utf8'))
}

/** One run's figures: ms per attach+detach, procsnap's over ROUNDS and gdb's over a quarter as many. */
async function attachRun(pid: number): Promise<{ ours: number; gdb: number }> {
  const t0 = performance.now()
  for (let i = 0; i < ROUNDS; i++) {
    const proc = await attach(pid)
    void proc.regs.rip
    await proc.detach()
  }
  const ours = (performance.now() - t0) / ROUNDS
  const rounds = Math.max(3, Math.floor(ROUNDS / 4)) // gdb is slow: fewer rounds
  const t1 = performance.now()
  for (let i = 0; i < rounds; i++) {
    execFileSync('gdb', ['-nx', '-batch', '-p', String(pid), '-ex', 'info registers rip'], { stdio: 'ignore' })
  }
  return { ours, gdb: (performance.now() - t1) / rounds }
}

/** ms from interrupt() to the interrupted event, and from a cont's deadline to its TimeoutError. */
async function interruptRun(pid: number): Promise<{ interrupt: number; timeout: number }> {
  const proc = await attach(pid)
  try {
    let interrupt = 0
    let timeout = 0
    for (let i = 0; i < INTERRUPTS; i++) {
      const pending = proc.cont()
      await pause(5)
      const t = performance.now()
      proc.interrupt()
      await pending
      interrupt += performance.now() - t
      const start = performance.now()
      await proc.cont({ timeout: 5 }).catch(() => undefined)
      timeout += performance.now() - start - 5
    }
    return { interrupt: interrupt / INTERRUPTS, timeout: timeout / INTERRUPTS }
  } finally {
    await proc.detach()
  }
}

export async function attachRows(): Promise<Row[]> {
  const dir = mkdtempSync(join(tmpdir(), 'procsnap-bench-attach-'))
  const pids: number[] = []
  try {
    const busy = await startLooper(mkdtempSync(join(dir, 'busy-')), 'busy')
    pids.push(busy)
    const threaded = await startLooper(mkdtempSync(join(dir, 'threads-')), 'threads', 8)
    pids.push(threaded)
    const one = { ours: [] as number[], gdb: [] as number[] }
    const nine = { ours: [] as number[], gdb: [] as number[] }
    const stops = { interrupt: [] as number[], timeout: [] as number[] }
    for (let r = 0; r < RUNS; r++) {
      const a = await attachRun(busy)
      one.ours.push(a.ours)
      one.gdb.push(a.gdb)
      const b = await attachRun(threaded)
      nine.ours.push(b.ours)
      nine.gdb.push(b.gdb)
      const c = await interruptRun(threaded)
      stops.interrupt.push(c.interrupt)
      stops.timeout.push(c.timeout)
    }
    const row = (measure: string, ours: number[], baseline: number[]): Row => ({
      measure,
      ours,
      baseline,
      unit: 'ms',
      better: 'lower',
      target: 'for the record',
    })
    return [
      row(
        'attach + read pc + detach, busy 1-thread looper (baseline: gdb -batch -p, info registers rip)',
        one.ours,
        one.gdb,
      ),
      row(
        'attach + read pc + detach, looper with 8 busy threads and a sleeping main (baseline: gdb -batch -p)',
        nine.ours,
        nine.gdb,
      ),
      row(
        "interrupt() of a pending cont to its 'interrupted' event, 9 threads (baseline: cont's deadline to its TimeoutError)",
        stops.interrupt,
        stops.timeout,
      ),
    ]
  } finally {
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL')
      } catch {
        // gone already
      }
    }
    rmSync(dir, { recursive: true, force: true })
  }
}
