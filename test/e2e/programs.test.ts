// The promise of goldens, end to end, on programs we did not write: a suite of goldens (sort, cat,
// gzip, bash -c, date, python3 -c, node -e, a threaded fixture) written once and then matched in CI
// mode again, as another user, from a copy of the project at a longer path, with another runner
// environment, and with AVX-512/AVX2 hidden from glibc. A changed input still fails, readably.
import { chmodSync, chownSync, cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { othersCanEnter } from '../helpers.js'
import { runSuite, writeProject, type SuiteRun } from './project.js'

const OTHER_UID = 1234
const base = mkdtempSync(join(tmpdir(), 'procsnap-e2e-'))
chmodSync(base, 0o755) // for the run as another user
const root = join(base, 'p')
afterAll(() => rmSync(base, { recursive: true, force: true }))

/** Names of the tests that failed, from Vitest's default reporter. */
function failed(run: SuiteRun): string[] {
  return [...run.output.matchAll(/FAIL\s+programs\.test\.ts > (.+)/g)].map((m) => m[1]?.trim() ?? '')
}

const TESTS = 9

/** Every test of the suite ran and matched its golden (none written: CI mode). */
function expectAllMatched(run: SuiteRun): void {
  expect(failed(run), run.output.slice(-3000)).toEqual([])
  expect(run.output, run.output.slice(-3000)).toMatch(new RegExp(`Tests\\s+${TESTS} passed`))
  expect(run.ok).toBe(true)
}

function chownTree(dir: string, uid: number): void {
  chownSync(dir, uid, uid)
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isSymbolicLink()) continue
    const path = join(dir, entry.name)
    if (entry.isDirectory()) chownTree(path, uid)
    else chownSync(path, uid, uid)
  }
}

describe('goldens of real programs hold where only the surroundings differ', () => {
  beforeAll(async () => {
    writeProject(root)
    const written = await runSuite(root, { ci: false })
    expect(failed(written), written.output.slice(-3000)).toEqual([])
    expect(written.output).toMatch(new RegExp(`Snapshots\\s+${TESTS} written`))
  }, 300_000)

  it('matches again in CI mode, three times', async () => {
    for (let i = 0; i < 3; i++) {
      expectAllMatched(await runSuite(root, { ci: true }))
    }
  }, 300_000)

  it('matches from a copy of the project at a longer path', async () => {
    const longer = join(base, 'a-much-longer-directory-name', 'and-another-level-of-it', 'p')
    mkdirSync(join(longer, '..'), { recursive: true })
    cpSync(root, longer, { recursive: true, verbatimSymlinks: true })
    expectAllMatched(await runSuite(longer, { ci: true }))
  }, 300_000)

  it('matches with another runner environment', async () => {
    const env = { HOME: '/nonexistent', TERM: 'dumb', LANG: 'de_DE.UTF-8', TZ: 'Asia/Kolkata', EXTRA: 'x'.repeat(500) }
    expectAllMatched(await runSuite(root, { ci: true, env }))
  }, 300_000)

  it('matches with AVX-512 and AVX2 hidden from glibc (glibc.cpu.hwcaps, a tunable of the same length)', async () => {
    expectAllMatched(await runSuite(root, { ci: true, env: { E2E_HWCAPS: '1' } }))
  }, 300_000)

  // Another user needs to reach the repository, the project and this Node (not so for the Node 24 that CI
  // runs from root's npm cache: that pass skips it).
  it.skipIf(!othersCanEnter(base) || !othersCanEnter(process.cwd()) || !othersCanEnter(dirname(process.execPath)))(
    `matches when the tests run as another user (uid ${OTHER_UID}, through setpriv)`,
    async () => {
      const copy = join(base, 'other-user')
      cpSync(root, copy, { recursive: true, verbatimSymlinks: true })
      chownTree(copy, OTHER_UID)
      expectAllMatched(await runSuite(copy, { ci: true, uid: OTHER_UID }))
    },
    300_000,
  )

  it('fails when the program changed (sort -r), with a readable summary', async () => {
    const run = await runSuite(root, { ci: true, env: { E2E_CHANGE: '1' } })
    expect(failed(run)).toEqual(['sort'])
    expect(run.output).toMatch(/Process snapshot `sort 1` mismatched .*\d+ memory range/)
    expect(run.ok).toBe(false)
  }, 300_000)
})
