// The seeded golden fuzzer (issue 11, see fuzz-goldens.ts): 2000 mutations of a real golden through
// the direct path and 20 through real Vitest runs in CI mode, each a pass, a mismatch or a
// ProcsnapError with a code, within a second and in bounded memory, the golden left as it was.
// stress/goldens.ts runs the long version (npm run stress -- goldens).
import { afterAll, beforeAll, expect, it } from 'vitest'
import { fixture } from '../helpers.js'
import {
  directGolden,
  directOutcome,
  isAcceptable,
  makeProject,
  mutate,
  random,
  realRun,
  tally,
  type FuzzProject,
  type RealCase,
} from './fuzz-goldens.js'

let project: FuzzProject
beforeAll(async () => {
  project = await makeProject(5, fixture('counter'))
}, 60_000)
afterAll(() => project.cleanup())

it('2000 mutated goldens through read, path choice, parse and compare: each a pass, a mismatch or a coded error', () => {
  const golden = directGolden(project)
  const next = random(0x11c0ffee)
  const rss = process.memoryUsage().rss
  let peak = rss
  let slowest = 0
  const bad: string[] = []
  const outcomes: string[] = []
  const t0 = performance.now()
  for (let i = 0; i < 2000; i++) {
    const { name, bytes } = mutate(golden.bytes, next)
    const start = performance.now()
    const outcome = directOutcome(golden, bytes)
    slowest = Math.max(slowest, performance.now() - start)
    if (i % 50 === 0) peak = Math.max(peak, process.memoryUsage().rss)
    outcomes.push(outcome)
    if (!isAcceptable(outcome)) bad.push(`case ${i} (${name}): ${outcome}`)
  }
  expect(bad).toEqual([])
  expect(performance.now() - t0).toBeLessThan(10_000)
  expect(slowest).toBeLessThan(1000)
  expect(peak - rss).toBeLessThan(256 << 20)
  const counts = Object.fromEntries(tally(outcomes))
  // the fuzzer does reach each kind of ending
  expect(counts.mismatch).toBeGreaterThan(100)
  expect(counts['GoldenError ERR_GOLDEN_CORRUPT']).toBeGreaterThan(100)
  expect(counts.pass).toBeGreaterThan(0)
}, 30_000)

it('20 mutated goldens through real Vitest runs in CI: each a pass, a mismatch or a coded error, no golden rewritten', async () => {
  const next = random(0x5eed)
  const cases: RealCase[] = []
  for (let run = 0; run < 4; run++) cases.push(...(await realRun(project, next)))
  expect(cases).toHaveLength(20)
  expect(cases.filter((c) => !isAcceptable(c.outcome))).toEqual([])
  expect(cases.filter((c) => !c.untouched)).toEqual([])
}, 180_000)

it('mutates the same way for the same seed', () => {
  const golden = directGolden(project)
  const a = mutate(golden.bytes, random(7))
  const b = mutate(golden.bytes, random(7))
  expect(a.name).toBe(b.name)
  expect(a.bytes.equals(b.bytes)).toBe(true)
})
