// Reading files that may be hostile: never a FIFO, device, socket or directory, never more than
// the file declares nor more than its kind may hold. Opened non-blocking (a FIFO cannot hang the
// open), checked with fstat on the open descriptor (no race with a rename), read to its size only.
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs'
import { FileError, ProcsnapError } from '../errors.js'

export interface BoundedRead {
  /** What the file is, for messages: 'golden file', 'snapshot file', 'ELF file'. */
  readonly what: string
  /** Largest size accepted; a larger file is ERR_FILE_TOO_LARGE before anything is read. */
  readonly maxBytes: number
  /** Refuse a symbolic link as the last component (ELOOP -> ERR_NOT_A_FILE). Default: follow. */
  readonly noFollow?: boolean
}

const KIND: readonly [number, string][] = [
  [constants.S_IFDIR, 'a directory'],
  [constants.S_IFIFO, 'a FIFO'],
  [constants.S_IFCHR, 'a character device'],
  [constants.S_IFBLK, 'a block device'],
  [constants.S_IFSOCK, 'a socket'],
]

function kindOf(mode: number): string {
  const type = mode & constants.S_IFMT
  return KIND.find(([t]) => t === type)?.[1] ?? 'not a regular file'
}

/** Opens `path` read-only and non-blocking; undefined when it does not exist. */
function openChecked(path: string, how: Omit<BoundedRead, 'maxBytes'>): number | undefined {
  const flags =
    constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY | (how.noFollow ? constants.O_NOFOLLOW : 0)
  try {
    return openSync(path, flags)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined
    if (code === 'ELOOP')
      throw new FileError(
        'ERR_NOT_A_FILE',
        path,
        `The ${how.what} ${path} is a symbolic link; procsnap does not follow links there. Replace it with the file itself.`,
      )
    if (code === 'EISDIR' || code === 'ENXIO')
      throw new FileError(
        'ERR_NOT_A_FILE',
        path,
        `The ${how.what} ${path} is not a regular file. Remove it or point procsnap at a file.`,
      )
    throw new FileError(
      'ERR_FILE_UNREADABLE',
      path,
      `Cannot open the ${how.what} ${path} (${code ?? (error as Error).message}): check its permissions.`,
    )
  }
}

/**
 * The bytes of a regular file, at most `how.maxBytes`, or undefined when it does not exist.
 * Throws FileError: ERR_NOT_A_FILE (directory, FIFO, device, socket, a link with noFollow),
 * ERR_FILE_TOO_LARGE, ERR_FILE_UNREADABLE; and whatever `how.checkHead` throws.
 */
export function readRegularFile(path: string, how: BoundedRead & HeadCheck): Buffer | undefined {
  return withRegularFile(path, how, (fd, size) => {
    if (how.checkHead) how.checkHead(readAt(fd, Math.min(size, how.headBytes ?? 64)))
    if (size > how.maxBytes)
      throw new FileError(
        'ERR_FILE_TOO_LARGE',
        path,
        how.tooLarge?.(size) ??
          `The ${how.what} ${path} is ${size} bytes, more than the ${how.maxBytes} such a file may hold: it is not one procsnap wrote, or it is damaged.`,
      )
    return readAt(fd, size)
  })
}

/** What readRegularFile may check before it reads a whole file. */
export interface HeadCheck {
  /** Called with the file's first `headBytes` (fewer in a shorter file) before the size is checked: throw to refuse it. */
  readonly checkHead?: (head: Buffer) => void
  /** Default 64. */
  readonly headBytes?: number
  /** The message of ERR_FILE_TOO_LARGE, when the default does not fit the kind of file. */
  readonly tooLarge?: (size: number) => string
}

/** At most the first `bytes` of a regular file (checked as readRegularFile checks), or undefined when it does not exist. */
export function readRegularHead(path: string, how: Omit<BoundedRead, 'maxBytes'>, bytes: number): Buffer | undefined {
  return withRegularFile(path, how, (fd, size) => readAt(fd, Math.min(size, bytes)))
}

/**
 * Opens `path`, refuses anything but a regular file (fstat on the descriptor), and hands the descriptor
 * and size to `use`; undefined when it does not exist. For readers that stream a file in blocks.
 */
export function withRegularFile<T>(
  path: string,
  how: Omit<BoundedRead, 'maxBytes'>,
  use: (fd: number, size: number) => T,
): T | undefined {
  const fd = openChecked(path, how)
  if (fd === undefined) return undefined
  try {
    const stat = fstatSync(fd)
    if (!stat.isFile())
      throw new FileError(
        'ERR_NOT_A_FILE',
        path,
        `The ${how.what} ${path} is ${kindOf(stat.mode)}, not a regular file: procsnap never reads special files. Remove it or point procsnap at a file.`,
      )
    return use(fd, stat.size)
  } catch (error) {
    if (error instanceof ProcsnapError) throw error
    const code = (error as NodeJS.ErrnoException).code
    throw new FileError(
      'ERR_FILE_UNREADABLE',
      path,
      `Cannot read the ${how.what} ${path} (${code ?? (error as Error).message}).`,
    )
  } finally {
    closeSync(fd)
  }
}

/** Up to `length` bytes from the start. A file that grows while we read is cut at the size fstat declared; one that shrinks ends early. */
function readAt(fd: number, length: number): Buffer {
  const out = Buffer.allocUnsafe(length)
  let done = 0
  while (done < out.length) {
    const n = readSync(fd, out, done, out.length - done, done)
    if (n <= 0) break
    done += n
  }
  return out.subarray(0, done)
}

/** readRegularFile as UTF-8 text. */
export function readRegularText(path: string, how: BoundedRead): string | undefined {
  return readRegularFile(path, how)?.toString('utf8')
}
