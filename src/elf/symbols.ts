// Reads .symtab and .dynsym into one deduplicated, value-sorted list of defined, named symbols.
import type { ElfReader } from './reader.js'
import {
  SHT_DYNSYM,
  SHT_SYMTAB,
  SHT_SYMTAB_SHNDX,
  linkedSection,
  sectionBytes,
  type SectionHeader,
} from './sections.js'
import type { ElfSymbol, SymbolType } from './types.js'
import { readSymbolVersions, type SymbolVersion } from './versions.js'

/** The merged symbols, and which of them are hidden (non-default, 'name@VERSION') versions. */
export interface SymbolTable {
  symbols: ElfSymbol[]
  hidden: ReadonlySet<ElfSymbol>
}

interface Entry {
  symbol: ElfSymbol
  hidden: boolean
}

const SHN_UNDEF = 0
const SHN_XINDEX = 0xffff
const TYPES: Partial<Record<number, SymbolType>> = {
  0: 'notype',
  1: 'object',
  2: 'func',
  3: 'section',
  4: 'file',
  5: 'common',
  6: 'tls',
  10: 'ifunc',
}
const BINDS: Partial<Record<number, ElfSymbol['bind']>> = { 0: 'local', 1: 'global', 2: 'weak' }

/** All defined symbols, .symtab first; a .dynsym entry with the same name and value only adds its version. */
export function readSymbols(r: ElfReader, sections: readonly SectionHeader[]): SymbolTable {
  const kept = new Map<string, ElfSymbol>()
  const hidden = new Set<ElfSymbol>()
  for (const [source, type] of [
    ['symtab', SHT_SYMTAB],
    ['dynsym', SHT_DYNSYM],
  ] as const) {
    for (const section of sections) {
      if (section.type !== type) continue
      for (const entry of readTable(r, sections, section, source)) {
        const key = `${entry.symbol.name}\0${entry.symbol.value}`
        const existing = kept.get(key)
        if (existing === undefined || (existing.source === source && hidden.has(existing) && !entry.hidden)) {
          if (existing !== undefined) hidden.delete(existing)
          kept.set(key, entry.symbol)
          if (entry.hidden) hidden.add(entry.symbol)
        } else if (existing.version === undefined && entry.symbol.version !== undefined) {
          existing.version = entry.symbol.version
          if (entry.hidden) hidden.add(existing)
        }
      }
    }
  }
  const symbols = [...kept.values()].sort(compareByValue)
  return { symbols, hidden }
}

function readTable(
  r: ElfReader,
  sections: readonly SectionHeader[],
  s: SectionHeader,
  source: Entry['symbol']['source'],
): Entry[] {
  const what = `.${source} (section ${s.index})`
  const minSize = r.is64 ? 24 : 16
  if (s.entsize !== 0n && (s.entsize < BigInt(minSize) || s.entsize > BigInt(r.length))) {
    throw r.corrupt(`${what} has entry size ${s.entsize}, expected ${minSize}`)
  }
  const entsize = s.entsize === 0n ? minSize : Number(s.entsize)
  const span = sectionBytes(r, s, what)
  const count = Math.floor((span.end - span.start) / entsize)
  const strings = sectionBytes(r, linkedSection(r, sections, s), `${what} string table`)
  const shndxSection = sections.find((x) => x.type === SHT_SYMTAB_SHNDX && x.link === s.index)
  const shndx = shndxSection === undefined ? undefined : sectionBytes(r, shndxSection, `${what} SHT_SYMTAB_SHNDX`)
  const versions = source === 'dynsym' ? readSymbolVersions(r, sections, s) : []
  const view = r.view
  const le = r.little
  const entries: Entry[] = []
  for (let i = 1; i < count; i++) {
    const at = span.start + i * entsize
    const nameIndex = view.getUint32(at, le)
    const info = view.getUint8(at + (r.is64 ? 4 : 12))
    let sectionIndex = view.getUint16(at + (r.is64 ? 6 : 14), le)
    if (sectionIndex === SHN_UNDEF || nameIndex === 0) continue
    const type = TYPES[info & 0xf] ?? 'other'
    if (type === 'section' || type === 'file') continue
    if (sectionIndex === SHN_XINDEX && shndx !== undefined && shndx.start + i * 4 + 4 <= shndx.end) {
      sectionIndex = r.u32(shndx.start + i * 4)
    }
    const value = r.is64 ? view.getBigUint64(at + 8, le) : BigInt(view.getUint32(at + 4, le))
    const size = r.is64 ? view.getBigUint64(at + 16, le) : BigInt(view.getUint32(at + 8, le))
    const [name, version] = splitVersion(r.string(strings, nameIndex, `${what} symbol ${i}`), versions[i])
    const symbol: ElfSymbol = { name, value, size, type, bind: BINDS[info >> 4] ?? 'other', sectionIndex, source }
    if (version !== undefined) symbol.version = version.name
    entries.push({ symbol, hidden: version?.hidden ?? false })
  }
  return entries
}

/** Splits a 'name@VERSION' / 'name@@VERSION' symbol name (as .symtab stores them) into name and version. */
function splitVersion(name: string, version: SymbolVersion | undefined): [string, SymbolVersion | undefined] {
  const at = name.indexOf('@')
  if (at <= 0) return [name, version]
  const isDefault = name[at + 1] === '@'
  const versionName = name.slice(at + (isDefault ? 2 : 1))
  if (versionName === '') return [name, version]
  return [name.slice(0, at), version ?? { name: versionName, hidden: !isDefault }]
}

function compareByValue(a: ElfSymbol, b: ElfSymbol): number {
  if (a.value !== b.value) return a.value < b.value ? -1 : 1
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0
}
