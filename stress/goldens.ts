// npm run stress -- goldens: the long run of the golden fuzzer (test/golden/fuzz-goldens.ts, issue
// 11): 4000 seeded mutations of a real golden through the direct path (bounded read, path choice,
// parse, compare) and 200 through real Vitest runs in CI mode (10 runs of 20 goldens). Returns a
// markdown summary: cases, outcomes by kind, failures (none expected), time, peak RSS.
import {
  directGolden,
  directOutcome,
  isAcceptable,
  makeProject,
  mutate,
  random,
  realRun,
  tally,
  type Outcome,
} from '../test/golden/fuzz-goldens.js'

const DIRECT_CASES = 4000
const REAL_RUNS = 10
const TESTS_PER_RUN = 20
import { ROOT } from './procs.js'

const COUNTER = `${ROOT}fixtures/c/bin/counter`

interface Part {
  readonly title: string
  readonly outcomes: Outcome[]
  readonly failures: string[]
  readonly ms: number
  /** Slowest single case (direct path only). */
  readonly slowestMs?: number
}

function table(part: Part): string {
  const rows = tally(part.outcomes).map(([o, n]) => `| ${o} | ${n} |`)
  return [
    `### ${part.title}: ${part.outcomes.length} cases in ${(part.ms / 1000).toFixed(1)} s` +
      (part.slowestMs !== undefined ? ` (slowest case ${part.slowestMs.toFixed(1)} ms)` : ''),
    '',
    '| outcome | cases |',
    '|---|---|',
    ...rows,
    '',
    part.failures.length
      ? `**${part.failures.length} failures:**\n\n${part.failures.map((f) => `- ${f}`).join('\n')}`
      : 'Failures: 0.',
  ].join('\n')
}

export async function run(): Promise<string> {
  const project = await makeProject(TESTS_PER_RUN, COUNTER)
  try {
    const golden = directGolden(project)
    const next = random(0x60d1e)
    const direct: Part = { title: 'Direct path', outcomes: [], failures: [], ms: 0, slowestMs: 0 }
    let slowest = 0
    let t0 = performance.now()
    for (let i = 0; i < DIRECT_CASES; i++) {
      const { name, bytes } = mutate(golden.bytes, next)
      const start = performance.now()
      const outcome = directOutcome(golden, bytes)
      const ms = performance.now() - start
      slowest = Math.max(slowest, ms)
      direct.outcomes.push(outcome)
      if (!isAcceptable(outcome) || ms > 1000)
        direct.failures.push(`case ${i} (${name}): ${outcome}, ${ms.toFixed(0)} ms`)
    }
    const directPart = { ...direct, ms: performance.now() - t0, slowestMs: slowest }

    const real: Part = { title: 'Real Vitest runs (CI=true)', outcomes: [], failures: [], ms: 0 }
    t0 = performance.now()
    for (let r = 0; r < REAL_RUNS; r++) {
      for (const c of await realRun(project, next)) {
        real.outcomes.push(c.outcome)
        if (!isAcceptable(c.outcome)) real.failures.push(`run ${r} (${c.name}): ${c.outcome}`)
        if (!c.untouched) real.failures.push(`run ${r} (${c.name}): the golden was rewritten in CI`)
      }
    }
    const realPart = { ...real, ms: performance.now() - t0 }
    const peakMb = process.resourceUsage().maxRSS / 1024
    return [
      '## Golden fuzzer',
      '',
      `Seeded mutations of a real golden (${golden.bytes.length} bytes, the counter fixture at bump): ` +
        `${DIRECT_CASES} through the direct path, ${REAL_RUNS * TESTS_PER_RUN} through ${REAL_RUNS} real Vitest runs.`,
      '',
      table(directPart),
      '',
      table(realPart),
      '',
      `Peak RSS of this process: ${peakMb.toFixed(0)} MB (the real runs' workers are child processes, not counted).`,
    ].join('\n')
  } finally {
    project.cleanup()
  }
}
