// Dynamic relocations (SHT_RELA against .dynsym): which symbol each relocated slot names. A golden
// writes a GOT slot that an ifunc filled by the symbol its relocation names, not by the CPU-specific
// variant the resolver picked (issue 10: glibc's choice of strlen differs between CPUs).
import type { ElfReader } from './reader.js'
import { linkedSection, sectionBytes, type SectionHeader } from './sections.js'

const SHT_RELA = 4
const SHT_DYNSYM = 11

/** A relocated slot: its link-time address and the symbol its relocation names. */
export interface ElfRelocation {
  readonly offset: bigint
  readonly type: number
  readonly symbol: string
  readonly addend: bigint
}

/** Every RELA relocation against .dynsym that names a symbol (64-bit files; others have none here). */
export function readRelocations(r: ElfReader, sections: readonly SectionHeader[]): ElfRelocation[] {
  if (!r.is64) return []
  const out: ElfRelocation[] = []
  for (const s of sections) {
    if (s.type !== SHT_RELA) continue
    const symtab = sections[s.link]
    if (!symtab || symtab.type !== SHT_DYNSYM) continue
    const what = `relocations (section ${s.index})`
    const span = sectionBytes(r, s, what)
    const syms = sectionBytes(r, symtab, `.dynsym of ${what}`)
    const strings = sectionBytes(r, linkedSection(r, sections, symtab), `.dynstr of ${what}`)
    const view = r.view
    const le = r.little
    const names = new Map<number, string>() // node has hundreds of thousands of relocations, few names
    for (let at = span.start; at + 24 <= span.end; at += 24) {
      const info = view.getBigUint64(at + 8, le)
      const index = Number(info >> 32n)
      const entry = syms.start + index * 24
      if (index === 0 || entry + 24 > syms.end) continue
      let name = names.get(index)
      if (name === undefined) {
        name = r.string(strings, view.getUint32(entry, le), `${what} symbol ${index}`)
        names.set(index, name)
      }
      if (name === '') continue
      out.push({
        offset: view.getBigUint64(at, le),
        type: Number(info & 0xffffffffn),
        symbol: name,
        addend: view.getBigInt64(at + 16, le),
      })
    }
  }
  return out
}
