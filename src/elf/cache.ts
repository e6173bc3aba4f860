// Reads ELF files from disk: whole files parsed once and cached per path (keyed by mtime, size, inode), or just the header.
// Only regular files, header first, within a size limit: a path from a snapshot file may name anything.
import { statSync, type BigIntStats } from 'node:fs'
import { BinaryError, FileError } from '../errors.js'
import { readRegularFile, readRegularHead } from '../files/read.js'
import { BudgetCache, type BudgetCacheStats } from './budget-cache.js'
import { parseElf, peekBuildId } from './parse.js'
import { parseElfHeader } from './header.js'
import type { ElfFile, ElfHeaderInfo } from './types.js'

/**
 * The estimated heap the cache may hold in parsed files; the least recently used go first. Bounded by
 * bytes, not by count: a program with 300 small libraries (25 KB each) fits, and so do several
 * programs' worth of large ones (libc 0.9 MB, node's 107,000 symbols and its unwind tables 30 MB);
 * one file larger than this stays alone, as the newest. Processes alive keep the files they use
 * (their module lists) beyond it.
 */
export const DEFAULT_ELF_CACHE_BYTES = 128 << 20
const cache = new BudgetCache<ElfFile>(DEFAULT_ELF_CACHE_BYTES)
let parses = 0

/**
 * What a parsed file holds on the heap, estimated from its tables: measured (Node 20) at 15-19 KB
 * for a small library or program, and about 220 bytes a symbol beyond (libm 262 KB, node 24 MB):
 * this errs on the high side. Plus the call-frame information an unwind through it keeps with it
 * (eh-frame.ts: a copy of .eh_frame and .eh_frame_hdr), counted whether loaded yet or not.
 */
export function estimateElfBytes(elf: ElfFile): number {
  const rows = elf.symbols.length + elf.relocatedSlots.size + elf.sections.length + elf.segments.length
  const cfi = elf.sections
    .filter((s) => s.name === '.eh_frame' || s.name === '.eh_frame_hdr')
    .reduce((sum, s) => sum + Number(s.size), 0)
  return 8192 + 256 * rows + cfi
}

/**
 * The largest ELF file readElf reads: a program being launched or traced is the user's choice, so
 * this is what readFileSync allowed before (2 GiB - 1); a larger one is ERR_FILE_TOO_LARGE.
 */
export const MAX_ELF_BYTES = 2 ** 31 - 1

/**
 * The largest ELF file a snapshot's maps make procsnap read: the binaries in common use are well
 * below it (libc 2 MB, node 99 MB and libLLVM 117 MB, which parse in 1.3 and 0.7 s), while a file
 * of 1.5 GB that a loaded snapshot names would hold that much memory and take over ten seconds.
 */
export const MAX_NAMED_ELF_BYTES = 512 << 20

/** Parses the ELF file at `path`, reusing the previous result while the file is unchanged. */
export function readElf(path: string): ElfFile {
  return readElfMatching(path, undefined) as ElfFile
}

/**
 * readElf, or undefined when `buildId` is given and the file's differs (checked before its symbols
 * are parsed): the file changed since a snapshot named it. A file parsed before is not read again.
 */
export function readElfMatching(
  path: string,
  buildId: string | undefined,
  maxBytes = MAX_ELF_BYTES,
): ElfFile | undefined {
  const stats = statFile(path)
  const key = `${stats.dev}:${stats.ino}:${stats.size}:${stats.mtimeNs}`
  const hit = cache.get(path, key)
  if (hit) return buildId === undefined || hit.buildId === buildId ? hit : undefined
  const bytes = readElfBytes(path, maxBytes)
  if (buildId !== undefined && peekBuildId(bytes, path) !== buildId) return undefined
  const elf = parseElf(bytes, path)
  parses++
  cache.set(path, key, elf, estimateElfBytes(elf))
  return elf
}

/** Reads only the first 64 bytes of `path`: a fast "is this ELF, for which machine" check. */
export function readElfHeader(path: string): ElfHeaderInfo {
  statFile(path)
  const bytes = readChecked(path, () => readRegularHead(path, { what: 'ELF file' }, 64))
  return parseElfHeader(bytes, path)
}

/**
 * A whole ELF file: never a special file (opened non-blocking, checked on the descriptor), its
 * header checked before the rest is read, at most `maxBytes`.
 */
function readElfBytes(path: string, maxBytes: number): Uint8Array {
  return readChecked(path, () =>
    readRegularFile(path, {
      what: 'ELF file',
      maxBytes,
      checkHead: (head) => parseElfHeader(head, path),
      tooLarge: (size) =>
        `The ELF file ${path} is ${size} bytes, more than the ${maxBytes} procsnap reads here ` +
        `(its symbols would take seconds and as much memory to parse). Strip it (debug info in a separate file).`,
    }),
  )
}

/** Forgets every cached parse. */
export function clearElfCache(): void {
  cache.clear()
}

/** The cache's counters (`parses`: files parsed by readElf since the process started) and its bound. */
export function elfCacheStats(): BudgetCacheStats & { parses: number } {
  return { ...cache.stats(), parses }
}

/** Sets the cache's bound in estimated bytes (default DEFAULT_ELF_CACHE_BYTES), dropping the oldest entries beyond it. */
export function setElfCacheBytes(maxBytes: number): void {
  cache.maxCost = maxBytes
  cache.trim()
}

function statFile(path: string): BigIntStats {
  let stats: BigIntStats
  try {
    stats = statSync(path, { bigint: true })
  } catch (error) {
    throw toBinaryError(path, error)
  }
  if (!stats.isFile()) throw notRegular(path)
  return stats
}

/** Runs a bounded read, turning its FileErrors into the BinaryErrors readElf has always thrown (ERR_FILE_TOO_LARGE stays). */
function readChecked(path: string, read: () => Buffer | undefined): Uint8Array {
  let bytes: Buffer | undefined
  try {
    bytes = read()
  } catch (error) {
    if (!(error instanceof FileError) || error.code === 'ERR_FILE_TOO_LARGE') throw error
    if (error.code === 'ERR_NOT_A_FILE') throw notRegular(path)
    throw new BinaryError('ERR_NOT_EXECUTABLE', path, error.message)
  }
  if (!bytes) throw notFound(path)
  return bytes
}

function notFound(path: string): BinaryError {
  return new BinaryError(
    'ERR_FILE_NOT_FOUND',
    path,
    `${path} does not exist. Check the path, or build the binary first.`,
  )
}

function notRegular(path: string): BinaryError {
  return new BinaryError('ERR_NOT_ELF', path, `${path} is not a regular file. Point at a compiled binary.`)
}

function toBinaryError(path: string, error: unknown): unknown {
  const code = (error as NodeJS.ErrnoException | undefined)?.code
  if (code === 'ENOENT' || code === 'ENOTDIR') return notFound(path)
  if (code === 'EACCES' || code === 'EPERM') {
    return new BinaryError('ERR_NOT_EXECUTABLE', path, `${path} cannot be read (${code}). Check its permissions.`)
  }
  return error
}

/**
 * Images parsed from a process's memory (the vDSO, as the kernel maps it and as the virtual clock
 * patches it), newest first: the same few images come back at every launch and every capture.
 */
const images: { bytes: Buffer; name: string; elf: ElfFile }[] = []
const MAX_IMAGES = 4

/** parseElf of an image read from memory, reusing an earlier result when the bytes are the same. */
export function parseImage(bytes: Uint8Array, name: string): ElfFile {
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const at = images.findIndex((i) => i.name === name && i.bytes.equals(view))
  const hit = at >= 0 ? images.splice(at, 1)[0] : undefined
  const entry = hit ?? { bytes: Buffer.from(view), name, elf: parseElf(bytes, name) } // a copy: the caller's may change
  images.unshift(entry)
  images.length = Math.min(images.length, MAX_IMAGES)
  return entry.elf
}
