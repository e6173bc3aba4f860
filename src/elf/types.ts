// Public types of the ELF reader: header facts, sections, segments, symbols and the parsed-file handle.

export type ElfArch = 'x86_64' | 'aarch64' | 'i386' | 'arm' | 'riscv64' | 'unknown'

/** What the first 52/64 bytes of an ELF file say. */
export interface ElfHeaderInfo {
  class: 32 | 64
  endian: 'little' | 'big'
  machine: number
  arch: ElfArch
  type: 'exec' | 'dyn' | 'rel' | 'core' | 'other'
  entry: bigint
}

export type SymbolType = 'func' | 'object' | 'notype' | 'tls' | 'ifunc' | 'section' | 'file' | 'common' | 'other'

export interface ElfSymbol {
  name: string
  value: bigint
  size: bigint
  type: SymbolType
  bind: 'local' | 'global' | 'weak' | 'other'
  sectionIndex: number
  source: 'symtab' | 'dynsym'
  /** GNU symbol version, e.g. 'GLIBC_2.2.5', from .gnu.version/.gnu.version_d/.gnu.version_r or a 'name@VERSION' symtab name. */
  version?: string
}

export interface ElfSection {
  name: string
  type: number
  flags: bigint
  addr: bigint
  offset: bigint
  size: bigint
}

export interface ElfSegment {
  type: number
  flags: number
  offset: bigint
  vaddr: bigint
  filesz: bigint
  memsz: bigint
  align: bigint
}

/** A symbol containing an address, and the address's distance from the symbol's start. */
export interface SymbolHit {
  symbol: ElfSymbol
  offset: bigint
}

export interface ElfFile extends ElfHeaderInfo {
  path: string
  sections: readonly ElfSection[]
  segments: readonly ElfSegment[]
  /** PT_INTERP string. */
  interpreter: string | undefined
  /** ET_DYN with PT_INTERP, or DF_1_PIE in DT_FLAGS_1. */
  isPie: boolean
  /** No PT_INTERP and no PT_DYNAMIC; or ET_DYN without PT_INTERP and without DT_NEEDED (static-pie). */
  isStatic: boolean
  /** DT_SONAME. */
  soname: string | undefined
  /** DT_NEEDED entries in order. */
  needed: readonly string[]
  /** NT_GNU_BUILD_ID as lowercase hex. */
  buildId: string | undefined
  /** Lowest PT_LOAD p_vaddr rounded down to its p_align: the link-time base (0 for PIE and shared objects). */
  minLoadVaddr: bigint
  /** Defined, named symbols from .symtab and .dynsym (no section/file symbols), deduplicated, sorted by value. */
  symbols: readonly ElfSymbol[]
  /** Exact name, or 'name@VERSION' / 'name@@VERSION'; prefers global func/object, non-zero size. */
  findSymbol(name: string): ElfSymbol | undefined
  /**
   * Link-time virtual address -> containing symbol (size-0 symbols match only exactly; TLS and SHN_ABS
   * symbols never); prefers func/object.
   */
  symbolize(vaddr: bigint): SymbolHit | undefined
  /** Suggestions for an unknown symbol name, best first (default at most 5). */
  nearNames(name: string, max?: number): string[]
  /** Dynamic relocations that name a symbol (.rela.dyn, .rela.plt), by slot: link-time address -> symbol. */
  relocatedSlots: ReadonlyMap<bigint, string>
  /** Link-time virtual address -> file offset, through the PT_LOAD segments. */
  vaddrToFileOffset(vaddr: bigint): bigint | undefined
  /** File offset -> link-time virtual address, through the PT_LOAD segments. */
  fileOffsetToVaddr(offset: bigint): bigint | undefined
}
