// `procsnap show` of a large golden (300,000 maps, as the large-golden test renders one): the
// command line's whole run (node start, the golden read and checked, printed), against `cat` of the
// same file and a bare `node -e ''` start, which any JavaScript command line pays.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { renderGolden, type GoldenSection } from '../src/golden/render.js'
import { timed } from './core.js'
import { median } from './median.js'
import { RUNS, type Row } from './report.js'

const MAIN = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url))
const MAPS = 300_000

function largeGolden(path: string): number {
  const entries = Array.from({ length: MAPS }, (_, i) => ({
    label: `0x${(0x555555554000 + i * 0x1000).toString(16)}-0x${(0x555555555000 + i * 0x1000).toString(16)}`,
    value: `rw-p  anon#${i}`,
  }))
  const sections: GoldenSection[] = [{ title: 'maps', entries }]
  writeFileSync(path, renderGolden({ key: 'maps 1', test: 'maps.test.ts' }, sections))
  return statSync(path).size
}

export function cliRows(): Row[] {
  execFileSync('npm', ['run', '-s', 'build'], { stdio: 'ignore' }) // the command line runs from dist/
  const dir = mkdtempSync(join(tmpdir(), 'procsnap-bench-cli-'))
  const file = join(dir, 'maps-1.snap')
  const bytes = largeGolden(file)
  const show: number[] = []
  const cat: number[] = []
  const node: number[] = []
  try {
    for (let r = 0; r < RUNS; r++) {
      const runs = (f: () => unknown): number => median([0, 1, 2].map(() => timed(() => void f())))
      show.push(
        runs(() =>
          execFileSync(process.execPath, [MAIN, 'show', file], {
            maxBuffer: 1 << 30,
            stdio: ['ignore', 'pipe', 'ignore'],
          }),
        ),
      )
      cat.push(runs(() => execFileSync('cat', [file], { maxBuffer: 1 << 30 })))
      node.push(runs(() => execFileSync(process.execPath, ['-e', ''])))
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  const what = `procsnap show of a golden of ${MAPS.toLocaleString('en')} maps (${(bytes / 2 ** 20).toFixed(1)} MiB), whole run`
  return [
    {
      measure: `${what}; baseline: cat of the same file`,
      ours: show,
      baseline: cat,
      unit: 'ms',
      better: 'lower',
      target: 'for the record',
    },
    {
      measure: `${what}; baseline: node -e '' (a JavaScript command line's start)`,
      ours: show,
      baseline: node,
      unit: 'ms',
      better: 'lower',
      target: 'for the record',
    },
  ]
}
