// Where golden files live and how they are written: one file per snapshot under
// <test dir>/__process_snapshots__/<test file>/<slug>.snap, written atomically, never rewritten
// with identical content. Read only as regular files of a bounded size (src/files/read.ts): a FIFO,
// a device or a link in their place is refused with a FileError, never read.
import { createHash } from 'node:crypto'
import { lstatSync, realpathSync, statSync } from 'node:fs'
import { basename, dirname, join, relative, isAbsolute } from 'node:path'
import { FileError, GoldenError } from '../errors.js'
import { readRegularText } from '../files/read.js'
import { writeFileAtomically } from '../files/write.js'
import { decodeKey } from './key.js'

export const GOLDEN_DIR = '__process_snapshots__'

/** The directory holding the goldens of one test file. */
export function goldenDir(testFile: string): string {
  return join(dirname(testFile), GOLDEN_DIR, basename(testFile))
}

/**
 * The real path `path` has or would have once created: its deepest existing ancestor resolved, the rest
 * appended. Undefined when a component is a dangling or looping symbolic link (a write would follow it anywhere).
 */
function realTarget(path: string): string | undefined {
  let rest = ''
  for (let p = path; ; p = dirname(p)) {
    try {
      return join(realpathSync(p), rest)
    } catch {
      try {
        lstatSync(p)
        return undefined // it exists, yet does not resolve
      } catch {
        // missing: resolve its parent
      }
    }
    if (dirname(p) === p) return path
    rest = join(basename(p), rest)
  }
}

function isInside(path: string, dir: string): boolean {
  const r = relative(dir, path)
  return r === '' || (!r.startsWith('..') && !isAbsolute(r))
}

/**
 * Refuses a golden folder that a symbolic link sends out of the project: `__process_snapshots__` or
 * its per-test-file folder may be a link (a folder shared in a monorepo), but only to a place inside
 * the project root or the test file's own folder, where writes and -u's deletions stay. Throws
 * ERR_GOLDEN_OUTSIDE otherwise, or when a link there dangles.
 */
export function checkGoldenDir(testFile: string, root: string): void {
  const dir = goldenDir(testFile)
  for (const folder of [dirname(dir), dir]) refuseNonFolder(folder)
  const real = realTarget(dir)
  const bounds = [realTarget(root), realTarget(dirname(testFile))].filter((b) => b !== undefined)
  if (real !== undefined && bounds.some((b) => isInside(real, b))) return
  throw new GoldenError(
    'ERR_GOLDEN_OUTSIDE',
    dir,
    undefined,
    `The golden folder ${dir} ${real === undefined ? 'is a symbolic link that does not resolve' : `resolves to ${real}`}, ` +
      `outside the project (${root}): procsnap neither reads, writes nor deletes goldens there. Replace the link ` +
      `with a folder, or point it inside the project.`,
  )
}

/** A golden folder that exists as something else (a file, a FIFO) is ERR_NOT_A_FILE, before a write fails on it untyped. */
function refuseNonFolder(folder: string): void {
  let stat
  try {
    stat = statSync(folder)
  } catch {
    return // missing (made when a golden is written), or a dangling link (ERR_GOLDEN_OUTSIDE below)
  }
  if (!stat.isDirectory())
    throw new FileError(
      'ERR_NOT_A_FILE',
      folder,
      `The golden folder ${folder} is not a folder: procsnap keeps goldens in a folder there. Remove it or rename it.`,
    )
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
export function goldenPath(
  testFile: string,
  key: string,
  keyOfFile: (path: string) => string | undefined,
  isLive: (key: string) => boolean = () => true,
): string {
  const dir = goldenDir(testFile)
  const plain = join(dir, plainName(key))
  const owner = keyOfFile(plain)
  // The slug's file holds another key: a second golden only when that key is one a test of this file
  // takes; a key that cannot be at that path, or that no test takes, is a damaged header, which the
  // caller reports on the file itself rather than writing a second golden beside it.
  if (owner === undefined || owner === key || !belongsAt(owner, plain) || !isLive(owner)) return plain
  return join(dir, hashedName(key))
}

function plainName(key: string): string {
  return `${slugOf(key)}.snap`
}

function hashedName(key: string): string {
  return `${slugOf(key)}-${createHash('sha256').update(key).digest('hex').slice(0, 8)}.snap`
}

/** Whether procsnap could have written the golden of `key` at `path`: its name is the key's slug, or the slug and the key's hash. */
export function belongsAt(key: string, path: string): boolean {
  const name = basename(path)
  return name === plainName(key) || name === hashedName(key)
}

/**
 * Largest golden read back (and written: the writer never writes what the reader refuses). The
 * largest real golden seen is 11 MB (bench/RESULTS.md), one of 300,000 maps 10 MB; reading is
 * linear, about 0.3 s for 11 MB, so 32 MiB parses in about a second and holds memory to a few
 * hundred MB, while a /dev/zero behind a link or a planted huge file is refused before a byte is read.
 */
export const MAX_GOLDEN_BYTES = 32 * 1024 * 1024

/**
 * A golden's text, or undefined when there is none. Throws FileError (surfaced as is: procsnap never
 * writes such a file, so -u neither rewrites nor deletes it) for a directory, FIFO, device, socket
 * or symbolic link at the golden's path (ERR_NOT_A_FILE), a file over MAX_GOLDEN_BYTES
 * (ERR_FILE_TOO_LARGE), or one that cannot be read (ERR_FILE_UNREADABLE).
 */
export function readText(path: string): string | undefined {
  return readRegularText(path, { what: 'golden file', maxBytes: MAX_GOLDEN_BYTES, noFollow: true })
}

/** Writes through a temporary file and a rename; leaves a file with the same content untouched. Returns whether it wrote. */
export function writeAtomically(path: string, text: string): boolean {
  if (readText(path) === text) return false
  writeFileAtomically(path, text)
  return true
}

const KEY_PREFIX = '# key: '

/** The key in a golden file's header (decoded, see key.ts), without reading the file's sections; undefined when it is damaged. */
export function headerKey(text: string): string | undefined {
  const first = text.indexOf('\n')
  if (first < 0 || !/^# procsnap golden \d+$/.test(text.slice(0, first))) return undefined
  const second = text.indexOf('\n', first + 1)
  if (second < 0) return undefined
  const line = text.slice(first + 1, second)
  return line.startsWith(KEY_PREFIX) ? decodeKey(line.slice(KEY_PREFIX.length)) : undefined
}
