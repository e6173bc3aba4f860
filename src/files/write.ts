// Writing a file whole or not at all: a temporary file beside the target, created exclusively
// (O_EXCL, O_NOFOLLOW) under an unpredictable name, so that a planted file or symlink cannot
// redirect the write; then a rename over the target (which replaces a link, never writes through it).
import { randomBytes } from 'node:crypto'
import { closeSync, constants, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'

const CREATE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW

/** Writes `data` to `path` through an exclusive temporary file and a rename; creates the directory. */
export function writeFileAtomically(path: string, data: string | Uint8Array): void {
  const dir = dirname(path)
  mkdirSync(dir, { recursive: true })
  const temp = join(dir, `.${basename(path)}.${randomBytes(8).toString('hex')}.tmp`)
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data
  const fd = openSync(temp, CREATE, 0o644)
  let renamed = false
  try {
    for (let done = 0; done < bytes.length;) done += writeSync(fd, bytes, done, bytes.length - done)
    closeSync(fd)
    renameSync(temp, path)
    renamed = true
  } finally {
    if (!renamed) {
      try {
        closeSync(fd)
      } catch {
        // already closed
      }
      rmSync(temp, { force: true })
    }
  }
}
