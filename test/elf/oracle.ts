// Test helpers: binutils (readelf) as the oracle for the ELF reader, and compiling tiny C programs.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export const LIBC = '/lib/x86_64-linux-gnu/libc.so.6'
export const LDSO = '/lib64/ld-linux-x86-64.so.2'

export function run(command: string, args: string[]): string {
  return execFileSync(command, args, {
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    env: { ...process.env, LC_ALL: 'C' },
  })
}

export function makeTempDir(): string {
  return mkdtempSync(join(tmpdir(), 'procsnap-elf-'))
}

/** Writes `source` to dir/name.c and compiles it to dir/name with `flags`. */
export function compileC(dir: string, name: string, source: string, flags: string[]): string {
  const src = join(dir, `${name}.c`)
  const out = join(dir, name)
  writeFileSync(src, source)
  run('gcc', ['-O0', ...flags, src, '-o', out])
  return out
}

export interface ReadelfSymbol {
  value: bigint
  size: bigint
  type: string
  bind: string
  ndx: string
  /** As readelf prints it, e.g. 'memcpy@@GLIBC_2.14' (a trailing ' (3)' removed). */
  name: string
}

/** The symbols of one table ('.symtab' or '.dynsym') as `readelf -sW` prints them. */
export function readelfSymbols(path: string, table: '.symtab' | '.dynsym'): ReadelfSymbol[] {
  const out: ReadelfSymbol[] = []
  let current = ''
  for (const line of run('readelf', ['-sW', path]).split('\n')) {
    const header = /^Symbol table '([^']+)'/.exec(line)
    if (header !== null) current = header[1] ?? ''
    const m = /^\s*\d+:\s+([0-9a-f]+)\s+(0x[0-9a-f]+|\d+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s?(.*)$/.exec(line)
    if (m === null || current !== table) continue
    out.push({
      value: BigInt(`0x${m[1]}`),
      size: BigInt(m[2] ?? ''),
      type: m[3] ?? '',
      bind: m[4] ?? '',
      ndx: m[6] ?? '',
      name: (m[7] ?? '').replace(/ \(\d+\)$/, ''),
    })
  }
  return out
}

/** Defined, named, non-SECTION/FILE symbols: the ones ElfFile.symbols should hold. */
export function definedSymbols(symbols: readonly ReadelfSymbol[]): ReadelfSymbol[] {
  return symbols.filter((s) => s.ndx !== 'UND' && s.name !== '' && s.type !== 'SECTION' && s.type !== 'FILE')
}

export interface ReadelfSegment {
  type: string
  offset: bigint
  vaddr: bigint
  filesz: bigint
  memsz: bigint
  flags: string
  align: bigint
}

export function readelfSegments(path: string): ReadelfSegment[] {
  const out: ReadelfSegment[] = []
  for (const line of run('readelf', ['-lW', path]).split('\n')) {
    const m =
      /^\s+([A-Z_]+|0x[0-9a-f]+)\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+)\s+0x[0-9a-f]+\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+)\s+([RWE ]+?)\s+(0x[0-9a-f]+)$/.exec(
        line,
      )
    if (m === null) continue
    out.push({
      type: m[1] ?? '',
      offset: BigInt(m[2] ?? ''),
      vaddr: BigInt(m[3] ?? ''),
      filesz: BigInt(m[4] ?? ''),
      memsz: BigInt(m[5] ?? ''),
      flags: (m[6] ?? '').replace(/ /g, ''),
      align: BigInt(m[7] ?? ''),
    })
  }
  return out
}

export interface ReadelfSection {
  index: number
  name: string
  type: string
  addr: bigint
  offset: bigint
  size: bigint
}

/** Sections 1..n of `readelf -SW` (section 0 has no name and is skipped). */
export function readelfSections(path: string): ReadelfSection[] {
  const out: ReadelfSection[] = []
  for (const line of run('readelf', ['-SW', path]).split('\n')) {
    const m = /^\s*\[\s*(\d+)\]\s+(\S+)\s+(\S+)\s+([0-9a-f]+)\s+([0-9a-f]+)\s+([0-9a-f]+)\s/.exec(line)
    if (m === null || m[1] === '0') continue
    out.push({
      index: Number(m[1]),
      name: m[2] ?? '',
      type: m[3] ?? '',
      addr: BigInt(`0x${m[4]}`),
      offset: BigInt(`0x${m[5]}`),
      size: BigInt(`0x${m[6]}`),
    })
  }
  return out
}

export interface ReadelfHeader {
  type: string
  machine: string
  entry: bigint
  sectionCount: number
  segmentCount: number
}

export function readelfHeader(path: string): ReadelfHeader {
  const text = run('readelf', ['-hW', path])
  const field = (label: string): string => new RegExp(`^\\s*${label}:\\s+(.*)$`, 'm').exec(text)?.[1]?.trim() ?? ''
  return {
    type: field('Type').split(' ')[0] ?? '',
    machine: field('Machine'),
    entry: BigInt(field('Entry point address')),
    sectionCount: Number(field('Number of section headers')),
    segmentCount: Number(field('Number of program headers')),
  }
}

export function readelfBuildId(path: string): string | undefined {
  return /Build ID: ([0-9a-f]+)/.exec(run('readelf', ['-nW', path]))?.[1]
}

export interface ReadelfDynamic {
  needed: string[]
  soname: string | undefined
  flags1: string
}

export function readelfDynamic(path: string): ReadelfDynamic {
  const text = run('readelf', ['-dW', path])
  return {
    needed: [...text.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1] ?? ''),
    soname: /\(SONAME\)\s+Library soname: \[([^\]]+)\]/.exec(text)?.[1],
    flags1: /\(FLAGS_1\)\s+Flags: (.*)$/m.exec(text)?.[1]?.trim() ?? '',
  }
}

export function readelfInterpreter(path: string): string | undefined {
  return /\[Requesting program interpreter: ([^\]]+)\]/.exec(run('readelf', ['-lW', path]))?.[1]
}

/** e_type names as readelf prints them -> our ElfHeaderInfo['type']. */
export const FILE_TYPES: Record<string, string> = { EXEC: 'exec', DYN: 'dyn', REL: 'rel', CORE: 'core' }

/** p_type names as readelf prints them -> numbers. */
export const SEGMENT_TYPES: Record<string, number> = {
  NULL: 0,
  LOAD: 1,
  DYNAMIC: 2,
  INTERP: 3,
  NOTE: 4,
  SHLIB: 5,
  PHDR: 6,
  TLS: 7,
  GNU_EH_FRAME: 0x6474e550,
  GNU_STACK: 0x6474e551,
  GNU_RELRO: 0x6474e552,
  GNU_PROPERTY: 0x6474e553,
}

/** sh_type names as readelf prints them -> numbers (others are not compared). */
export const SECTION_TYPES: Record<string, number> = {
  PROGBITS: 1,
  SYMTAB: 2,
  STRTAB: 3,
  RELA: 4,
  HASH: 5,
  DYNAMIC: 6,
  NOTE: 7,
  NOBITS: 8,
  REL: 9,
  DYNSYM: 11,
  INIT_ARRAY: 14,
  FINI_ARRAY: 15,
  GNU_HASH: 0x6ffffff6,
  VERDEF: 0x6ffffffd,
  VERNEED: 0x6ffffffe,
  VERSYM: 0x6fffffff,
}

/** Segment p_flags (PF_X 1, PF_W 2, PF_R 4) as readelf's 'RWE' letters. */
export function flagLetters(flags: number): string {
  return `${flags & 4 ? 'R' : ''}${flags & 2 ? 'W' : ''}${flags & 1 ? 'E' : ''}`
}
