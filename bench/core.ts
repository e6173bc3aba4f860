// Core files (group `coreexport`): snapshot.saveCore of a 'full' snapshot of bigheap (256 MiB filled)
// against gdb's `gcore` of the same process stopped at the same point, then gdb loading each core
// (`gdb -batch -ex bt exe core`, wall time, gdb's start included as a user runs it).
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { launch } from '../src/index.js'
import { median } from './median.js'
import { fmt, RUNS, type Row } from './report.js'

const BIGHEAP = fileURLToPath(new URL('../../fixtures/c/bin/bigheap', import.meta.url))
const MIB = Number(process.env.BENCH_CORE_MIB ?? 256)

interface Run {
  saveCore: number
  gcore: number
  loadOurs: number
  loadGcore: number
  oursBytes: number
  oursAllocated: number
  gcoreBytes: number
  /** How far saveCore raised the peak RSS above the RSS before it, MiB. */
  peakMiB: number
}

/** MiB of /proc/self/status's field `name`. */
export function statusMiB(name: string): number {
  return Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(readFileSync('/proc/self/status', 'utf8'))?.[1]) / 1024
}

/** ms that `run` took. */
export function timed(run: () => void): number {
  const t0 = performance.now()
  run()
  return performance.now() - t0
}

/** gdb loads the core and prints the backtrace: the frames it shows must be the same for both cores. */
function gdbBt(core: string): { ms: number; frames: string } {
  let out = ''
  const ms = timed(() => {
    out = execFileSync('gdb', ['-nx', '-batch', '-ex', 'bt', BIGHEAP, core], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    })
  })
  return { ms, frames: [...out.matchAll(/^#\d+\s+(?:0x[0-9a-f]+ in )?(\S+) \(/gm)].map((m) => m[1]).join(' ') }
}

/** One round: bigheap stopped at ready(); our core of a 'full' snapshot; then, detached and stopped, gcore's. */
async function round(dir: string, i: number): Promise<Run> {
  const proc = await launch(BIGHEAP, { args: [String(MIB)], isolate: false, clock: 'real', fixedRandom: false })
  const pid = proc.pid
  try {
    proc.breakAt('ready')
    await proc.cont({ timeout: 300_000 })
    const snap = proc.createSnapshot({ level: 'full' })
    const ours = join(dir, `ours-${i}.core`)
    writeFileSync('/proc/self/clear_refs', '5') // resets VmHWM to the current RSS
    const before = statusMiB('VmRSS')
    const saveCore = timed(() => snap.saveCore(ours))
    const peakMiB = statusMiB('VmHWM') - before
    // Stopped for gcore: a SIGSTOP pending when procsnap lets go stops it untraced, at ready().
    process.kill(pid, 'SIGSTOP')
    await proc.detach()
    while (!/^\d+ \(.*\) T/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))) await new Promise((r) => setTimeout(r, 5))
    const theirs = join(dir, `gcore-${i}.core`)
    const gcore = timed(() =>
      execFileSync('gdb', ['-nx', '-batch', '-p', String(pid), '-ex', `gcore ${theirs}`], { stdio: 'ignore' }),
    )
    const a = gdbBt(ours)
    const b = gdbBt(theirs)
    if (a.frames !== b.frames) throw new Error(`gdb shows other frames: ours '${a.frames}', gcore's '${b.frames}'`)
    const st = statSync(ours)
    const result = {
      saveCore,
      gcore,
      loadOurs: a.ms,
      loadGcore: b.ms,
      oursBytes: st.size,
      oursAllocated: st.blocks * 512,
      gcoreBytes: statSync(theirs).size,
      peakMiB,
    }
    rmSync(ours)
    rmSync(theirs)
    return result
  } finally {
    try {
      process.kill(pid, 'SIGKILL') // the bigheap this round launched
    } catch {
      // gone already
    }
    await proc.kill().catch(() => undefined)
  }
}

export async function coreRows(): Promise<Row[]> {
  const dir = mkdtempSync(join(tmpdir(), 'procsnap-bench-core-'))
  try {
    await round(dir, -1) // unrecorded: the guest's first touch of the memory (see snapshot-io.ts)
    const runs: Run[] = []
    for (let i = 0; i < RUNS; i++) runs.push(await round(dir, i))
    const mib = (n: number): string => fmt(n / 2 ** 20)
    const sizes =
      `cores: ours ${mib(median(runs.map((r) => r.oursBytes)))} MiB (${mib(median(runs.map((r) => r.oursAllocated)))} MiB ` +
      `allocated), gcore's ${mib(median(runs.map((r) => r.gcoreBytes)))} MiB; saveCore's peak RSS rise ` +
      `${fmt(median(runs.map((r) => r.peakMiB)))} MiB`
    return [
      {
        measure: `bigheap ${MIB} MiB at ready(): snapshot.saveCore of a 'full' snapshot (baseline: gdb -p PID -ex gcore, whole command); ${sizes}`,
        ours: runs.map((r) => r.saveCore),
        baseline: runs.map((r) => r.gcore),
        unit: 'ms',
        better: 'lower',
        target: 'for the record',
      },
      {
        measure: `gdb -batch -ex bt bigheap CORE: our core (baseline: gcore's core of the same process)`,
        ours: runs.map((r) => r.loadOurs),
        baseline: runs.map((r) => r.loadGcore),
        unit: 'ms',
        better: 'lower',
        target: 'for the record',
      },
    ]
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
