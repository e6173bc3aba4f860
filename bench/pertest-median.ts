// Per-test cost read from Vitest's own test durations: the median of 50 tests, each launching sort,
// running it to exit and matching a golden, against 50 tests running sort with execa and matching its
// stdout with toMatchSnapshot. Where `pertest` divides the difference of two suites' wall times (one
// hiccup of a shared machine moves it by milliseconds), a median of 50 durations shrugs off a few slow tests.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createVitest } from 'vitest/node'
import { processSnapshots } from '../src/plugin/index.js'
import { median } from './median.js'
import { RUNS, type Row } from './report.js'

const TESTS = 55
/** The first tests of a file warm the JIT and the ELF cache: not counted. */
const WARM_UP = 5
/** The compiled library next to this compiled file (build/src), as a user's project would import it. */
const LIB = fileURLToPath(new URL('../src/', import.meta.url))

function testFile(golden: boolean): string {
  const body = golden
    ? `const proc = await launch('sort', { stdin: 'pear\\napple\\nfig\\n' })
  await proc.runTo('libc.so.6!exit')
  expect(proc).toMatchProcessSnapshot()
  await proc.kill()`
    : `const { stdout } = await execa('sort', { input: 'pear\\napple\\nfig\\n' })
  expect(stdout).toMatchSnapshot()`
  return `import { expect, test } from 'vitest'
${golden ? "import { launch } from 'procsnap'" : "import { execa } from 'execa'"}

test.each(Array.from({ length: ${TESTS} }, (_, i) => i))('sort %i', async () => {
  ${body}
})
`
}

/** Vitest's durations (ms) of the file's tests after the warm-up ones. */
async function durations(root: string): Promise<number[]> {
  const vitest = await createVitest(
    'test',
    { root, config: false, watch: false, reporters: [{}], update: 'new', include: ['*.test.ts'] },
    {
      plugins: [processSnapshots()],
      resolve: { alias: { 'procsnap/matchers': `${LIB}matchers/index.js`, procsnap: `${LIB}index.js` } },
    },
  )
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
      writeFileSync(join(root, 'sort.test.ts'), testFile(kind === 'golden'))
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
