// Section headers: parsing, names from .shstrtab, and validated access to a section's bytes.
import type { ElfFileHeader } from './header.js'
import type { ByteSpan, ElfReader } from './reader.js'
import type { ElfSection } from './types.js'

export const SHT_NULL = 0
export const SHT_SYMTAB = 2
export const SHT_STRTAB = 3
export const SHT_DYNAMIC = 6
export const SHT_NOTE = 7
export const SHT_NOBITS = 8
export const SHT_DYNSYM = 11
export const SHT_SYMTAB_SHNDX = 18
export const SHT_GNU_VERDEF = 0x6ffffffd
export const SHT_GNU_VERNEED = 0x6ffffffe
export const SHT_GNU_VERSYM = 0x6fffffff

/** A section header with the fields the parser needs beyond the public ElfSection. */
export interface SectionHeader extends ElfSection {
  index: number
  link: number
  info: number
  addralign: bigint
  entsize: bigint
}

/** Reads the section header table and names; each section's file bytes must lie inside the file. */
export function parseSections(r: ElfReader, h: ElfFileHeader): SectionHeader[] {
  if (h.shoff === 0n || h.shnum === 0) return []
  const minSize = r.is64 ? 64 : 40
  if (h.shentsize < minSize) throw r.corrupt(`e_shentsize is ${h.shentsize}, expected at least ${minSize}`)
  const table = r.table(h.shoff, h.shnum, h.shentsize, 'section header table')
  const nameIndexes: number[] = []
  const sections: SectionHeader[] = []
  for (let i = 0; i < h.shnum; i++) {
    const at = table.start + i * h.shentsize
    nameIndexes.push(r.u32(at))
    const w = r.is64 ? 8 : 4
    const section: SectionHeader = {
      name: '',
      type: r.u32(at + 4),
      flags: r.word(at + 8),
      addr: r.word(at + 8 + w),
      offset: r.word(at + 8 + 2 * w),
      size: r.word(at + 8 + 3 * w),
      index: i,
      link: r.u32(at + 8 + 4 * w),
      info: r.u32(at + 12 + 4 * w),
      addralign: r.word(at + 16 + 4 * w),
      entsize: r.word(at + 16 + 5 * w),
    }
    if (section.type !== SHT_NOBITS && section.type !== SHT_NULL && section.size > 0n) {
      r.span(section.offset, section.size, `section ${i} (type ${section.type})`)
    }
    sections.push(section)
  }
  nameSections(r, h, sections, nameIndexes)
  return sections
}

function nameSections(r: ElfReader, h: ElfFileHeader, sections: SectionHeader[], nameIndexes: number[]): void {
  if (h.shstrndx === 0) return
  const strtab = sections[h.shstrndx]
  if (strtab === undefined) {
    throw r.corrupt(`e_shstrndx ${h.shstrndx} names no section (there are ${sections.length})`)
  }
  const names = sectionBytes(r, strtab, 'section name string table')
  for (const section of sections) {
    section.name = r.string(names, nameIndexes[section.index] ?? 0, `section ${section.index}`)
  }
}

/** The file bytes of a section (empty for SHT_NOBITS). */
export function sectionBytes(r: ElfReader, section: SectionHeader, what: string): ByteSpan {
  if (section.type === SHT_NOBITS) return { start: 0, end: 0 }
  return r.span(section.offset, section.size, `${what} (section ${section.index})`)
}

/** The section that `section.link` points to, which must exist. */
export function linkedSection(r: ElfReader, sections: readonly SectionHeader[], section: SectionHeader): SectionHeader {
  const target = sections[section.link]
  if (target === undefined || section.link === 0) {
    throw r.corrupt(`section ${section.index} (${section.name}) links to section ${section.link}, which does not exist`)
  }
  return target
}

/** The public view of a section header. */
export function toPublicSection(s: SectionHeader): ElfSection {
  return { name: s.name, type: s.type, flags: s.flags, addr: s.addr, offset: s.offset, size: s.size }
}
