// Snapshot files at disk speed (group `io`): capture('full') + save() of a process holding 256 MiB or
// 1 GiB of repeated, distinct or random pages, against `gcore` writing a core of the same process;
// then loadSnapshot of that file, against reading gcore's core whole, each in a fresh child process
// (its time and peak RSS).
import { execFileSync, spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { launch } from '../src/index.js'
import { median } from './median.js'
import { fmt, RUNS, type Row } from './report.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const FILL = `${ROOT}fixtures/c/bin/pagefill`
const LOADER = fileURLToPath(new URL('./snapshot-load.js', import.meta.url))
const SIZES = (process.env.BENCH_IO_MIB ?? '256,1024').split(',').map(Number)
const KINDS = (process.env.BENCH_IO_KINDS ?? 'repeated,distinct,random').split(',')
/**
 * Unrecorded rounds of both before each size: on a VM, memory the guest never touched since boot
 * costs a host fault per page on first use (a first 1 GiB write here: 2.3 s, then 0.25 s), which
 * would land on whichever tool ran first.
 */
const WARMUP = Number(process.env.BENCH_IO_WARMUP ?? 1)

interface Load {
  ms: number
  maxRssKiB: number
  startRssKiB: number
  held: number
}

interface Saved {
  ms: number
  /** How far the peak RSS rose above the RSS before, MiB (VmHWM, reset through clear_refs). */
  peakMiB: number
}

/** MiB of /proc/self/status's field `name`. */
function statusMiB(name: string): number {
  const kib = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(readFileSync('/proc/self/status', 'utf8'))?.[1]
  return Number(kib) / 1024
}

/**
 * procsnap: launched, stopped at ready(), then `how` timed: capture('full') + save(), or the dump
 * (proc.saveSnapshot) that writes the same file without copying the memory first.
 */
async function oursSave(mib: number, kind: string, file: string, how: 'save' | 'dump' = 'save'): Promise<Saved> {
  const proc = await launch(FILL, { args: [String(mib), kind] })
  try {
    proc.breakAt('ready')
    await proc.cont({ timeout: 300_000 }) // filling a GiB on a shared machine
    ;(globalThis as { gc?: () => void }).gc?.()
    writeFileSync('/proc/self/clear_refs', '5') // resets VmHWM to the current RSS
    const before = statusMiB('VmRSS')
    const t0 = performance.now()
    if (how === 'dump') proc.saveSnapshot(file, { level: 'full' })
    else proc.createSnapshot({ level: 'full' }).save(file)
    const ms = performance.now() - t0
    return { ms, peakMiB: statusMiB('VmHWM') - before }
  } finally {
    await proc.kill()
  }
}

/**
 * gcore: the fixture stops itself (SIGSTOP) once filled, not under our ptrace; gcore attaches,
 * writes the core and detaches. Timed as the whole command (gdb's start included, as a user runs it).
 */
async function gcoreSave(mib: number, kind: string, prefix: string): Promise<{ ms: number; core: string }> {
  const child = spawn(FILL, [String(mib), kind, 'stop'], { stdio: ['ignore', 'pipe', 'inherit'] })
  const pid = await new Promise<number>((resolve, reject) => {
    child.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim())))
    child.once('error', reject)
  })
  try {
    while (!/^\d+ \(.*\) T/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))) await new Promise((r) => setTimeout(r, 5))
    const t0 = performance.now()
    execFileSync('gcore', ['-o', prefix, String(pid)], { stdio: 'ignore' })
    return { ms: performance.now() - t0, core: `${prefix}.${pid}` }
  } finally {
    child.kill('SIGKILL')
  }
}

function load(how: 'snapshot' | 'raw', file: string): Load {
  const out = execFileSync(process.execPath, [LOADER, how, file], { encoding: 'utf8', maxBuffer: 1 << 20 })
  return JSON.parse(out) as Load
}

export async function snapshotIoRows(): Promise<Row[]> {
  const rows: Row[] = []
  const dir = mkdtempSync(join(tmpdir(), 'procsnap-io-'))
  try {
    for (const mib of SIZES) {
      for (let w = 0; w < WARMUP; w++) {
        const file = join(dir, 'warmup.procsnap')
        await oursSave(mib, 'random', file)
        load('snapshot', file)
        rmSync(file)
        await oursSave(mib, 'random', file, 'dump')
        rmSync(file)
        const g = await gcoreSave(mib, 'random', join(dir, 'warmup'))
        load('raw', g.core)
        rmSync(g.core)
      }
      for (const kind of KINDS) {
        const save = { ours: [] as number[], dump: [] as number[], gcore: [] as number[] }
        const peaks = { ours: [] as number[], dump: [] as number[] }
        const loads = { ours: [] as Load[], raw: [] as Load[] }
        const sizes = { ours: 0, core: 0 }
        for (let r = 0; r < RUNS; r++) {
          const file = join(dir, 'snap.procsnap')
          // The dump and gcore write the same amount of fresh page cache: each goes first in every other
          // run, so that neither always follows the other's freed memory (a first touch of memory costs a
          // host fault per page on this VM).
          const dump = async (): Promise<void> => {
            const dumped = await oursSave(mib, kind, file, 'dump')
            save.dump.push(dumped.ms)
            peaks.dump.push(dumped.peakMiB)
            rmSync(file)
          }
          const gcore = async (): Promise<void> => {
            const g = await gcoreSave(mib, kind, join(dir, 'core'))
            save.gcore.push(g.ms)
            sizes.core = statSync(g.core).size
            loads.raw.push(load('raw', g.core))
            rmSync(g.core)
          }
          if (r % 2 === 0) {
            await dump()
            await gcore()
          } else {
            await gcore()
            await dump()
          }
          const saved = await oursSave(mib, kind, file)
          save.ours.push(saved.ms)
          peaks.ours.push(saved.peakMiB)
          sizes.ours = statSync(file).size
          loads.ours.push(load('snapshot', file))
          rmSync(file)
        }
        const what = `${mib} MiB of ${kind} pages`
        const rss = (l: Load[]): number => median(l.map((x) => x.maxRssKiB / 1024))
        rows.push(
          {
            measure: `capture('full') + save(), ${what}; file ${fmt(sizes.ours / 2 ** 20)} MiB (baseline: gcore, core ${fmt(sizes.core / 2 ** 20)} MiB)`,
            ours: save.ours,
            baseline: save.gcore,
            unit: 'ms',
            better: 'lower',
            target: 'at least as fast as gcore',
          },
          {
            measure: `proc.saveSnapshot(file, { level: 'full' }) (the same file, memory never copied whole), ${what}; peak RSS +${fmt(median(peaks.dump))} MiB vs +${fmt(median(peaks.ours))} MiB for capture + save (baseline: gcore)`,
            ours: save.dump,
            baseline: save.gcore,
            unit: 'ms',
            better: 'lower',
            target: 'at least as fast as gcore',
          },
          {
            measure: `loadSnapshot, ${what}, in a fresh node (baseline: the core read whole into one buffer); peak RSS ${fmt(rss(loads.ours))} MiB vs ${fmt(rss(loads.raw))} MiB`,
            ours: loads.ours.map((l) => l.ms),
            baseline: loads.raw.map((l) => l.ms),
            unit: 'ms',
            better: 'lower',
            target: 'at least as fast; RSS within 1.2x the content',
          },
          {
            measure: `peak RSS of the load above, above node's own start (${fmt(median(loads.ours.map((l) => l.startRssKiB / 1024)))} MiB), as a multiple of the ${mib} MiB content (baseline: the raw read)`,
            ours: loads.ours.map((l) => (l.maxRssKiB - l.startRssKiB) / 1024 / mib),
            baseline: loads.raw.map((l) => (l.maxRssKiB - l.startRssKiB) / 1024 / mib),
            unit: 'x content',
            better: 'lower',
            target: '<= 1.2',
          },
        )
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  return rows
}
