// Benchmarks of the Vitest side: a 100-test suite that matches goldens, against the same suite
// without them; and what a golden match adds to the capture it checks.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
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

/** A Vitest for the test files at `root`, with procsnap's plugin and the compiled library as `procsnap`. */
export function benchVitest(root: string): ReturnType<typeof createVitest> {
  return createVitest(
    'test',
    { root, config: false, watch: false, reporters: [{}], update: 'new', include: ['*.test.ts'] },
    {
      plugins: [processSnapshots()],
      resolve: { alias: { 'procsnap/matchers': `${LIB}matchers/index.js`, procsnap: `${LIB}index.js` } },
    },
  )
}

async function runSuite(root: string): Promise<number> {
  const vitest = await benchVitest(root)
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

/**
 * The golden suite over real programs, each stopped at its exit; `goldens: false` runs them without
 * procsnap, matching stdout with toMatchSnapshot.
 */
function programsFile(threads: string, goldens: boolean): string {
  const programs: [string, string, string[], string][] = [
    ['sort', 'sort', [], 'pear\napple\nfig\n'],
    ['cat', 'cat', [], 'one\ntwo\n'],
    ['gzip', 'gzip', ['-c'], 'hello hello hello\n'],
    ['bash -c', 'bash', ['-c', 'x=$((6*7)); echo "$x"; date'], ''],
    ['date', 'date', ['-u', '+%Y'], ''],
    ['python3 -c', '/usr/bin/python3', ['-c', 'print(sum(range(10)))'], ''],
    ['node -e', process.execPath, ['-e', 'console.log(6 * 7)'], ''],
    ['threads', threads, ['3', '20'], ''],
  ]
  const body = programs
    .map(([name, file, args, stdin]) => {
      const call = `${JSON.stringify(file)}, ${JSON.stringify(args)}, ${JSON.stringify(stdin)}`
      return `test(${JSON.stringify(name)}, () => run(${call}))`
    })
    .join('\n')
  const run = goldens
    ? `async function run(file: string, args: string[], stdin: string): Promise<void> {
  const proc = await launch(file, { args, stdin })
  await proc.runTo('libc.so.6!exit')
  expect(proc).toMatchProcessSnapshot()
  await proc.kill()
}`
    : `async function run(file: string, args: string[], stdin: string): Promise<void> {
  const { stdout } = await execa(file, args, { input: stdin, reject: false })
  expect(stdout.replace(/\\d/g, '0')).toMatchSnapshot()
}`
  return `import { expect, test } from 'vitest'
${goldens ? "import { launch } from 'procsnap'" : "import { execa } from 'execa'"}

${run}
${body}
`
}

/**
 * Wall time of the golden suite over real programs (goldens written by a first, untimed run), and of
 * the same programs matching their stdout without procsnap.
 */
export async function programsSuite(threads: string): Promise<{ golden: number; plain: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'procsnap-bench-programs-'))
  try {
    const roots = { golden: join(dir, 'golden'), plain: join(dir, 'plain') }
    for (const [kind, root] of Object.entries(roots)) {
      mkdirSync(root)
      symlinkSync(fileURLToPath(new URL('../../node_modules', import.meta.url)), join(root, 'node_modules'))
      writeFileSync(join(root, 'programs.test.ts'), programsFile(threads, kind === 'golden'))
      await runSuite(root) // writes the goldens or Vitest's snapshots
    }
    return { golden: await runSuite(roots.golden), plain: await runSuite(roots.plain) }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** A file of `count` tests, each running `sort` on the same input and matching it at exit: a golden, or its stdout with toMatchSnapshot. */
export function perTestFile(count: number, golden: boolean): string {
  const body = golden
    ? `const proc = await launch('sort', { stdin: 'pear\\napple\\nfig\\n' })
  await proc.runTo('libc.so.6!exit')
  expect(proc).toMatchProcessSnapshot()
  await proc.kill()`
    : `const { stdout } = await execa('sort', { input: 'pear\\napple\\nfig\\n' })
  expect(stdout).toMatchSnapshot()`
  return `import { expect, test } from 'vitest'
${golden ? "import { launch } from 'procsnap'" : "import { execa } from 'execa'"}

test.each(Array.from({ length: ${count} }, (_, i) => i))('sort %i', async () => {
  ${body}
})
`
}

/**
 * ms per test of a Vitest test that runs coreutils' sort and matches a golden at its exit, and of one
 * that runs it with execa and matches its stdout with toMatchSnapshot: (suite of 51 - suite of 1) / 50,
 * so that Vitest's own start is not counted. Goldens and snapshots written by a first, untimed run.
 */
export async function perTestCost(): Promise<{ golden: number; plain: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'procsnap-bench-pertest-'))
  const many = 51
  try {
    const time = async (kind: 'golden' | 'plain', count: number): Promise<number> => {
      const root = join(dir, `${kind}-${count}`)
      mkdirSync(root, { recursive: true })
      symlinkSync(fileURLToPath(new URL('../../node_modules', import.meta.url)), join(root, 'node_modules'))
      writeFileSync(join(root, 'sort.test.ts'), perTestFile(count, kind === 'golden'))
      await runSuite(root)
      return runSuite(root)
    }
    const result = { golden: 0, plain: 0 }
    for (const kind of ['golden', 'plain'] as const)
      result[kind] = ((await time(kind, many)) - (await time(kind, 1))) / (many - 1)
    return result
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
