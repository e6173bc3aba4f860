// A benchmark row and how rows reach bench/RESULTS.md: medians, ratios, the machine and the date.
import { readFileSync, writeFileSync } from 'node:fs'
import { cpus, release } from 'node:os'
import { fileURLToPath } from 'node:url'
import { median } from './median.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
/** Runs of each measure (BENCH_RUNS), procsnap and its baseline interleaved. */
export const RUNS = Number(process.env.BENCH_RUNS ?? 5)

export interface Row {
  measure: string
  ours: number[]
  baseline: number[]
  unit: string
  /** 'higher' when a bigger figure is better. */
  better: 'higher' | 'lower'
  target: string
}

export function fmt(x: number): string {
  return x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2)
}

export function writeResults(rows: Row[]): void {
  const cpu = cpus()[0]?.model ?? 'unknown CPU'
  const date = new Date().toISOString().slice(0, 10)
  const lines = [
    `## ${date} — ${cpus().length} CPUs (${cpu}), Linux ${release()}, Node ${process.version}`,
    '',
    `${RUNS} runs of each, procsnap and its baseline (C unless the row names another) ` +
      `interleaved; medians. Ratio = procsnap / baseline for rates (above 100% means procsnap is ` +
      `faster), procsnap's time as a multiple of the baseline's for times.`,
    '',
    '| measure | procsnap | baseline | ratio | target | procsnap runs | baseline runs |',
    '|---|---|---|---|---|---|---|',
  ]
  for (const row of rows) {
    const o = median(row.ours)
    const b = median(row.baseline)
    const ratio = row.better === 'higher' ? o / b : b / o
    const ratioText = row.better === 'higher' ? `${(ratio * 100).toFixed(0)}%` : `${(o / b).toFixed(2)}x the baseline`
    lines.push(
      `| ${row.measure} | ${fmt(o)} ${row.unit} | ${fmt(b)} ${row.unit} | ${ratioText} | ` +
        `${row.target} | ${row.ours.map(fmt).join(', ')} | ${row.baseline.map(fmt).join(', ')} |`,
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

/** A row where lower is better (times, memory). */
export function lowerRow(measure: string, ours: number[], baseline: number[], unit: string, target: string): Row {
  return { measure, ours, baseline, unit, better: 'lower', target }
}
