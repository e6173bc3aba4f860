// Call-frame information from .eh_frame: the unwind row (CFA rule, register rules) in force at a link-time address.
import { copyState, runCfaProgram, type CfaRule, type CfaState, type RegisterRule } from './cfa-program.js'
import { DW_EH_PE_omit, DwarfCursor, pointerSize } from './dwarf-cursor.js'
import { checkExpression } from './dwarf-expr.js'
import { loadEhFrame, type EhFrame, type Fde } from './eh-frame-entries.js'
import type { ElfFile } from './types.js'

export type { CfaRule, RegisterRule } from './cfa-program.js'
export { evaluateExpression, checkExpression, type ExpressionContext } from './dwarf-expr.js'

/** An FDE: the link-time range [start, end) of one function (or PLT, or trampoline) it describes. */
export interface FdeInfo {
  /** Offset of the FDE in .eh_frame, and of its CIE. */
  readonly offset: number
  readonly cieOffset: number
  readonly start: bigint
  readonly end: bigint
}

/** The rules that hold for link-time addresses [start, end) of one FDE (DWARF register numbers). */
export interface UnwindRow {
  readonly start: bigint
  readonly end: bigint
  readonly fde: FdeInfo
  readonly cfa: CfaRule
  /** Registers with a rule; a register absent here keeps its value (same value) by the x86_64 and aarch64 ABIs' convention. */
  readonly registers: ReadonlyMap<number, RegisterRule>
  /** The column that holds the return address (16 on x86_64, 30 on aarch64). */
  readonly returnAddressRegister: number
  /** A signal trampoline's frame (CIE augmentation 'S'): the caller's pc is exact, not a return address. */
  readonly signalFrame: boolean
  /** aarch64: the return address is signed (DW_CFA_AARCH64_negate_ra_state toggled an odd number of times). */
  readonly raSigned: boolean
  /** Set when the row must not be used, and why: an unsupported DWARF operation, an unknown DW_CFA opcode, no CFA rule. */
  readonly unusable?: string
}

/** Per file: the decoded .eh_frame, and the sorted FDE index when there is no usable .eh_frame_hdr table. */
interface FileCfi {
  readonly eh: EhFrame
  index?: FdeInfo[]
}

const cache = new WeakMap<ElfFile, FileCfi | null>()

/**
 * The unwind row at link-time address `vaddr` of `elf`, or undefined when no FDE covers it (or the file has no CFI).
 * `bytes` is the whole file, when the caller holds it; otherwise the .eh_frame bytes are read from `elf.path` once.
 * A truncated or corrupt .eh_frame never throws: the address simply has no row.
 */
export function findUnwindRow(elf: ElfFile, vaddr: bigint, bytes?: Uint8Array): UnwindRow | undefined {
  const cfi = fileCfi(elf, bytes)
  if (!cfi) return undefined
  try {
    const fde = lookup(cfi, vaddr)
    return fde && rowAt(cfi.eh, fde, vaddr)
  } catch {
    return undefined
  }
}

/** The FDE covering link-time address `vaddr`, or undefined. */
export function findFde(elf: ElfFile, vaddr: bigint, bytes?: Uint8Array): FdeInfo | undefined {
  const cfi = fileCfi(elf, bytes)
  try {
    const fde = cfi && lookup(cfi, vaddr)
    return fde && toInfo(fde)
  } catch {
    return undefined
  }
}

/** Every FDE of the file in .eh_frame order, and whether lookups use the .eh_frame_hdr search table. */
export function listFdes(elf: ElfFile, bytes?: Uint8Array): { fdes: FdeInfo[]; usesHeaderTable: boolean } {
  const cfi = fileCfi(elf, bytes)
  if (!cfi) return { fdes: [], usesHeaderTable: false }
  return { fdes: scan(cfi.eh), usesHeaderTable: headerTable(cfi.eh) !== undefined }
}

function fileCfi(elf: ElfFile, bytes: Uint8Array | undefined): FileCfi | undefined {
  let cfi = cache.get(elf)
  if (cfi === undefined) {
    try {
      const eh = loadEhFrame(elf, bytes)
      cfi = eh ? { eh } : null
    } catch {
      cfi = null
    }
    cache.set(elf, cfi)
  }
  return cfi ?? undefined
}

function lookup(cfi: FileCfi, vaddr: bigint): Fde | undefined {
  const table = headerTable(cfi.eh)
  let offset: number | undefined
  if (table) offset = searchHeader(cfi.eh, table, vaddr)
  else {
    const index = (cfi.index ??= scan(cfi.eh)
      .filter((f) => f.end > f.start)
      .sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0)))
    offset = searchIndex(index, vaddr)?.offset
  }
  const fde = offset === undefined ? undefined : cfi.eh.fdeAt(offset)
  return fde && vaddr >= fde.start && vaddr < fde.end ? fde : undefined
}

/** The .eh_frame_hdr binary-search table: where it starts, its entry count and encoding; undefined when unusable. */
interface HeaderTable {
  readonly start: number
  readonly count: number
  readonly encoding: number
  readonly entrySize: number
}

const tables = new WeakMap<EhFrame, HeaderTable | null>()

function headerTable(eh: EhFrame): HeaderTable | undefined {
  let table = tables.get(eh)
  if (table === undefined) {
    table = null
    const h = eh.header
    try {
      if (h && h.bytes[0] === 1) {
        const cur = new DwarfCursor(h.bytes, 4, h.addr, h.bytes.length, eh.little, eh.addressSize)
        const framePtr = cur.pointer(h.bytes[1] ?? DW_EH_PE_omit, { datarel: h.addr })
        const count = cur.pointer(h.bytes[2] ?? DW_EH_PE_omit, { datarel: h.addr })
        const encoding = h.bytes[3] ?? DW_EH_PE_omit
        const size = pointerSize(encoding, eh.addressSize)
        // Trust the table only when it describes this .eh_frame and fits in the header.
        if (
          framePtr === eh.frame.addr &&
          count !== undefined &&
          size !== undefined &&
          encoding !== DW_EH_PE_omit &&
          (encoding & 0x80) === 0
        ) {
          if (BigInt(cur.pos) + count * BigInt(2 * size) <= BigInt(h.bytes.length))
            table = { start: cur.pos, count: Number(count), encoding, entrySize: 2 * size }
        }
      }
    } catch {
      table = null
    }
    tables.set(eh, table)
  }
  return table ?? undefined
}

/** Binary search of the header table: the .eh_frame offset of the last FDE starting at or below `vaddr`. */
function searchHeader(eh: EhFrame, table: HeaderTable, vaddr: bigint): number | undefined {
  const h = eh.header
  if (!h) return undefined
  const entry = (i: number): DwarfCursor =>
    new DwarfCursor(h.bytes, table.start + i * table.entrySize, h.addr, h.bytes.length, eh.little, eh.addressSize)
  let lo = 0
  let hi = table.count - 1
  let found = -1
  while (lo <= hi) {
    const mid = (lo + hi) >> 1
    const start = entry(mid).pointer(table.encoding, { datarel: h.addr }) ?? 0n
    if (start <= vaddr) {
      found = mid
      lo = mid + 1
    } else hi = mid - 1
  }
  if (found < 0) return undefined
  const cur = entry(found)
  cur.pointer(table.encoding, { datarel: h.addr })
  const fdeAddr = cur.pointer(table.encoding, { datarel: h.addr }) ?? 0n
  const offset = fdeAddr - eh.frame.addr
  return offset >= 0n && offset < BigInt(eh.frame.bytes.length) ? Number(offset) : undefined
}

function searchIndex(index: readonly FdeInfo[], vaddr: bigint): FdeInfo | undefined {
  let lo = 0
  let hi = index.length - 1
  let found: FdeInfo | undefined
  while (lo <= hi) {
    const mid = (lo + hi) >> 1
    const f = index[mid] as FdeInfo
    if (f.start <= vaddr) {
      found = f
      lo = mid + 1
    } else hi = mid - 1
  }
  return found
}

/** Walks .eh_frame from its start to the terminator, decoding every FDE (an undecodable one ends the walk). */
function scan(eh: EhFrame): FdeInfo[] {
  const out: FdeInfo[] = []
  try {
    for (let offset = 0, entry = eh.entryAt(0); entry; offset = entry.end, entry = eh.entryAt(offset)) {
      if (entry.cieOffset === undefined) continue
      const fde = eh.fdeAt(offset)
      if (fde) out.push(toInfo(fde))
    }
  } catch {
    // a corrupt entry: the FDEs before it stay usable
  }
  return out
}

function toInfo(fde: Fde): FdeInfo {
  return { offset: fde.offset, cieOffset: fde.cie.offset, start: fde.start, end: fde.end }
}

function rowAt(eh: EhFrame, fde: Fde, vaddr: bigint): UnwindRow {
  const { cie } = fde
  const state: CfaState = copyState(cie.initial)
  const cur = eh.cursor(fde.instructions, fde.entryEnd)
  const run = runCfaProgram(cur, state, cie.initial, fde.start, vaddr, cie)
  const end = run.next !== undefined && run.next < fde.end ? run.next : fde.end
  const unusable = cie.problem ?? run.problem ?? checkRules(state, eh.addressSize)
  return {
    start: run.loc,
    end,
    fde: toInfo(fde),
    cfa: state.cfa,
    registers: state.registers,
    returnAddressRegister: cie.raRegister,
    signalFrame: cie.signalFrame,
    raSigned: state.raSigned,
    ...(unusable ? { unusable } : {}),
  }
}

/** Why the row's rules cannot be followed here, or undefined when they can. */
function checkRules(state: CfaState, addressSize: 4 | 8): string | undefined {
  if (state.cfa.kind === 'register' && state.cfa.register < 0) return 'no CFA rule'
  if (state.cfa.kind === 'expression') {
    const why = checkExpression(state.cfa.expression, addressSize)
    if (why) return `CFA expression: ${why}`
  }
  for (const [reg, rule] of state.registers) {
    if (rule.kind !== 'expression' && rule.kind !== 'val-expression') continue
    const why = checkExpression(rule.expression, addressSize)
    if (why) return `register ${reg} expression: ${why}`
  }
  return undefined
}
