// Where golden files live and how they are written: one file per snapshot under
// <test dir>/__process_snapshots__/<test file>/<slug>.snap, written atomically, never rewritten
// with identical content.
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { writeFileAtomically } from '../files/write.js'

export const GOLDEN_DIR = '__process_snapshots__'

/** The directory holding the goldens of one test file. */
export function goldenDir(testFile: string): string {
  return join(dirname(testFile), GOLDEN_DIR, basename(testFile))
}

/** 'counter > bump increments the counter 1' -> 'counter-bump-increments-the-counter-1'. */
export function slugOf(key: string): string {
  const slug = key
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 100)
  return slug === '' ? 'snapshot' : slug
}

/**
 * The golden file of a key: its slug, or the slug and a hash of the key when another key
 * already owns the slug's file (keys that differ only in punctuation).
 */
export function goldenPath(testFile: string, key: string, keyOfFile: (path: string) => string | undefined): string {
  const dir = goldenDir(testFile)
  const plain = join(dir, `${slugOf(key)}.snap`)
  const owner = keyOfFile(plain)
  if (owner === undefined || owner === key) return plain
  return join(dir, `${slugOf(key)}-${createHash('sha256').update(key).digest('hex').slice(0, 8)}.snap`)
}

export function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw error
  }
}

/** Writes through a temporary file and a rename; leaves a file with the same content untouched. Returns whether it wrote. */
export function writeAtomically(path: string, text: string): boolean {
  if (readText(path) === text) return false
  writeFileAtomically(path, text)
  return true
}

/** The key in a golden file's header, without reading the whole file's sections. */
export function headerKey(text: string): string | undefined {
  return /^# procsnap golden \d+\n# key: (.+)\n/.exec(text)?.[1]
}
