// Which golden files of a test file are obsolete: their key was not checked in this run, and the
// test that owned it ran and passed (or the whole file ran, unfiltered, and the test is gone).
// Skipped, todo, filtered and failed tests never make anything obsolete.
import { readdirSync, type Dirent } from 'node:fs'
import { join } from 'node:path'
import { FileError } from '../errors.js'
import { belongsAt, goldenDir, headerKey, readText } from './files.js'

export interface TestOutcome {
  /** 'describe > test', as keys start. */
  readonly name: string
  /** Ran to the end and passed. */
  readonly passed: boolean
}

export interface ObsoleteGolden {
  readonly path: string
  readonly key: string
}

/**
 * The goldens of `testFile` that no test that ran still takes; `complete` when every test of the file
 * ran and passed. Only files procsnap could have written count: a regular '*.snap' file whose header
 * holds a key that belongs at its name. Directories, FIFOs, devices, links, files too large or
 * unreadable, and files with a damaged key line are skipped (never opened when not regular files),
 * so never reported nor deleted.
 */
export function obsoleteGoldens(
  testFile: string,
  checked: ReadonlySet<string>,
  tests: readonly TestOutcome[],
  complete: boolean,
): ObsoleteGolden[] {
  const dir = goldenDir(testFile)
  let entries: Dirent[]
  try {
    entries = readdirSync(dir, { withFileTypes: true }).filter((e) => e.isFile() && e.name.endsWith('.snap'))
  } catch {
    return []
  }
  const obsolete: ObsoleteGolden[] = []
  for (const name of entries.map((e) => e.name).sort()) {
    const path = join(dir, name)
    const key = keyOf(path)
    if (key === undefined || checked.has(key) || !belongsAt(key, path)) continue
    const owner = ownerOf(key, tests)
    if (owner ? owner.passed : complete) obsolete.push({ path, key })
  }
  return obsolete
}

/** The key of a golden file, or undefined when it is not one to count (replaced by a special file since readdir, too large, unreadable). */
function keyOf(path: string): string | undefined {
  try {
    return headerKey(readText(path) ?? '')
  } catch (error) {
    if (error instanceof FileError) return undefined
    throw error
  }
}

/** The test a key belongs to: 'd > t 2' and 'd > t > name 1' belong to 'd > t' (the longest such name). */
export function ownerOf<T extends { readonly name: string }>(key: string, tests: readonly T[]): T | undefined {
  let best: T | undefined
  for (const t of tests) {
    const rest = key.startsWith(t.name) ? key.slice(t.name.length) : undefined
    if (rest === undefined || !/^( > [\s\S]+)? \d+$/.test(rest)) continue
    if (!best || t.name.length > best.name.length) best = t
  }
  return best
}
