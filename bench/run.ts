// `npm run bench`: procsnap's public API against C baselines doing the same work, in the same run,
// interleaved, several runs each; medians and ratios go to bench/RESULTS.md.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, release, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { launch } from '../src/index.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const FIX = `${ROOT}fixtures/c/bin/`
const BIN = `${ROOT}bench/bin/`
const RUNS = Number(process.env.BENCH_RUNS ?? 5)
const HITS = Number(process.env.BENCH_HITS ?? 100_000)
const LAUNCHES = Number(process.env.BENCH_LAUNCHES ?? 100)
const MIB = Number(process.env.BENCH_MIB ?? 256)
const GDB_HITS = Number(process.env.BENCH_GDB_HITS ?? 10_000)

/** gdb's rate on the same loop: `break hit` with `commands silent; continue; end`, timed as a whole minus a run without the breakpoint. */
function gdbBreakpoints(hits: number): number {
  const dir = mkdtempSync(join(tmpdir(), 'procsnap-bench-'))
  const run = (withBreak: boolean): number => {
    const script = join(dir, withBreak ? 'break.gdb' : 'plain.gdb')
    const lines = ['set startup-with-shell off', ...(withBreak ? ['break hit', 'commands', 'silent', 'continue', 'end'] : []), 'run']
    writeFileSync(script, lines.join('\n') + '\n')
    const t0 = performance.now()
    execFileSync('gdb', ['-nx', '-batch', '-x', script, '--args', `${FIX}hot`, String(hits)], { stdio: 'ignore' })
    return (performance.now() - t0) / 1000
  }
  try {
    const base = run(false)
    return hits / Math.max(run(true) - base, 1e-6)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? (s[m] ?? 0) : ((s[m - 1] ?? 0) + (s[m] ?? 0)) / 2
}

function nm(binary: string, symbol: string): string {
  const line = execFileSync('nm', [binary], { encoding: 'utf8' })
    .split('\n')
    .find((l) => l.endsWith(` ${symbol}`))
  if (!line) throw new Error(`no ${symbol} in ${binary}`)
  return line.split(' ')[0] ?? ''
}

function runC(args: string[]): Record<string, unknown> {
  const out = execFileSync(args[0] ?? '', args.slice(1), { encoding: 'utf8' })
  return JSON.parse(out.trim().split('\n').at(-1) ?? '{}') as Record<string, unknown>
}

/** Breakpoint round trips per second through cont(), first hit to exit (as the C loop counts). */
async function oursBreakpoints(pin: boolean, emulateStepOver: boolean): Promise<number> {
  const proc = await launch(`${FIX}hot`, { args: [String(HITS)], pin, emulateStepOver, stdout: 'ignore' })
  const bp = proc.breakAt('hit')
  await proc.cont()
  const t0 = performance.now()
  let ev = await proc.cont()
  while (ev.kind === 'breakpoint') ev = await proc.cont()
  const seconds = (performance.now() - t0) / 1000
  if (bp.hits !== HITS) throw new Error(`expected ${HITS} hits, got ${bp.hits}`)
  return (HITS - 1) / seconds
}

/** Median milliseconds from launch() to the stop at main. */
async function oursLaunch(pin: boolean): Promise<number> {
  const times: number[] = []
  for (let i = 0; i < LAUNCHES; i++) {
    const t0 = performance.now()
    const proc = await launch(`${FIX}hot`, { args: ['1'], pin, stdout: 'ignore' })
    proc.breakAt('main')
    const ev = await proc.cont()
    times.push(performance.now() - t0)
    if (ev.kind !== 'breakpoint') throw new Error('did not stop at main')
    await proc.kill()
  }
  return median(times)
}

/** GB/s reading the bigheap buffer into one reused buffer (and, for the record, into fresh ones). */
async function oursRead(): Promise<{ reused: number; fresh: number }> {
  const proc = await launch(`${FIX}bigheap`, { args: [String(MIB)], stdout: 'ignore' })
  await proc.runTo('ready', { timeout: 30_000 })
  const address = proc.regs.rdi
  const size = Number(proc.regs.rsi)
  const target = new Uint8Array(size)
  target.fill(0xa5) // touch every page before timing, as the C baseline does
  const reused: number[] = []
  const fresh: number[] = []
  // Reused-buffer reads first, after a full GC: fresh 256 MiB allocations of an earlier run
  // would otherwise be freed by V8 on the other CPU while these reads are timed.
  ;(globalThis as { gc?: () => void }).gc?.()
  for (let r = 0; r < 5; r++) {
    const t0 = performance.now()
    proc.readMemoryInto(address, target)
    reused.push(size / ((performance.now() - t0) / 1000) / 1e9)
  }
  for (let r = 0; r < 3; r++) {
    const t0 = performance.now()
    proc.readMemory(address, size)
    fresh.push(size / ((performance.now() - t0) / 1000) / 1e9)
  }
  if (target[4096 + 5] !== ((4096 + 5) * 131 + 7) % 256) throw new Error('pattern mismatch')
  await proc.kill()
  return { reused: median(reused), fresh: median(fresh) }
}

interface Row {
  measure: string
  ours: number[]
  baseline: number[]
  unit: string
  /** 'higher' when a bigger figure is better. */
  better: 'higher' | 'lower'
  target: string
}

function fmt(x: number): string {
  return x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2)
}

async function main(): Promise<void> {
  const hitOffset = nm(`${FIX}hot`, 'hit')
  const mainOffset = nm(`${FIX}hot`, 'main')
  const readyOffset = nm(`${FIX}bigheap`, 'ready')
  const rows: Row[] = []
  for (const pin of [false, true]) {
    const emulated: number[] = []
    const classic: number[] = []
    const base: number[] = []
    for (let r = 0; r < RUNS; r++) {
      base.push(Number(runC([`${BIN}bp_loop`, ...(pin ? ['--pin'] : []), `${FIX}hot`, hitOffset, String(HITS)]).median))
      emulated.push(await oursBreakpoints(pin, true))
      classic.push(await oursBreakpoints(pin, false))
    }
    const how = pin ? ', pinned to one CPU' : ''
    rows.push({ measure: `breakpoint round trips/s${how} (default: step-over emulated)`, ours: emulated, baseline: base, unit: 'hits/s', better: 'higher', target: '>= 80%' })
    rows.push({ measure: `breakpoint round trips/s${how}, emulateStepOver: false (same work as C)`, ours: classic, baseline: base, unit: 'hits/s', better: 'higher', target: '>= 80%' })
  }
  const gdb: number[] = []
  const gdbOurs: number[] = []
  for (let r = 0; r < Math.min(RUNS, 3); r++) {
    gdb.push(gdbBreakpoints(GDB_HITS))
    gdbOurs.push(await oursBreakpoints(false, true))
  }
  rows.push({ measure: `breakpoint round trips/s against gdb (batch, ${GDB_HITS} hits, silent continue)`, ours: gdbOurs, baseline: gdb, unit: 'hits/s', better: 'higher', target: 'reference' })
  for (const pin of [false, true]) {
    const ours: number[] = []
    const base: number[] = []
    for (let r = 0; r < RUNS; r++) {
      base.push(Number(runC([`${BIN}launch_main`, ...(pin ? ['--pin'] : []), '--iterations', String(LAUNCHES), `${FIX}hot`, mainOffset]).median_ms))
      ours.push(await oursLaunch(pin))
    }
    rows.push({ measure: `launch to breakpoint at main${pin ? ', pinned' : ''}`, ours, baseline: base, unit: 'ms', better: 'lower', target: '<= 2x' })
  }
  const reused: number[] = []
  const fresh: number[] = []
  const base: number[] = []
  for (let r = 0; r < RUNS; r++) {
    base.push(Number(runC([`${BIN}vm_read`, '--runs', '5', `${FIX}bigheap`, readyOffset, String(MIB)]).median_gbps))
    const o = await oursRead()
    reused.push(o.reused)
    fresh.push(o.fresh)
  }
  rows.push({ measure: `read ${MIB} MiB, readMemoryInto (reused buffer)`, ours: reused, baseline: base, unit: 'GB/s', better: 'higher', target: '>= 90%' })
  rows.push({ measure: `read ${MIB} MiB, readMemory (new buffer each time)`, ours: fresh, baseline: base, unit: 'GB/s', better: 'higher', target: 'for the record' })
  writeResults(rows)
}

function writeResults(rows: Row[]): void {
  const cpu = cpus()[0]?.model ?? 'unknown CPU'
  const date = new Date().toISOString().slice(0, 10)
  const lines = [
    `## ${date} — ${cpus().length} CPUs (${cpu}), Linux ${release()}, Node ${process.version}`,
    '',
    `${RUNS} runs of each, procsnap and its C baseline interleaved; medians. Ratio = procsnap / C for rates, C / procsnap for times (above 100% means procsnap is faster).`,
    '',
    '| measure | procsnap | C baseline | ratio | target | procsnap runs | C runs |',
    '|---|---|---|---|---|---|---|',
  ]
  for (const row of rows) {
    const o = median(row.ours)
    const b = median(row.baseline)
    const ratio = row.better === 'higher' ? o / b : b / o
    const ratioText = row.better === 'higher' ? `${(ratio * 100).toFixed(0)}%` : `${(o / b).toFixed(2)}x the C time`
    lines.push(
      `| ${row.measure} | ${fmt(o)} ${row.unit} | ${fmt(b)} ${row.unit} | ${ratioText} | ${row.target} | ${row.ours.map(fmt).join(', ')} | ${row.baseline.map(fmt).join(', ')} |`,
    )
  }
  const section = lines.join('\n')
  console.log(section)
  const file = `${ROOT}bench/RESULTS.md`
  let previous = ''
  try {
    previous = readFileSync(file, 'utf8')
  } catch {
    previous = '# Benchmark results\n\nWritten by `npm run bench` (bench/run.ts); newest first. Baselines: bench/c/.\n'
  }
  const [head, ...rest] = previous.split('\n## ')
  writeFileSync(file, [head?.trimEnd(), '', section, ...rest.map((r) => `\n## ${r.trimEnd()}`)].join('\n') + '\n')
}

await main()
