// Parses a whole ELF file from bytes into an ElfFile: header, segments, sections, dynamic info, build-id, symbols.
import { ProcsnapError } from '../errors.js'
import { readDynamic, DF_1_PIE } from './dynamic.js'
import { createElfReader, parseFileHeader, resolveExtendedCounts, toHeaderInfo } from './header.js'
import { createSymbolIndex } from './lookup.js'
import { createNameList, findNearNames, type NameList } from './near.js'
import { readBuildId } from './notes.js'
import { createCorruptError } from './reader.js'
import { parseSections, toPublicSection } from './sections.js'
import {
  findMinLoadVaddr,
  mapFileOffsetToVaddr,
  mapVaddrToFileOffset,
  parseSegments,
  readInterpreter,
} from './segments.js'
import { readRelocations } from './relocations.js'
import { readSymbols } from './symbols.js'
import type { ElfFile } from './types.js'

/**
 * Parses `bytes` (the whole file) as ELF32/ELF64, either byte order. `path` is used in errors and kept on the result.
 * Throws BinaryError ERR_NOT_ELF for a non-ELF file and ERR_ELF_CORRUPT for a truncated or malformed one.
 */
export function parseElf(bytes: Uint8Array, path: string): ElfFile {
  try {
    return buildElfFile(bytes, path)
  } catch (error) {
    if (error instanceof ProcsnapError) throw error
    // Safety net: a read the bounds checks missed must still surface as a corrupt file, not a RangeError.
    const message = error instanceof Error ? error.message : String(error)
    throw createCorruptError(path, `unexpected structure (${message})`)
  }
}

/** The GNU build-id alone (header, segments, sections, notes): whether a file is the one a snapshot names, before parsing its symbols. */
export function peekBuildId(bytes: Uint8Array, path: string): string | undefined {
  try {
    const r = createElfReader(bytes, path)
    const header = resolveExtendedCounts(r, parseFileHeader(r))
    return readBuildId(r, parseSegments(r, header), parseSections(r, header))
  } catch (error) {
    if (error instanceof ProcsnapError) throw error
    const message = error instanceof Error ? error.message : String(error)
    throw createCorruptError(path, `unexpected structure (${message})`)
  }
}

function buildElfFile(bytes: Uint8Array, path: string): ElfFile {
  const r = createElfReader(bytes, path)
  const header = resolveExtendedCounts(r, parseFileHeader(r))
  const segments = parseSegments(r, header).map((s) => Object.freeze(s))
  const sectionHeaders = parseSections(r, header)
  const interpreter = readInterpreter(r, segments)
  const dynamic = readDynamic(r, segments, sectionHeaders)
  const buildId = readBuildId(r, segments, sectionHeaders)
  const { symbols, hidden } = readSymbols(r, sectionHeaders)
  for (const symbol of symbols) Object.freeze(symbol)
  const index = createSymbolIndex(symbols, hidden)
  let names: NameList | undefined
  const isDyn = header.type === 'dyn'
  return Object.freeze({
    ...toHeaderInfo(header),
    path,
    sections: Object.freeze(sectionHeaders.map((s) => Object.freeze(toPublicSection(s)))),
    segments: Object.freeze(segments),
    interpreter,
    isPie: isDyn && (interpreter !== undefined || (dynamic.flags1 & DF_1_PIE) !== 0n),
    isStatic: interpreter === undefined && (!dynamic.hasDynamic || (isDyn && dynamic.needed.length === 0)),
    soname: dynamic.soname,
    needed: Object.freeze(dynamic.needed),
    buildId,
    minLoadVaddr: findMinLoadVaddr(segments),
    symbols: Object.freeze(symbols),
    findSymbol: (name: string) => index.findSymbol(name),
    symbolize: (vaddr: bigint) => index.symbolize(vaddr),
    nearNames: (name: string, max?: number) => findNearNames((names ??= createNameList(symbols)), name, max),
    relocatedSlots: new Map(readRelocations(r, sectionHeaders).map((x) => [x.offset, x.symbol])),
    vaddrToFileOffset: (vaddr: bigint) => mapVaddrToFileOffset(segments, vaddr),
    fileOffsetToVaddr: (offset: bigint) => mapFileOffsetToVaddr(segments, offset),
  })
}
