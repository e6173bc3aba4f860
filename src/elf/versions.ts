// GNU symbol versions of .dynsym entries, from .gnu.version with .gnu.version_d and .gnu.version_r.
import type { ElfReader } from './reader.js'
import {
  SHT_GNU_VERDEF,
  SHT_GNU_VERNEED,
  SHT_GNU_VERSYM,
  linkedSection,
  sectionBytes,
  type SectionHeader,
} from './sections.js'

/** A symbol's version name, and whether it is hidden (a non-default 'name@VERSION'). */
export interface SymbolVersion {
  name: string
  hidden: boolean
}

const VERSYM_HIDDEN = 0x8000

/** Versions of the entries of `dynsym`, indexed like its entries; empty when the file has no .gnu.version. */
export function readSymbolVersions(
  r: ElfReader,
  sections: readonly SectionHeader[],
  dynsym: SectionHeader,
): (SymbolVersion | undefined)[] {
  const versym = sections.find((s) => s.type === SHT_GNU_VERSYM && s.link === dynsym.index)
  if (versym === undefined) return []
  const names = new Map<number, string>()
  for (const s of sections) {
    if (s.type === SHT_GNU_VERDEF) readVerdef(r, sections, s, names)
    if (s.type === SHT_GNU_VERNEED) readVerneed(r, sections, s, names)
  }
  const span = sectionBytes(r, versym, '.gnu.version')
  const versions: (SymbolVersion | undefined)[] = []
  for (let at = span.start; at + 2 <= span.end; at += 2) {
    const raw = r.u16(at)
    const name = names.get(raw & ~VERSYM_HIDDEN)
    versions.push(name === undefined ? undefined : { name, hidden: (raw & VERSYM_HIDDEN) !== 0 })
  }
  return versions
}

/** Elf_Verdef chain: vd_ndx -> the name of its first Elf_Verdaux. */
function readVerdef(
  r: ElfReader,
  sections: readonly SectionHeader[],
  s: SectionHeader,
  names: Map<number, string>,
): void {
  const span = sectionBytes(r, s, '.gnu.version_d')
  const strings = sectionBytes(r, linkedSection(r, sections, s), '.gnu.version_d string table')
  let at = span.start
  for (let i = 0; i < s.info && at + 20 <= span.end; i++) {
    const flags = r.u16(at + 2)
    const ndx = r.u16(at + 4)
    const aux = r.u32(at + 12)
    const next = r.u32(at + 16)
    if (at + aux + 8 > span.end) throw r.corrupt(`.gnu.version_d entry ${i} has aux offset ${aux} outside the section`)
    if ((flags & 1) === 0) names.set(ndx, r.string(strings, r.u32(at + aux), `.gnu.version_d entry ${i}`))
    if (next === 0) break
    at += next
  }
}

/** Elf_Verneed chain: each Elf_Vernaux's vna_other -> its name. */
function readVerneed(
  r: ElfReader,
  sections: readonly SectionHeader[],
  s: SectionHeader,
  names: Map<number, string>,
): void {
  const span = sectionBytes(r, s, '.gnu.version_r')
  const strings = sectionBytes(r, linkedSection(r, sections, s), '.gnu.version_r string table')
  let at = span.start
  for (let i = 0; i < s.info && at + 16 <= span.end; i++) {
    const count = r.u16(at + 2)
    let aux = at + r.u32(at + 8)
    for (let j = 0; j < count; j++) {
      if (aux + 16 > span.end) throw r.corrupt(`.gnu.version_r entry ${i} has an auxiliary entry outside the section`)
      names.set(r.u16(aux + 6), r.string(strings, r.u32(aux + 8), `.gnu.version_r entry ${i}`))
      const nextAux = r.u32(aux + 12)
      if (nextAux === 0) break
      aux += nextAux
    }
    const next = r.u32(at + 12)
    if (next === 0) break
    at += next
  }
}
