// Writing a file whole or not at all: a temporary file beside the target, created exclusively
// (O_EXCL, O_NOFOLLOW) under an unpredictable name, so that a planted file or symlink cannot
// redirect the write; then a rename over the target (which replaces a link, never writes through it).
import { randomBytes } from 'node:crypto'
import { closeSync, constants, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { FileError } from '../errors.js'

const CREATE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW

/** Writes `data` to `path` through an exclusive temporary file and a rename; creates the directory. */
export function writeFileAtomically(path: string, data: string | Uint8Array): void {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data
  atomically(path, (fd) => writeAll(fd, bytes, 0, bytes.length))
}

/** Where a streaming write puts its bytes, in order. */
export interface ByteSink {
  write(bytes: Uint8Array): void
  /** Overwrites bytes already written at `position` (a checksum known only at the end). */
  patch(position: number, bytes: Uint8Array): void
}

/** A sink into memory: its bytes, once written, from `bytes()`. */
export function memorySink(): ByteSink & { bytes(): Buffer } {
  const chunks: Buffer[] = []
  const all = (): Buffer => {
    if (chunks.length !== 1) chunks.splice(0, chunks.length, Buffer.concat(chunks))
    return chunks[0]!
  }
  return {
    write: (bytes) => chunks.push(Buffer.from(bytes)),
    patch: (position, bytes) => all().set(bytes, position),
    bytes: all,
  }
}

/** Writes up to this much at once; smaller writes are gathered into a buffer of this size first. */
const STAGE_BYTES = 1 << 20
/**
 * The most one write(2) is asked to move. Larger writes are no faster, and on this project's VM (Linux
 * 6.18, ext4) a write of 8 MiB into the page cache now and then took 2-4x as long (large folios, it
 * seems): 1 GiB written 8 MiB at a time took 220-1040 ms, median 538; 512 KiB at a time 223-258 ms.
 */
const MAX_WRITE = 512 << 10

/**
 * writeFileAtomically for data produced in pieces: `produce` hands its bytes to the sink, small
 * pieces are gathered into 1 MiB writes and large ones written straight from the caller's buffer.
 * The temporary file is removed if `produce` or a write throws; the target is then untouched.
 */
export function writeFileStreaming(path: string, produce: (out: ByteSink) => void): void {
  atomically(path, (fd) => {
    const stage = Buffer.allocUnsafe(STAGE_BYTES)
    let staged = 0
    let flushed = 0
    produce({
      patch(position: number, bytes: Uint8Array): void {
        if (position + bytes.length > flushed + staged)
          throw new RangeError(`patch past the ${flushed + staged} bytes written`)
        const inStage = Math.max(position, flushed)
        if (inStage < position + bytes.length) stage.set(bytes.subarray(inStage - position), inStage - flushed)
        const onDisk = Math.min(bytes.length, flushed - position)
        for (let done = 0; done < onDisk;) done += writeSync(fd, bytes, done, onDisk - done, position + done)
      },
      write(bytes: Uint8Array): void {
        if (staged + bytes.length <= STAGE_BYTES) {
          stage.set(bytes, staged)
          staged += bytes.length
          return
        }
        writeAll(fd, stage, 0, staged)
        flushed += staged
        staged = 0
        if (bytes.length < STAGE_BYTES) {
          stage.set(bytes, 0)
          staged = bytes.length
        } else {
          writeAll(fd, bytes, 0, bytes.length)
          flushed += bytes.length
        }
      },
    })
    writeAll(fd, stage, 0, staged)
  })
}

/**
 * Lets `write` fill a new file at positions of its choosing (what it skips stays a hole, read as
 * zeros), then renames it over `path`: the same exclusive temporary file and errors as writeFileAtomically.
 */
export function writeFileWith(path: string, write: (fd: number) => void): void {
  atomically(path, write)
}

/**
 * Runs a file system call for the write of `path`; a failure of the system (no such directory, no
 * permission, a full disk) becomes ERR_FILE_UNWRITABLE, which names the path and the reason.
 */
function writing<T>(path: string, step: string, call: () => T): T {
  try {
    return call()
  } catch (error) {
    const { code, syscall } = error as NodeJS.ErrnoException
    if (typeof code !== 'string' || typeof syscall !== 'string') throw error // not the system's: the caller's own
    throw new FileError(
      'ERR_FILE_UNWRITABLE',
      path,
      `Cannot write ${path}: ${step} failed (${code}). Check that its directory exists or can be created, is writable, and that the disk has room.`,
      { cause: error },
    )
  }
}

/** Opens an exclusive temporary file beside `path`, lets `write` fill it, renames it over `path`; removes it on failure. */
function atomically(path: string, write: (fd: number) => void): void {
  const dir = dirname(path)
  writing(path, 'creating its directory', () => mkdirSync(dir, { recursive: true }))
  const temp = join(dir, `.${basename(path)}.${randomBytes(8).toString('hex')}.tmp`)
  const fd = writing(path, 'creating a temporary file beside it', () => openSync(temp, CREATE, 0o644))
  let renamed = false
  try {
    writing(path, 'writing', () => write(fd))
    writing(path, 'closing', () => closeSync(fd))
    writing(path, 'renaming the temporary file over it', () => renameSync(temp, path))
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

function writeAll(fd: number, bytes: Uint8Array, from: number, to: number): void {
  for (let done = from; done < to;) done += writeSync(fd, bytes, done, Math.min(to - done, MAX_WRITE))
}
