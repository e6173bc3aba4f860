// Per-test cost read from Vitest's own test durations: the median of 50 tests, each launching sort,
// running it to exit and matching a golden, against 50 tests running sort with execa and matching its
// stdout with toMatchSnapshot. Where `pertest` divides the difference of two suites' wall times (one
// hiccup of a shared machine moves it by milliseconds), a median of 50 durations shrugs off a few slow tests.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { benchVitest, perTestFile } from './golden.js'
import { median } from './median.js'
import { RUNS, type Row } from './report.js'

const TESTS = 55
/** The first tests of a file warm the JIT and the ELF cache: not counted. */
const WARM_UP = 5

/** Vitest's durations (ms) of the file's tests after the warm-up ones. */
async function durations(root: string): Promise<number[]> {
  const vitest = await benchVitest(root)
  try {
    await vitest.start()
    const file = vitest.state.getFiles()[0]
    if (file?.result?.state !== 'pass') throw new Error(`the benchmark suite failed in ${root}`)
    return file.tasks.slice(WARM_UP).map((t) => t.result?.duration ?? NaN)
  } finally {
    await vitest.close()
  }
}

/** Median ms of one golden test and of one toMatchSnapshot test, per run (goldens and snapshots written by a first, untimed run). */
export async function perTestMedianRows(): Promise<Row[]> {
  const dir = mkdtempSync(join(tmpdir(), 'procsnap-bench-pertest-median-'))
  try {
    const roots = { golden: join(dir, 'golden'), plain: join(dir, 'plain') }
    for (const [kind, root] of Object.entries(roots)) {
      mkdirSync(root)
      symlinkSync(fileURLToPath(new URL('../../node_modules', import.meta.url)), join(root, 'node_modules'))
      writeFileSync(join(root, 'sort.test.ts'), perTestFile(TESTS, kind === 'golden'))
      await durations(root)
    }
    const golden: number[] = []
    const plain: number[] = []
    for (let r = 0; r < RUNS; r++) {
      // Each goes first in half the runs.
      const order = r % 2 ? (['plain', 'golden'] as const) : (['golden', 'plain'] as const)
      for (const kind of order) (kind === 'golden' ? golden : plain).push(median(await durations(roots[kind])))
    }
    return [
      {
        measure:
          'one Vitest test: launch sort, run to exit, toMatchProcessSnapshot (baseline: execa sort, ' +
          "stdout's toMatchSnapshot), median of Vitest's durations of 50 tests",
        ours: golden,
        baseline: plain,
        unit: 'ms',
        better: 'lower',
        target: '<= 2x',
      },
    ]
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
