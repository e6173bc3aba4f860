// A crash report of a large process: the crashes fixture fills 256 MiB of heap and writes to NULL;
// at its SIGSEGV stop, what launch's { crash: 'snapshot' } does (a 'writable' capture and
// crashReport), against the kernel writing the same crash's core file.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { crashReport, launch, ProcessSnapshot } from '../src/index.js'
import { timed } from './core.js'
import { RUNS, type Row } from './report.js'

const CRASHES = fileURLToPath(new URL('../../fixtures/c/bin/crashes', import.meta.url))

/**
 * ms the kernel takes to write the same crash's core file: the fixture run to its SIGSEGV with
 * `ulimit -c unlimited` in `dir`, less the same run with no core (core_pattern must be a file name).
 */
function kernelCoreMs(dir: string): number {
  const run = (limit: string): number =>
    timed(() => {
      try {
        execFileSync('sh', ['-c', `ulimit -c ${limit}; exec "$0" big`, CRASHES], { cwd: dir, stdio: 'ignore' })
      } catch {
        // it dies of SIGSEGV, as it should
      }
    })
  const without = run('0')
  const withCore = run('unlimited')
  for (const f of readdirSync(dir)) if (f.startsWith('core')) rmSync(join(dir, f), { force: true })
  return Math.max(withCore - without, 0)
}

async function round(dir: string): Promise<{ capture: number; report: number; gcore: number }> {
  const proc = await launch(CRASHES, {
    args: ['big'],
    stdout: 'ignore',
    isolate: false,
    clock: 'real',
    fixedRandom: false,
  })
  const pid = proc.pid
  try {
    const ev = await proc.cont({ timeout: 300_000 })
    if (ev.kind !== 'signal') throw new Error(`crash bench: ${ev.kind}`)
    let snapshot: ProcessSnapshot | undefined
    const capture = timed(() => {
      const s = proc.createSnapshot({ level: 'writable', incremental: false })
      if (s instanceof ProcessSnapshot) snapshot = s
    })
    if (!snapshot) throw new Error('crash bench: no process snapshot')
    const taken = snapshot
    let cause = ''
    const report = timed(() => (cause = crashReport(taken).cause))
    if (!cause.startsWith('SIGSEGV: write to 0x0')) throw new Error(`crash bench: ${cause}`)
    return { capture, report, gcore: kernelCoreMs(dir) }
  } finally {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      // gone already
    }
    await proc.kill().catch(() => undefined)
  }
}

export async function crashRows(): Promise<Row[]> {
  if (readFileSync('/proc/sys/kernel/core_pattern', 'utf8').startsWith('|')) return [] // a pipe: no core file to time
  const dir = mkdtempSync(join(tmpdir(), 'procsnap-bench-crash-'))
  const ours: number[] = []
  const reports: number[] = []
  const base: number[] = []
  try {
    for (let r = 0; r < RUNS; r++) {
      const run = await round(dir)
      ours.push(run.capture + run.report)
      reports.push(run.report)
      base.push(run.gcore)
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  return [
    {
      measure:
        "crash report of a 256 MiB process at its SIGSEGV (crashes big): 'writable' capture + crashReport, as " +
        "launch's { crash: 'snapshot' } does; baseline: the kernel writing the same crash's core file (ulimit -c " +
        'unlimited, core_pattern a file; the run with no core subtracted)',
      ours,
      baseline: base,
      unit: 'ms',
      better: 'lower',
      target: 'for the record',
    },
    {
      measure: 'of which crashReport alone (cause, signature, frames, memory, modules from the snapshot)',
      ours: reports,
      baseline: base,
      unit: 'ms',
      better: 'lower',
      target: 'for the record',
    },
  ]
}
