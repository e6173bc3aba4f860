// The dynamic section: DT_NEEDED, DT_SONAME and DT_FLAGS_1, with names from the dynamic string table.
import type { ByteSpan, ElfReader } from './reader.js'
import { SHT_DYNAMIC, linkedSection, sectionBytes, type SectionHeader } from './sections.js'
import { PT_DYNAMIC, mapVaddrToFileOffset } from './segments.js'
import type { ElfSegment } from './types.js'

export interface DynamicInfo {
  hasDynamic: boolean
  needed: string[]
  soname: string | undefined
  flags1: bigint
}

export const DF_1_PIE = 0x08000000n
const DT_NULL = 0n
const DT_NEEDED = 1n
const DT_STRTAB = 5n
const DT_STRSZ = 10n
const DT_SONAME = 14n
const DT_FLAGS_1 = 0x6ffffffbn

/** Reads PT_DYNAMIC (or the SHT_DYNAMIC section when there are no program headers). */
export function readDynamic(
  r: ElfReader,
  segments: readonly ElfSegment[],
  sections: readonly SectionHeader[],
): DynamicInfo {
  const segment = segments.find((s) => s.type === PT_DYNAMIC)
  const section = sections.find((s) => s.type === SHT_DYNAMIC)
  const span =
    segment !== undefined
      ? r.span(segment.offset, segment.filesz, 'PT_DYNAMIC segment')
      : section !== undefined
        ? sectionBytes(r, section, '.dynamic')
        : undefined
  const info: DynamicInfo = { hasDynamic: span !== undefined, needed: [], soname: undefined, flags1: 0n }
  if (span === undefined) return info
  const entsize = r.is64 ? 16 : 8
  const needed: bigint[] = []
  let soname: bigint | undefined
  let strtab: bigint | undefined
  let strsz: bigint | undefined
  for (let at = span.start; at + entsize <= span.end; at += entsize) {
    const tag = r.word(at)
    const value = r.word(at + entsize / 2)
    if (tag === DT_NULL) break
    if (tag === DT_NEEDED) needed.push(value)
    else if (tag === DT_SONAME) soname = value
    else if (tag === DT_STRTAB) strtab = value
    else if (tag === DT_STRSZ) strsz = value
    else if (tag === DT_FLAGS_1) info.flags1 = value
  }
  if (needed.length === 0 && soname === undefined) return info
  const strings = findStringTable(r, segments, sections, section, strtab, strsz)
  const name = (offset: bigint, what: string): string => {
    if (offset > BigInt(r.length))
      throw r.corrupt(`${what} string offset ${offset} is outside the dynamic string table`)
    return r.string(strings, Number(offset), what)
  }
  info.needed = needed.map((offset) => name(offset, 'DT_NEEDED'))
  info.soname = soname === undefined ? undefined : name(soname, 'DT_SONAME')
  return info
}

/** DT_STRTAB mapped through PT_LOAD, else the string table linked from the .dynamic section. */
function findStringTable(
  r: ElfReader,
  segments: readonly ElfSegment[],
  sections: readonly SectionHeader[],
  dynamicSection: SectionHeader | undefined,
  strtab: bigint | undefined,
  strsz: bigint | undefined,
): ByteSpan {
  const offset = strtab === undefined ? undefined : mapVaddrToFileOffset(segments, strtab)
  if (offset !== undefined) {
    const size = strsz ?? BigInt(r.length) - offset
    return r.span(offset, size, 'dynamic string table (DT_STRTAB, DT_STRSZ)')
  }
  if (dynamicSection !== undefined) {
    return sectionBytes(r, linkedSection(r, sections, dynamicSection), 'dynamic string table')
  }
  throw r.corrupt('the dynamic section has DT_NEEDED or DT_SONAME entries but no string table (DT_STRTAB)')
}
