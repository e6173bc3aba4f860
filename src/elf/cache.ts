// Reads ELF files from disk: whole files parsed once and cached per path (keyed by mtime, size, inode), or just the header.
import { closeSync, openSync, readFileSync, readSync, statSync, type BigIntStats } from 'node:fs'
import { BinaryError } from '../errors.js'
import { parseElfHeader } from './header.js'
import { parseElf } from './parse.js'
import type { ElfFile, ElfHeaderInfo } from './types.js'

/** Most files kept parsed at once; the least recently used goes first. */
const MAX_ENTRIES = 64
const cache = new Map<string, { key: string; elf: ElfFile }>()

/** Parses the ELF file at `path`, reusing the previous result while the file is unchanged. */
export function readElf(path: string): ElfFile {
  const stats = statFile(path)
  const key = `${stats.dev}:${stats.ino}:${stats.size}:${stats.mtimeNs}`
  const hit = cache.get(path)
  cache.delete(path)
  if (hit?.key === key) {
    cache.set(path, hit)
    return hit.elf
  }
  const elf = parseElf(
    readBytes(path, () => readFileSync(path)),
    path,
  )
  cache.set(path, { key, elf })
  for (const oldest of cache.keys()) {
    if (cache.size <= MAX_ENTRIES) break
    cache.delete(oldest)
  }
  return elf
}

/** Reads only the first 64 bytes of `path`: a fast "is this ELF, for which machine" check. */
export function readElfHeader(path: string): ElfHeaderInfo {
  statFile(path)
  const bytes = readBytes(path, () => {
    const fd = openSync(path, 'r')
    try {
      const buffer = Buffer.alloc(64)
      return buffer.subarray(0, readSync(fd, buffer, 0, 64, 0))
    } finally {
      closeSync(fd)
    }
  })
  return parseElfHeader(bytes, path)
}

/** Forgets every cached parse. */
export function clearElfCache(): void {
  cache.clear()
}

function statFile(path: string): BigIntStats {
  let stats: BigIntStats
  try {
    stats = statSync(path, { bigint: true })
  } catch (error) {
    throw toBinaryError(path, error)
  }
  if (!stats.isFile()) {
    throw new BinaryError('ERR_NOT_ELF', path, `${path} is not a regular file. Point at a compiled binary.`)
  }
  return stats
}

function readBytes(path: string, read: () => Uint8Array): Uint8Array {
  try {
    return read()
  } catch (error) {
    throw toBinaryError(path, error)
  }
}

function toBinaryError(path: string, error: unknown): unknown {
  const code = (error as NodeJS.ErrnoException | undefined)?.code
  if (code === 'ENOENT' || code === 'ENOTDIR') {
    return new BinaryError(
      'ERR_FILE_NOT_FOUND',
      path,
      `${path} does not exist. Check the path, or build the binary first.`,
    )
  }
  if (code === 'EACCES' || code === 'EPERM') {
    return new BinaryError('ERR_NOT_EXECUTABLE', path, `${path} cannot be read (${code}). Check its permissions.`)
  }
  return error
}
