// `npm run bench`: procsnap's public API against C baselines doing the same work, in the same run,
// interleaved, several runs each; medians and ratios go to bench/RESULTS.md.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { launch } from '../src/index.js'
import { capturePagesRows } from './capture-pages.js'
import { bigGoldenCost, goldenCost, perTestCost, programsSuite, suiteOf100 } from './golden.js'
import { librariesRows } from './libraries.js'
import { linearRows } from './linear.js'
import { diffPagesRows } from './diff-pages.js'
import { wordDiffRows } from './word-diff.js'
import { median } from './median.js'
import { fmt, RUNS, writeResults, type Row } from './report.js'
import { scheduleRun } from './schedule.js'
import { writtenRows } from './written-pages.js'
import { snapshotIoRows } from './snapshot-io.js'
import { threadsCaptureRows } from './threads-capture.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const FIX = `${ROOT}fixtures/c/bin/`
const BIN = `${ROOT}bench/bin/`
const HITS = Number(process.env.BENCH_HITS ?? 100_000)
const LAUNCHES = Number(process.env.BENCH_LAUNCHES ?? 100)
const MIB = Number(process.env.BENCH_MIB ?? 256)
const GDB_HITS = Number(process.env.BENCH_GDB_HITS ?? 10_000)
const CLOCK_READS = Number(process.env.BENCH_CLOCK_READS ?? 10_000)
/** BENCH_ONLY=<group> (GROUPS below) runs only those rows. */
const ONLY = process.env.BENCH_ONLY
const TICKS = Number(process.env.BENCH_TICKS ?? 2_000_000)
const THREAD_HITS = Number(process.env.BENCH_THREAD_HITS ?? 20_000)
const SYSCALLS = Number(process.env.BENCH_SYSCALLS ?? 5_000)

/** The serial schedule (default) against schedule: 'free' on the same multi-threaded runs. */
async function scheduleRows(): Promise<Row[]> {
  const runs = []
  for (let r = 0; r < RUNS; r++) runs.push(await scheduleRun(FIX, TICKS, THREAD_HITS, SYSCALLS))
  return [
    {
      measure: `threads fixture, 4 threads x ${TICKS} worker_tick calls, launch to exit, schedule 'serial' (baseline: 'free')`,
      ours: runs.map((r) => r.toExit.serial),
      baseline: runs.map((r) => r.toExit.free),
      unit: 'ms',
      better: 'lower',
      target: 'for the record',
    },
    {
      measure: `breakpoint on worker_tick in 4 threads, ${THREAD_HITS} hits, schedule 'serial' (baseline: 'free')`,
      ours: runs.map((r) => r.ticks.serial),
      baseline: runs.map((r) => r.ticks.free),
      unit: 'hits/s',
      better: 'higher',
      target: 'for the record',
    },
    {
      measure: `python3, 2 threads x ${SYSCALLS} getppid() syscalls, launch to exit, schedule 'serial' (baseline: 'free')`,
      ours: runs.map((r) => r.syscalls.serial),
      baseline: runs.map((r) => r.syscalls.free),
      unit: 'ms',
      better: 'lower',
      target: 'for the record',
    },
  ]
}

/** gdb's rate on the same loop: `break hit` with `commands silent; continue; end`, timed as a whole minus a run without the breakpoint. */
function gdbBreakpoints(hits: number): number {
  const dir = mkdtempSync(join(tmpdir(), 'procsnap-bench-'))
  const run = (withBreak: boolean): number => {
    const script = join(dir, withBreak ? 'break.gdb' : 'plain.gdb')
    const lines = [
      'set startup-with-shell off',
      ...(withBreak ? ['break hit', 'commands', 'silent', 'continue', 'end'] : []),
      'run',
    ]
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
async function oursLaunch(pin: boolean, fixedRandom = true, defaultStdio = false, isolate = true): Promise<number> {
  // Like the C launcher, no output captured; defaultStdio measures the two pseudo-terminals of the default.
  const stdio = defaultStdio ? {} : ({ stdout: 'ignore', stderr: 'ignore' } as const)
  const times: number[] = []
  for (let i = 0; i < LAUNCHES; i++) {
    const t0 = performance.now()
    const proc = await launch(`${FIX}hot`, { args: ['1'], pin, fixedRandom, isolate, ...stdio })
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

/** createSnapshot at 'writable' of the counter at bump: median ms; and the raw reads of the same maps into reused buffers. */
async function oursSnapshotWritable(): Promise<{ snapshot: number; rawRead: number }> {
  const proc = await launch(`${FIX}counter`, { args: ['3'] })
  proc.breakAt('bump')
  await proc.cont()
  const times: number[] = []
  const raw: number[] = []
  const maps = proc.maps.filter((m) => m.perms.startsWith('rw'))
  const buffers = maps.map((m) => new Uint8Array(Number(m.end - m.start)).fill(1))
  for (let i = 0; i < 40; i++) {
    const t0 = performance.now()
    proc.createSnapshot({ level: 'writable' })
    times.push(performance.now() - t0)
    const t1 = performance.now()
    maps.forEach((m, j) => proc.readMemoryInto(m.start, buffers[j] ?? new Uint8Array(0)))
    raw.push(performance.now() - t1)
  }
  await proc.kill()
  return { snapshot: median(times.slice(5)), rawRead: median(raw.slice(5)) }
}

/** createSnapshot at 'full' of bigheap (MIB of heap): GB/s of memory captured; and a.diff(b) of two of them, ms. */
async function oursSnapshotFull(): Promise<{ gbps: number; diffMs: number; compareMs: number }> {
  const proc = await launch(`${FIX}bigheap`, { args: [String(MIB)], stdout: 'ignore' })
  await proc.runTo('ready', { timeout: 30_000 })
  ;(globalThis as { gc?: () => void }).gc?.()
  const rates: number[] = []
  let a: ReturnType<typeof proc.createSnapshot> | undefined
  let b: ReturnType<typeof proc.createSnapshot> | undefined
  // Round 0 is a warm-up: on this VM, memory the guest never touched costs ~10 µs a page to fault in
  // (the hypervisor backs it then), whoever touches it; the C baseline reads into a warm buffer too.
  for (let r = 0; r < 4; r++) {
    a = b
    b = undefined
    ;(globalThis as { gc?: () => void }).gc?.()
    const t0 = performance.now()
    b = proc.createSnapshot({ level: 'full' })
    const ms = performance.now() - t0
    const bytes = b.maps.reduce((sum, m) => sum + (m.content?.length ?? 0), 0)
    if (r > 0) rates.push(bytes / (ms / 1000) / 1e9)
  }
  await proc.kill()
  if (!a || !b) throw new Error('no snapshots')
  const t0 = performance.now()
  const d = a.diff(b)
  const diffMs = performance.now() - t0
  if (!d.isEmpty) throw new Error('two snapshots of the same stop differ')
  // Baseline: comparing every byte of the two snapshots with memcmp (Buffer.equals), nothing else.
  const t1 = performance.now()
  a.maps.forEach((m, i) => {
    const other = b?.maps[i]?.content
    if (m.content && other) Buffer.from(m.content.buffer, m.content.byteOffset, m.content.length).equals(other)
  })
  const compareMs = performance.now() - t1
  return { gbps: median(rates), diffMs, compareMs }
}

/** Median ms from launch() of the clock fixture reading clock_gettime `reads` times to its exit. */
async function oursClockReads(clock: 'virtual' | 'real', reads: number, pin = false): Promise<number> {
  const times: number[] = []
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now()
    const proc = await launch(`${FIX}clock`, { args: ['loop', String(reads)], clock, pin, stdout: 'ignore' })
    const end = await proc.wait({ timeout: 60_000 })
    times.push(performance.now() - t0)
    if (end.exitCode !== 0) throw new Error(`clock loop exited with ${String(end.exitCode)}`)
  }
  return median(times)
}

/** The virtual clock's costs: a clock read becomes a seccomp stop; launch patches the vDSO. `BENCH_ONLY=clock` runs these alone. */
async function clockRows(): Promise<Row[]> {
  const rows: Row[] = []
  for (const pin of [false, true]) {
    const virtualReads: number[] = []
    const realReads: number[] = []
    const perRead: number[] = []
    for (let r = 0; r < RUNS; r++) {
      const empty = await oursClockReads('virtual', 0, pin)
      const virtual = await oursClockReads('virtual', CLOCK_READS, pin)
      virtualReads.push(virtual)
      realReads.push(await oursClockReads('real', CLOCK_READS, pin))
      perRead.push(((virtual - empty) * 1000) / CLOCK_READS)
    }
    rows.push({
      measure:
        `${CLOCK_READS} clock_gettime reads, launch to exit, clock: 'virtual'${pin ? ', pinned' : ''}: ` +
        `${fmt(median(perRead))} µs a read (baseline: clock: 'real', the vDSO)`,
      ours: virtualReads,
      baseline: realReads,
      unit: 'ms',
      better: 'lower',
      target: 'for the record',
    })
  }
  const virtualLaunch: number[] = []
  const realLaunch: number[] = []
  for (let r = 0; r < RUNS; r++) {
    virtualLaunch.push(await oursClockReads('virtual', 0))
    realLaunch.push(await oursClockReads('real', 0))
  }
  rows.push({
    measure: "launch to exit of the clock fixture reading nothing, clock: 'virtual' (baseline: clock: 'real')",
    ours: virtualLaunch,
    baseline: realLaunch,
    unit: 'ms',
    better: 'lower',
    target: '<= 1.2x',
  })
  return rows
}

/** The golden suite over real programs against the same programs without procsnap. `BENCH_ONLY=programs` runs it alone. */
async function programsRows(): Promise<Row[]> {
  const programs: number[] = []
  const programsPlain: number[] = []
  for (let r = 0; r < RUNS; r++) {
    const p = await programsSuite(`${FIX}threads`)
    programs.push(p.golden)
    programsPlain.push(p.plain)
  }
  return [
    {
      measure:
        'golden suite over 8 real programs (sort, cat, gzip, bash -c, date, python3 -c, node -e, threads), ' +
        'each matched at its exit, wall time (baseline: the same programs run by execa, stdout matched with toMatchSnapshot)',
      ours: programs,
      baseline: programsPlain,
      unit: 'ms',
      better: 'lower',
      target: 'a few seconds',
    },
  ]
}

/** A Vitest test matching a golden against one matching the same program's stdout with toMatchSnapshot. `BENCH_ONLY=pertest`. */
async function perTestRows(): Promise<Row[]> {
  const golden: number[] = []
  const plain: number[] = []
  for (let r = 0; r < RUNS; r++) {
    const cost = await perTestCost()
    golden.push(cost.golden)
    plain.push(cost.plain)
  }
  return [
    {
      measure:
        'one Vitest test: launch sort, run to exit, toMatchProcessSnapshot ' +
        "(baseline: execa sort, stdout's toMatchSnapshot), ms per test over 50",
      ours: golden,
      baseline: plain,
      unit: 'ms',
      better: 'lower',
      target: '<= 2x',
    },
  ]
}

/** Groups of rows that BENCH_ONLY=<name> runs alone; each also runs in a full `npm run bench`. */
const GROUPS: Record<string, () => Promise<Row[]>> = {
  core: (): Promise<Row[]> => coreRows(),
  clock: clockRows,
  libraries: librariesRows,
  pages: capturePagesRows,
  linear: linearRows,
  diffpages: diffPagesRows,
  worddiff: wordDiffRows,
  programs: programsRows,
  schedule: scheduleRows,
  pertest: perTestRows,
  written: writtenRows,
  io: snapshotIoRows,
  regswrite: async (): Promise<Row[]> => (await import('./regs-write.js')).regsWriteRows(),
  threads: threadsCaptureRows,
  incremental: async (): Promise<Row[]> => (await import('./incremental.js')).incrementalRows(),
  pertestmedian: async (): Promise<Row[]> => (await import('./pertest-median.js')).perTestMedianRows(),
  restore: async (): Promise<Row[]> => (await import('./restore.js')).restoreRows(),
  coreexport: async (): Promise<Row[]> => (await import('./core.js')).coreRows(),
  bigrestore: async (): Promise<Row[]> => (await import('./restore.js')).bigRestoreRows(),
  crash: async (): Promise<Row[]> => (await import('./crash.js')).crashRows(),
  cli: async (): Promise<Row[]> => (await import('./cli.js')).cliRows(),
  attach: async (): Promise<Row[]> => (await import('./attach.js')).attachRows(),
  coreimport: async (): Promise<Row[]> => (await import('./load-core.js')).loadCoreRows(),
}

async function main(): Promise<void> {
  const only = ONLY !== undefined ? GROUPS[ONLY] : undefined
  if (only) return writeResults(await only())
  const rows: Row[] = []
  for (const group of Object.values(GROUPS)) rows.push(...(await group()))
  writeResults(rows)
}

/** Breakpoints, launch, reads, captures, diffs and goldens against their baselines. `BENCH_ONLY=core`. */
async function coreRows(): Promise<Row[]> {
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
    rows.push({
      measure: `breakpoint round trips/s${how} (default: step-over emulated)`,
      ours: emulated,
      baseline: base,
      unit: 'hits/s',
      better: 'higher',
      target: '>= 80%',
    })
    rows.push({
      measure: `breakpoint round trips/s${how}, emulateStepOver: false (same work as C)`,
      ours: classic,
      baseline: base,
      unit: 'hits/s',
      better: 'higher',
      target: '>= 80%',
    })
  }
  const gdb: number[] = []
  const gdbOurs: number[] = []
  for (let r = 0; r < Math.min(RUNS, 3); r++) {
    gdb.push(gdbBreakpoints(GDB_HITS))
    gdbOurs.push(await oursBreakpoints(false, true))
  }
  rows.push({
    measure: `breakpoint round trips/s against gdb (batch, ${GDB_HITS} hits, silent continue)`,
    ours: gdbOurs,
    baseline: gdb,
    unit: 'hits/s',
    better: 'higher',
    target: 'reference',
  })
  // fixedRandom (the default) costs a ptrace stop per rdtsc the loader runs before main, isolate (the
  // default) the namespaces and two forks: each measured apart.
  for (const [pin, fixedRandom, defaultStdio, isolate] of [
    [false, true, false, true],
    [false, true, false, false],
    [false, false, false, true],
    [true, true, false, true],
    [false, true, true, true],
  ] as const) {
    const ours: number[] = []
    const base: number[] = []
    for (let r = 0; r < RUNS; r++) {
      base.push(
        Number(
          runC([
            `${BIN}launch_main`,
            ...(pin ? ['--pin'] : []),
            '--iterations',
            String(LAUNCHES),
            `${FIX}hot`,
            mainOffset,
          ]).median_ms,
        ),
      )
      ours.push(await oursLaunch(pin, fixedRandom, defaultStdio, isolate))
    }
    rows.push({
      measure:
        'launch to breakpoint at main' +
        (pin ? ', pinned' : '') +
        (fixedRandom ? '' : ', fixedRandom: false') +
        (isolate ? '' : ', isolate: false') +
        (defaultStdio ? ', default stdio (stdout and stderr on ptys)' : ''),
      ours,
      baseline: base,
      unit: 'ms',
      better: 'lower',
      target: '<= 2x',
    })
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
  rows.push({
    measure: `read ${MIB} MiB, readMemoryInto (reused buffer)`,
    ours: reused,
    baseline: base,
    unit: 'GB/s',
    better: 'higher',
    target: '>= 90%',
  })
  rows.push({
    measure: `read ${MIB} MiB, readMemory (new buffer each time)`,
    ours: fresh,
    baseline: base,
    unit: 'GB/s',
    better: 'higher',
    target: 'for the record',
  })
  const snapWritable: number[] = []
  const snapRaw: number[] = []
  const snapFull: number[] = []
  const fullBase: number[] = []
  const diffs: number[] = []
  const compares: number[] = []
  for (let r = 0; r < RUNS; r++) {
    const w = await oursSnapshotWritable()
    snapWritable.push(w.snapshot)
    snapRaw.push(w.rawRead)
    fullBase.push(Number(runC([`${BIN}vm_read`, '--runs', '5', `${FIX}bigheap`, readyOffset, String(MIB)]).median_gbps))
    const f = await oursSnapshotFull()
    snapFull.push(f.gbps)
    diffs.push(f.diffMs)
    compares.push(f.compareMs)
  }
  rows.push({
    measure: "snapshot 'writable' of counter at bump (baseline: reading the same maps, Node, reused buffers)",
    ours: snapWritable,
    baseline: snapRaw,
    unit: 'ms',
    better: 'lower',
    target: 'a few ms',
  })
  rows.push({
    measure: `snapshot 'full' of bigheap (${MIB} MiB heap), bytes captured per second`,
    ours: snapFull,
    baseline: fullBase,
    unit: 'GB/s',
    better: 'higher',
    target: '>= 50%',
  })
  rows.push({
    measure: `diff of two 'full' snapshots of bigheap (baseline: memcmp of all their bytes)`,
    ours: diffs,
    baseline: compares,
    unit: 'ms',
    better: 'lower',
    target: '< 1000 ms',
  })
  const big: number[] = []
  const bigBaseline: number[] = []
  let bigBytes = 0
  for (let r = 0; r < RUNS; r++) {
    const b = bigGoldenCost()
    big.push(b.ours)
    bigBaseline.push(b.baseline)
    bigBytes = b.bytes
  }
  rows.push({
    measure: `parse + compare of a ${(bigBytes / 1e6).toFixed(1)} MB golden (150,000 lines, one changed) (baseline: JSON.parse of the same entries)`,
    ours: big,
    baseline: bigBaseline,
    unit: 'ms',
    better: 'lower',
    target: '< 1000 ms',
  })
  const suite: number[] = []
  const suitePlain: number[] = []
  const capture: number[] = []
  const golden: number[] = []
  for (let r = 0; r < RUNS; r++) {
    const s = await suiteOf100(`${FIX}counter`)
    suite.push(s.golden)
    suitePlain.push(s.plain)
    const g = await goldenCost(`${FIX}counter`)
    capture.push(g.capture)
    golden.push(g.golden)
  }
  rows.push({
    measure:
      'Vitest suite of 100 tests (launch, break, match a golden), wall time (baseline: the same suite asserting a register)',
    ours: suite,
    baseline: suitePlain,
    unit: 'ms',
    better: 'lower',
    target: '< 10000 ms',
  })
  rows.push({
    measure: "golden view of a 'writable' snapshot of counter at bump, ms (baseline: the capture it checks)",
    ours: golden,
    baseline: capture,
    unit: 'ms',
    better: 'lower',
    target: 'a few ms',
  })
  return rows
}

await main()
