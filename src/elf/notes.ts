// ELF notes: finds NT_GNU_BUILD_ID in PT_NOTE segments (or SHT_NOTE sections when there are none).
import type { ByteSpan, ElfReader } from './reader.js'
import { SHT_NOTE, sectionBytes, type SectionHeader } from './sections.js'
import { PT_NOTE } from './segments.js'
import type { ElfSegment } from './types.js'

const NT_GNU_BUILD_ID = 3

/** The GNU build-id as lowercase hex, or undefined when the file has none. */
export function readBuildId(
  r: ElfReader,
  segments: readonly ElfSegment[],
  sections: readonly SectionHeader[],
): string | undefined {
  const areas: { span: ByteSpan; align: number; what: string }[] = []
  for (const [i, s] of segments.entries()) {
    if (s.type === PT_NOTE)
      areas.push({
        span: r.span(s.offset, s.filesz, `PT_NOTE segment ${i}`),
        align: s.align === 8n ? 8 : 4,
        what: `PT_NOTE segment ${i}`,
      })
  }
  if (areas.length === 0) {
    for (const s of sections) {
      if (s.type === SHT_NOTE)
        areas.push({
          span: sectionBytes(r, s, 'note section'),
          align: s.addralign === 8n ? 8 : 4,
          what: `note section ${s.name}`,
        })
    }
  }
  for (const area of areas) {
    const id = findBuildIdNote(r, area.span, area.align, area.what)
    if (id !== undefined) return id
  }
  return undefined
}

/** Walks the notes of one area: Elf_Nhdr (namesz, descsz, type), name and desc each padded to `align`. */
function findBuildIdNote(r: ElfReader, span: ByteSpan, align: number, what: string): string | undefined {
  let at = span.start
  while (at + 12 <= span.end) {
    const namesz = r.u32(at)
    const descsz = r.u32(at + 4)
    const type = r.u32(at + 8)
    const descStart = at + roundUp(12 + namesz, align)
    const descEnd = descStart + descsz
    if (descEnd > span.end)
      throw r.corrupt(`a note in ${what} (namesz ${namesz}, descsz ${descsz}) extends past its end`)
    if (type === NT_GNU_BUILD_ID && namesz === 4 && isGnuName(r.bytes, at + 12)) {
      return Buffer.from(r.bytes.subarray(descStart, descEnd)).toString('hex')
    }
    at = roundUp(descEnd - span.start, align) + span.start
  }
  return undefined
}

function isGnuName(bytes: Uint8Array, at: number): boolean {
  return bytes[at] === 0x47 && bytes[at + 1] === 0x4e && bytes[at + 2] === 0x55 && bytes[at + 3] === 0
}

function roundUp(value: number, align: number): number {
  return Math.ceil(value / align) * align
}
