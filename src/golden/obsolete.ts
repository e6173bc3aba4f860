// Which golden files of a test file are obsolete: their key was not checked in this run, and the
// test that owned it ran and passed (or the whole file ran, unfiltered, and the test is gone).
// Skipped, todo, filtered and failed tests never make anything obsolete.
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { goldenDir, headerKey, readText } from './files.js'

export interface TestOutcome {
  /** 'describe > test', as keys start. */
  readonly name: string
  /** Ran to the end and passed. */
  readonly passed: boolean
}

/** The goldens of `testFile` that no test that ran still takes; `complete` when every test of the file ran and passed. */
export function obsoleteGoldens(
  testFile: string,
  checked: ReadonlySet<string>,
  tests: readonly TestOutcome[],
  complete: boolean,
): string[] {
  const dir = goldenDir(testFile)
  let names: string[]
  try {
    names = readdirSync(dir).filter((n) => n.endsWith('.snap'))
  } catch {
    return []
  }
  const obsolete: string[] = []
  for (const name of names.sort()) {
    const path = join(dir, name)
    const key = headerKey(readText(path) ?? '')
    if (key === undefined || checked.has(key)) continue
    const owner = ownerOf(key, tests)
    if (owner ? owner.passed : complete) obsolete.push(path)
  }
  return obsolete
}

/** The test a key belongs to: 'd > t 2' and 'd > t > name 1' belong to 'd > t' (the longest such name). */
function ownerOf(key: string, tests: readonly TestOutcome[]): TestOutcome | undefined {
  let best: TestOutcome | undefined
  for (const t of tests) {
    const rest = key.startsWith(t.name) ? key.slice(t.name.length) : undefined
    if (rest === undefined || !/^( > .+)? \d+$/.test(rest)) continue
    if (!best || t.name.length > best.name.length) best = t
  }
  return best
}
