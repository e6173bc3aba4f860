// A seeded fuzzer of goldens (issue 11), shared by test/golden/fuzz.test.ts and stress/goldens.ts:
// a real golden, written by a real Vitest run of the counter fixture, is mutated (truncated, bytes
// flipped, lines duplicated, deleted or swapped, huge numbers, control characters, invalid UTF-8, a
// damaged header) and read back through the golden path: directly (bounded read, path choice,
// parse and compare) and through real Vitest runs in CI mode. Every case must end in a pass, a
// mismatch, or a ProcsnapError with a code: never an untyped error, a second golden, a hang or a
// write to the golden.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ProcsnapError } from '../../src/errors.js'
import { goldenPath, headerKey, readText } from '../../src/golden/files.js'
import { ownerOf } from '../../src/golden/obsolete.js'
import { parseGolden } from '../../src/golden/parse.js'
import { compareWithGolden } from '../../src/golden/workflow.js'
import { runProject } from '../vitest-project.js'

/** xorshift32: the same cases for the same seed. */
export function random(seed: number): () => number {
  let x = seed >>> 0 || 1
  return () => {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    return (x >>> 0) / 2 ** 32
  }
}

type Rng = () => number

const int = (next: Rng, n: number): number => Math.floor(next() * n)

function lines(bytes: Buffer): Buffer[] {
  const out: Buffer[] = []
  let start = 0
  for (let i = bytes.indexOf(10); i >= 0; i = bytes.indexOf(10, start)) {
    out.push(bytes.subarray(start, i + 1))
    start = i + 1
  }
  if (start < bytes.length) out.push(bytes.subarray(start))
  return out
}

function insert(bytes: Buffer, at: number, piece: Buffer): Buffer {
  return Buffer.concat([bytes.subarray(0, at), piece, bytes.subarray(at)])
}

const CONTROL = ['\0', '\r', '\x1b[2J', '\u2028', '\x7f', '\t', '\x85', '\n\n', '"', '\\']
const INVALID_UTF8 = [[0xff], [0xc0, 0x80], [0x80], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xe2, 0x82]]
const HUGE = ['9'.repeat(400), '0xffffffffffffffffffffffffffffffff', '1e308', '-0', '18446744073709551616', 'NaN']
const HEADERS = [
  '# procsnap golden 2',
  '# procsnap golden 99999999999999999999',
  '# procsnap golden -1',
  '# procsnap golden',
  '# key: ',
  '# key: ""',
  '# key: "unterminated',
  '# key: "\\ud800 1"',
  '# key: "fuzz > t0 1"',
  '# key: fuzz > t0 2',
  '# key: fuzz ) t0 1',
  '# test: ',
  '',
]

/** One mutation, by name: what it did to the bytes. */
const MUTATIONS: Record<string, (b: Buffer, next: Rng) => Buffer> = {
  truncate: (b, next) => b.subarray(0, int(next, b.length)),
  'flip bits': (b, next) => {
    const out = Buffer.from(b)
    for (let n = 1 + int(next, 8); n > 0; n--) {
      const at = int(next, out.length)
      out[at] = (out[at] ?? 0) ^ (1 << int(next, 8))
    }
    return out
  },
  'random bytes': (b, next) => {
    const out = Buffer.from(b)
    for (let n = 1 + int(next, 4); n > 0; n--) out[int(next, out.length)] = int(next, 256)
    return out
  },
  'duplicate line': (b, next) => {
    const ls = lines(b)
    const at = int(next, ls.length)
    ls.splice(at, 0, ls[at] ?? Buffer.alloc(0))
    return Buffer.concat(ls)
  },
  'delete line': (b, next) => {
    const ls = lines(b)
    ls.splice(int(next, ls.length), 1 + int(next, 3))
    return Buffer.concat(ls)
  },
  'swap lines': (b, next) => {
    const ls = lines(b)
    const [i, j] = [int(next, ls.length), int(next, ls.length)]
    const li = ls[i] ?? Buffer.alloc(0)
    ls[i] = ls[j] ?? Buffer.alloc(0)
    ls[j] = li
    return Buffer.concat(ls)
  },
  'huge number': (b, next) => {
    const text = b.toString('latin1')
    const hits = [...text.matchAll(/0x[0-9a-f]+|\b\d+\b|[0-9a-f]{2}(?= |\n)/g)]
    const hit = hits[int(next, hits.length)]
    if (!hit) return b
    const huge = HUGE[int(next, HUGE.length)] ?? ''
    return Buffer.from(text.slice(0, hit.index) + huge + text.slice(hit.index + hit[0].length), 'latin1')
  },
  'control char': (b, next) =>
    insert(b, int(next, b.length + 1), Buffer.from(CONTROL[int(next, CONTROL.length)] ?? '')),
  'invalid UTF-8': (b, next) =>
    insert(b, int(next, b.length + 1), Buffer.from(INVALID_UTF8[int(next, INVALID_UTF8.length)] ?? [])),
  'header damage': (b, next) => {
    const ls = lines(b)
    const line = int(next, Math.min(3, ls.length + 1))
    const replacement = HEADERS[int(next, HEADERS.length)] ?? ''
    ls[line] = Buffer.from(replacement === '' ? '' : `${replacement}\n`)
    return Buffer.concat(ls)
  },
  'long line': (b, next) => insert(b, int(next, b.length + 1), Buffer.alloc(1 + int(next, 200_000), 'x')),
  'empty file': () => Buffer.alloc(0),
}

export const MUTATION_NAMES = Object.keys(MUTATIONS)

/** A case: one to three mutations of the golden, chosen by the seed. */
export function mutate(golden: Buffer, next: Rng): { name: string; bytes: Buffer } {
  let bytes = golden
  const names: string[] = []
  for (let n = 1 + (next() < 0.25 ? int(next, 3) : 0); n > 0; n--) {
    const name = MUTATION_NAMES[int(next, MUTATION_NAMES.length)] ?? 'truncate'
    names.push(name)
    bytes = MUTATIONS[name]?.(bytes, next) ?? bytes
  }
  return { name: names.join(' + '), bytes }
}

/** 'pass', 'mismatch', 'GoldenError ERR_GOLDEN_CORRUPT', ...; anything else is a failure of the fuzzer. */
export type Outcome = string

export function isAcceptable(outcome: Outcome): boolean {
  return outcome === 'pass' || outcome === 'mismatch' || /^[A-Za-z]*Error ERR_[A-Z_]+$/.test(outcome)
}

function errorOutcome(error: unknown): Outcome {
  if (error instanceof ProcsnapError) return `${error.name} ${error.code}`
  return `untyped ${(error as Error).name}: ${(error as Error).message}`
}

/** A real golden and what the direct path needs to judge a mutation of it. */
export interface FuzzGolden {
  /** The golden's bytes as a real run wrote them. */
  readonly bytes: Buffer
  readonly key: string
  /** The test file the golden belongs to, and the golden's path, in a scratch folder. */
  readonly testFile: string
  readonly path: string
}

/** The direct path of one case: the golden on disk, read bounded, its path chosen, parsed and compared. */
export function directOutcome(golden: FuzzGolden, bytes: Buffer): Outcome {
  writeFileSync(golden.path, bytes)
  const text = golden.bytes.toString('utf8')
  try {
    const tests = [{ name: golden.key.replace(/ \d+$/, '') }]
    const chosen = goldenPath(
      golden.testFile,
      golden.key,
      (p) => headerKey(readText(p) ?? ''),
      (owner) => ownerOf(owner, tests) !== undefined,
    )
    if (chosen !== golden.path) return `second golden ${chosen}`
    const existing = readText(chosen)
    if (existing === undefined) return 'missing'
    const sections = parseGolden(text, 'original').sections
    return compareWithGolden(existing, text, sections, golden.key, 'fuzz.snap') === undefined ? 'pass' : 'mismatch'
  } catch (error) {
    return errorOutcome(error)
  }
}

/** The project of the real runs: `tests` tests, each stopping the counter at bump and taking a golden. */
function projectTest(tests: number, counter: string): string {
  return `import { describe, expect, test } from 'vitest'
import { launch } from 'procsnap'

describe('fuzz', () => {
  for (let i = 0; i < ${tests}; i++) {
    test(\`t\${i}\`, async () => {
      const proc = await launch(${JSON.stringify(counter)}, { args: ['3'] })
      proc.breakAt('bump')
      await proc.cont()
      expect(proc).toMatchProcessSnapshot()
      await proc.kill()
    })
  }
})
`
}

export interface FuzzProject {
  readonly dir: string
  /** Golden path -> the bytes a real run wrote, for t0, t1, ... */
  readonly goldens: ReadonlyMap<string, Buffer>
  readonly cleanup: () => void
}

/** Writes the project and its goldens with a real run (update 'new'). */
export async function makeProject(tests: number, counter: string): Promise<FuzzProject> {
  const dir = mkdtempSync(join(tmpdir(), 'procsnap-fuzz-'))
  writeFileSync(join(dir, 'fuzz.test.ts'), projectTest(tests, counter))
  const run = await runProject(dir, { update: 'new' })
  if (run.errors.length) throw new Error(`the fuzz project's first run failed: ${run.errors.join('\n')}`)
  const folder = join(dir, '__process_snapshots__', 'fuzz.test.ts')
  const goldens = new Map(readdirSync(folder).map((n) => [join(folder, n), readFileSync(join(folder, n))]))
  return { dir, goldens, cleanup: () => rmSync(dir, { recursive: true, force: true }) }
}

/** The direct-path golden of a project (t0's), copied into a scratch folder of its own. */
export function directGolden(project: FuzzProject): FuzzGolden {
  const [path, bytes] = [...project.goldens].sort(([a], [b]) => a.localeCompare(b))[0] ?? ['', Buffer.alloc(0)]
  const key = headerKey(bytes.toString('utf8')) ?? ''
  const testFile = join(project.dir, 'direct', 'fuzz.test.ts')
  const scratch = join(project.dir, 'direct', '__process_snapshots__', 'fuzz.test.ts')
  mkdirSync(scratch, { recursive: true })
  return { bytes, key, testFile, path: join(scratch, path.slice(path.lastIndexOf('/') + 1)) }
}

export interface RealCase {
  readonly name: string
  readonly outcome: Outcome
  /** The golden's bytes after the CI run are the mutated ones. */
  readonly untouched: boolean
}

/**
 * One CI run (CI=true, update 'none') over every golden of the project mutated at once: each test's
 * outcome from its own error. Restores the real goldens after.
 */
export async function realRun(project: FuzzProject, next: Rng): Promise<RealCase[]> {
  const cases = [...project.goldens].map(([path, bytes]) => ({ path, ...mutate(bytes, next) }))
  for (const c of cases) writeFileSync(c.path, c.bytes)
  const run = await runProject(project.dir, { update: 'none', env: { CI: 'true' } })
  const results = cases.map((c) => {
    const test = /-(t\d+)-1\.snap$/.exec(c.path)?.[1] ?? ''
    const state = run.states[test]
    const kinds = run.failures[test] ?? []
    const message = run.errors.find((e) => e.includes(`\`fuzz > ${test} 1\``)) ?? ''
    const outcome =
      state === 'pass'
        ? 'pass'
        : kinds.length === 1 && /^(Assertion)?Error$/.test(kinds[0] ?? '') && message.includes('mismatched')
          ? 'mismatch'
          : kinds.length === 1 && /^[A-Za-z]*Error ERR_/.test(kinds[0] ?? '')
            ? (kinds[0] ?? '')
            : `untyped ${state ?? 'not run'}: ${kinds.join(', ')} ${message.slice(0, 200)}`
    return { name: c.name, outcome, untouched: readFileSync(c.path).equals(c.bytes) }
  })
  const stray = run.unhandled.length
    ? [{ name: 'unhandled', outcome: `untyped ${run.unhandled[0]}`, untouched: true }]
    : []
  for (const [path, bytes] of project.goldens) writeFileSync(path, bytes)
  return [...results, ...stray]
}

/** Counts by outcome, the largest first. */
export function tally(outcomes: readonly Outcome[]): [Outcome, number][] {
  const counts = new Map<Outcome, number>()
  for (const o of outcomes) counts.set(o, (counts.get(o) ?? 0) + 1)
  return [...counts].sort((a, b) => b[1] - a[1])
}
