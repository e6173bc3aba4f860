// Launch to main against the number of shared libraries a program loads (1 to 300): procsnap's
// launch() against the C ptrace loop (bench/c/launch_main.c) on the same programs, same environment.
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { launch, type LaunchOptions } from '../src/index.js'
import { DEFAULT_ENV } from '../src/process/launch.js'
import { median } from './median.js'
import { RUNS, type Row } from './report.js'

const BIN = fileURLToPath(new URL('../../bench/bin/', import.meta.url))
/** The counts bench/Makefile builds programs for (bench/bin/manylibs-N/main). */
export const LIBRARY_COUNTS = [1, 10, 50, 100, 300] as const
const LAUNCHES = Number(process.env.BENCH_LIBRARY_LAUNCHES ?? 30)

export function manyLibsProgram(count: number): string {
  return `${BIN}manylibs-${count}/main`
}

function mainOffset(binary: string): string {
  const line = execFileSync('nm', [binary], { encoding: 'utf8' })
    .split('\n')
    .find((l) => l.endsWith(' T main'))
  if (!line) throw new Error(`no main in ${binary}`)
  return line.split(' ')[0] ?? ''
}

/** The C loop's median ms over `LAUNCHES` launches, with launch()'s default environment (LD_BIND_NOW=1 among it). */
function cLaunch(binary: string, offset: string): number {
  const out = execFileSync(`${BIN}launch_main`, ['--iterations', String(LAUNCHES), binary, offset], {
    encoding: 'utf8',
    env: { ...DEFAULT_ENV },
  })
  const parsed = JSON.parse(out.trim().split('\n').at(-1) ?? '{}') as { median_ms?: number }
  return Number(parsed.median_ms)
}

/** Median ms from launch() to the stop at main (and, with `listModules`, the module list read there), the process killed after each. */
export async function oursLaunchMain(
  binary: string,
  options: LaunchOptions = {},
  launches = LAUNCHES,
  listModules = false,
): Promise<number> {
  const times: number[] = []
  for (let i = 0; i < launches; i++) {
    const t0 = performance.now()
    const proc = await launch(binary, { stdout: 'ignore', stderr: 'ignore', ...options })
    proc.breakAt('main')
    const ev = await proc.cont()
    if (listModules && proc.modules.length < 3) throw new Error(`${binary}: too few modules`)
    times.push(performance.now() - t0)
    if (ev.kind !== 'breakpoint') throw new Error(`${binary} did not stop at main`)
    await proc.kill()
  }
  return median(times)
}

/** Rows at each count: launch's defaults, then the options that change per-library work (clock, fixedRandom, isolate). */
export async function librariesRows(): Promise<Row[]> {
  const variants: { label: string; options: LaunchOptions; listModules?: boolean; target?: string }[] = [
    { label: '', options: {} },
    { label: ", clock: 'real', fixedRandom: false", options: { clock: 'real', fixedRandom: false } },
    { label: ', isolate: false', options: { isolate: false } },
    // Work that grows with the libraries by nature: the maps (5 lines a library) and a module each.
    { label: ', then proc.modules read', options: {}, listModules: true, target: 'for the record' },
  ]
  const rows: Row[] = []
  for (const variant of variants) {
    for (const count of LIBRARY_COUNTS) {
      const binary = manyLibsProgram(count)
      const offset = mainOffset(binary)
      const ours: number[] = []
      const base: number[] = []
      for (let r = 0; r < RUNS; r++) {
        base.push(cLaunch(binary, offset))
        ours.push(await oursLaunchMain(binary, variant.options, LAUNCHES, variant.listModules))
      }
      rows.push({
        measure: `launch to breakpoint at main, ${count} shared ${count === 1 ? 'library' : 'libraries'} (and libc)${variant.label}`,
        ours,
        baseline: base,
        unit: 'ms',
        better: 'lower',
        target: variant.target ?? '<= 2x',
      })
    }
  }
  return rows
}
