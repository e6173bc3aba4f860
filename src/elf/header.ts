// Parses e_ident and the ELF file header: class, endianness, machine, type, entry and where the tables are.
import { BinaryError } from '../errors.js'
import { ElfReader } from './reader.js'
import type { ElfArch, ElfHeaderInfo } from './types.js'

/** The file header with the table locations the rest of the parser needs. */
export interface ElfFileHeader extends ElfHeaderInfo {
  phoff: bigint
  shoff: bigint
  phentsize: number
  phnum: number
  shentsize: number
  shnum: number
  shstrndx: number
}

const PN_XNUM = 0xffff
const SHN_XINDEX = 0xffff

/** Checks the magic and e_ident, and returns a reader for the file's class and byte order. */
export function createElfReader(bytes: Uint8Array, path: string): ElfReader {
  if (bytes.length < 4 || bytes[0] !== 0x7f || bytes[1] !== 0x45 || bytes[2] !== 0x4c || bytes[3] !== 0x46) {
    throw new BinaryError(
      'ERR_NOT_ELF',
      path,
      `${path} is not an ELF file (it does not start with the bytes 7f 45 4c 46). Point at a ` +
        `compiled binary, not a script, text file or archive.`,
    )
  }
  const reader = (is64: boolean, little: boolean): ElfReader => new ElfReader(bytes, path, is64, little)
  if (bytes.length < 16)
    throw reader(true, true).corrupt(`the ELF identification needs 16 bytes but the file has ${bytes.length}`)
  const elfClass = bytes[4]
  const data = bytes[5]
  if (elfClass !== 1 && elfClass !== 2)
    throw reader(true, true).corrupt(`unknown ELF class ${elfClass} (expected 1 or 2)`)
  if (data !== 1 && data !== 2) throw reader(true, true).corrupt(`unknown ELF data encoding ${data} (expected 1 or 2)`)
  return reader(elfClass === 2, data === 1)
}

/** Reads the 52-byte (ELF32) or 64-byte (ELF64) file header. */
export function parseFileHeader(r: ElfReader): ElfFileHeader {
  const size = r.is64 ? 64 : 52
  if (r.length < size) throw r.corrupt(`the ELF header needs ${size} bytes but the file has ${r.length}`)
  const machine = r.u16(0x12)
  const at = r.is64
    ? { entry: 0x18, phoff: 0x20, shoff: 0x28, phentsize: 0x36 }
    : { entry: 0x18, phoff: 0x1c, shoff: 0x20, phentsize: 0x2a }
  return {
    class: r.is64 ? 64 : 32,
    endian: r.little ? 'little' : 'big',
    machine,
    arch: toArch(machine, r.is64),
    type: toFileType(r.u16(0x10)),
    entry: r.word(at.entry),
    phoff: r.word(at.phoff),
    shoff: r.word(at.shoff),
    phentsize: r.u16(at.phentsize),
    phnum: r.u16(at.phentsize + 2),
    shentsize: r.u16(at.phentsize + 4),
    shnum: r.u16(at.phentsize + 6),
    shstrndx: r.u16(at.phentsize + 8),
  }
}

/** Applies ELF extended numbering: section 0 holds the real counts when they overflow 16 bits. */
export function resolveExtendedCounts(r: ElfReader, h: ElfFileHeader): ElfFileHeader {
  const extended = h.shnum === 0 || h.shstrndx === SHN_XINDEX || h.phnum === PN_XNUM
  if (h.shoff === 0n || !extended) return h
  const entsize = r.is64 ? 64 : 40
  if (h.shentsize < entsize) throw r.corrupt(`e_shentsize is ${h.shentsize}, expected at least ${entsize}`)
  const first = r.span(h.shoff, BigInt(entsize), 'section header 0')
  const size = r.word(first.start + (r.is64 ? 32 : 20))
  const link = r.u32(first.start + (r.is64 ? 40 : 24))
  const info = r.u32(first.start + (r.is64 ? 44 : 28))
  const shnum = h.shnum === 0 ? size : BigInt(h.shnum)
  if (shnum > BigInt(r.length)) throw r.corrupt(`section count ${shnum} in section header 0 is larger than the file`)
  return {
    ...h,
    shnum: Number(shnum),
    shstrndx: h.shstrndx === SHN_XINDEX ? link : h.shstrndx,
    phnum: h.phnum === PN_XNUM ? info : h.phnum,
  }
}

/** The public subset of a parsed file header. */
export function toHeaderInfo(h: ElfHeaderInfo): ElfHeaderInfo {
  return { class: h.class, endian: h.endian, machine: h.machine, arch: h.arch, type: h.type, entry: h.entry }
}

/** Parses only the header of `bytes` (at least the first 64 bytes of a file). */
export function parseElfHeader(bytes: Uint8Array, path: string): ElfHeaderInfo {
  return toHeaderInfo(parseFileHeader(createElfReader(bytes, path)))
}

function toArch(machine: number, is64: boolean): ElfArch {
  switch (machine) {
    case 62:
      return 'x86_64'
    case 183:
      return 'aarch64'
    case 3:
      return 'i386'
    case 40:
      return 'arm'
    case 243:
      return is64 ? 'riscv64' : 'unknown'
    default:
      return 'unknown'
  }
}

function toFileType(type: number): ElfHeaderInfo['type'] {
  switch (type) {
    case 1:
      return 'rel'
    case 2:
      return 'exec'
    case 3:
      return 'dyn'
    case 4:
      return 'core'
    default:
      return 'other'
  }
}
