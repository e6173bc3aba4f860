// Benchmarks of the Vitest side: a 100-test suite that matches goldens, against the same suite
// without them; and what a golden match adds to the capture it checks.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createVitest } from 'vitest/node'
import { compareGolden } from '../src/golden/compare.js'
import { parseGolden } from '../src/golden/parse.js'
import { goldenSections, renderGolden } from '../src/golden/render.js'
import { launch } from '../src/index.js'
import { processSnapshots } from '../src/plugin/index.js'
import { median } from './median.js'

const FILES = 4
const TESTS_PER_FILE = 25
/** The compiled library next to this compiled file (build/src), as a user's project would import it. */
const LIB = fileURLToPath(new URL('../src/', import.meta.url))

function testFile(counter: string, golden: boolean): string {
  return `import { expect, test } from 'vitest'
import { launch } from 'procsnap'

test.each(Array.from({ length: ${TESTS_PER_FILE} }, (_, i) => i))('stop %i', async () => {
  const proc = await launch(${JSON.stringify(counter)}, { args: ['3'] })
  proc.breakAt('bump')
  await proc.cont()
  ${golden ? 'expect(proc).toMatchProcessSnapshot()' : "expect(proc).toHaveRegister('edi', 1)"}
  await proc.kill()
})
`
}

async function runSuite(root: string): Promise<number> {
  const vitest = await createVitest(
    'test',
    { root, config: false, watch: false, reporters: [{}], update: 'new', include: ['*.test.ts'] },
    {
      plugins: [processSnapshots()],
      resolve: { alias: { 'procsnap/matchers': `${LIB}matchers/index.js`, procsnap: `${LIB}index.js` } },
    },
  )
  try {
    const t0 = performance.now()
    await vitest.start()
    const ms = performance.now() - t0
    if (!vitest.state.getFiles().every((f) => f.result?.state === 'pass'))
      throw new Error(`the benchmark suite failed in ${root}`)
    return ms
  } finally {
    await vitest.close()
  }
}

/** Wall time of a 100-test suite matching goldens (written by a first, untimed run), and of the same suite asserting a register instead. */
export async function suiteOf100(counter: string): Promise<{ golden: number; plain: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'procsnap-bench-suite-'))
  try {
    const roots = { golden: join(dir, 'golden'), plain: join(dir, 'plain') }
    for (const [kind, root] of Object.entries(roots)) {
      mkdirSync(root)
      for (let f = 0; f < FILES; f++)
        writeFileSync(join(root, `stop${f}.test.ts`), testFile(counter, kind === 'golden'))
    }
    await runSuite(roots.golden) // writes the goldens
    return { golden: await runSuite(roots.golden), plain: await runSuite(roots.plain) }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** ms of a 'writable' capture of counter at bump, and ms the golden view and its comparison add to it. */
export async function goldenCost(counter: string): Promise<{ capture: number; golden: number }> {
  const proc = await launch(counter, { args: ['3'] })
  proc.breakAt('bump')
  await proc.cont()
  const capture: number[] = []
  const golden: number[] = []
  let previous = ''
  for (let i = 0; i < 40; i++) {
    const t0 = performance.now()
    const snap = proc.createSnapshot({ level: 'writable' })
    const t1 = performance.now()
    const text = renderGolden({ key: 'bench 1', test: 'bench.test.ts' }, goldenSections(snap.data, snap.modules()))
    if (previous && text !== previous) throw new Error('the golden of one stop changed between captures')
    previous = text
    const t2 = performance.now()
    capture.push(t1 - t0)
    golden.push(t2 - t1)
  }
  await proc.kill()
  return { capture: median(capture.slice(5)), golden: median(golden.slice(5)) }
}

/**
 * ms to parse a 10 MB golden and compare it with one line changed (what a mismatch costs before the
 * diff is shown), against JSON.parse of the same entries: the platform's own parser over the same data.
 */
export function bigGoldenCost(): { ours: number; baseline: number; bytes: number } {
  const entries = Array.from({ length: 150_000 }, (_, i) => ({
    label: `python3!_PyRuntime+0x${(i * 16).toString(16)}`,
    value: `${(i & 0xff).toString(16).padStart(2, '0')} 00 00 00 00 00 00 00 <libc.so.6!environ>`,
  }))
  const sections = [{ title: 'memory', entries }]
  const text = renderGolden({ key: 'bench 1', test: 'bench.test.ts' }, sections)
  const changed = [{ title: 'memory', entries: entries.map((e, i) => (i === 75_000 ? { ...e, value: '07' } : e)) }]
  const json = JSON.stringify(sections)
  const ours: number[] = []
  const baseline: number[] = []
  for (let i = 0; i < 7; i++) {
    const t0 = performance.now()
    const changes = compareGolden(parseGolden(text, 'bench.snap').sections, changed)
    const t1 = performance.now()
    if (changes.length !== 1) throw new Error(`expected one change, got ${changes.length}`)
    JSON.parse(json)
    const t2 = performance.now()
    ours.push(t1 - t0)
    baseline.push(t2 - t1)
  }
  return { ours: median(ours), baseline: median(baseline), bytes: text.length }
}
