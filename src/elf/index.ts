// Public API of the ELF reader: parse bytes, read (cached) files and headers, and the ELF types.
export { parseElf } from './parse.js'
export { parseElfHeader } from './header.js'
export { identifyFile, IDENTIFY_BYTES, type FileFormat } from './identify.js'
export { readElf, readElfHeader, clearElfCache, parseImage } from './cache.js'
export type {
  ElfArch,
  ElfFile,
  ElfHeaderInfo,
  ElfSection,
  ElfSegment,
  ElfSymbol,
  SymbolHit,
  SymbolType,
} from './types.js'
