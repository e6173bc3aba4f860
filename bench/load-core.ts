// Core import (group `coreimport`): loadCore of a 256 MiB core (saveCore of a 'full' snapshot of
// bigheap stopped at ready()) against gdb loading the same core (`gdb -batch -ex 'info registers'
// bigheap CORE`, wall time, gdb's start included as a user runs it). Also the peak RSS loadCore adds.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { launch, loadCore } from '../src/index.js'
import { median } from './median.js'
import { statusMiB, timed } from './core.js'
import { fmt, RUNS, type Row } from './report.js'

const BIGHEAP = fileURLToPath(new URL('../../fixtures/c/bin/bigheap', import.meta.url))
const MIB = Number(process.env.BENCH_CORE_MIB ?? 256)

/** bigheap stopped at ready(), its 'full' snapshot written as a core; the process killed. */
async function writeCore(path: string): Promise<bigint> {
  const proc = await launch(BIGHEAP, { args: [String(MIB)], isolate: false, clock: 'real', fixedRandom: false })
  try {
    proc.breakAt('ready')
    await proc.cont({ timeout: 300_000 })
    const snap = proc.createSnapshot({ level: 'full' })
    snap.saveCore(path)
    return snap.regs.rip ?? 0n
  } finally {
    await proc.kill()
  }
}

export async function loadCoreRows(): Promise<Row[]> {
  const dir = mkdtempSync(join(tmpdir(), 'procsnap-bench-loadcore-'))
  try {
    const core = join(dir, 'bigheap.core')
    const rip = await writeCore(core)
    const ours: number[] = []
    const gdb: number[] = []
    const peaks: number[] = []
    for (let r = 0; r < RUNS; r++) {
      writeFileSync('/proc/self/clear_refs', '5') // resets VmHWM to the current RSS
      const before = statusMiB('VmRSS')
      let pc: bigint | undefined
      ours.push(timed(() => (pc = loadCore(core).regs.rip)))
      peaks.push(statusMiB('VmHWM') - before)
      if (pc !== rip) throw new Error(`loadCore gave rip ${pc?.toString(16)}, the snapshot ${rip.toString(16)}`)
      let out = ''
      gdb.push(
        timed(() => {
          out = execFileSync('gdb', ['-nx', '-batch', '-ex', 'info registers rip', BIGHEAP, core], {
            encoding: 'utf8',
            stdio: ['ignore', 'pipe', 'ignore'],
          })
        }),
      )
      if (!out.includes(`0x${rip.toString(16)}`)) throw new Error(`gdb shows another rip: ${out}`)
      global.gc?.()
    }
    const size = statSync(core).size / 2 ** 20
    return [
      {
        measure:
          `loadCore of a ${fmt(size)} MiB core (saveCore of a 'full' bigheap ${MIB} MiB snapshot), registers read ` +
          `(baseline: gdb -batch -ex 'info registers' bigheap CORE); loadCore's peak RSS +${fmt(median(peaks))} MiB`,
        ours,
        baseline: gdb,
        unit: 'ms',
        better: 'lower',
        target: 'for the record',
      },
    ]
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
