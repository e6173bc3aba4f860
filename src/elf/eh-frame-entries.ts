// Finds an ELF file's .eh_frame and .eh_frame_hdr bytes and decodes their entries: CIEs (with their initial rules) and FDEs.
import { closeSync, openSync, readSync } from 'node:fs'
import { copyState, runCfaProgram, type CfaState } from './cfa-program.js'
import { DW_EH_PE_omit, DwarfCursor, DwarfRangeError } from './dwarf-cursor.js'
import type { ElfFile } from './types.js'

const PT_LOAD = 1
const PT_GNU_EH_FRAME = 0x6474e550
const SHT_NOBITS = 8

/** A run of the file's bytes and the link-time address of its first byte. */
export interface Region {
  readonly bytes: Uint8Array
  readonly addr: bigint
}

export interface Cie {
  readonly offset: number
  readonly codeAlign: bigint
  readonly dataAlign: bigint
  readonly raRegister: number
  readonly fdeEncoding: number
  /** Has 'z': FDEs carry an augmentation-data length. */
  readonly hasAugmentationData: boolean
  /** 'S': a signal trampoline frame (its pc is exact: callers look it up at pc, not pc - 1). */
  readonly signalFrame: boolean
  /** The rules after the CIE's initial instructions (DW_CFA_restore goes back to these). */
  readonly initial: CfaState
  readonly problem?: string
}

export interface Fde {
  /** Offset of the FDE in .eh_frame. */
  readonly offset: number
  readonly cie: Cie
  /** Link-time range [start, end) the FDE covers. */
  readonly start: bigint
  readonly end: bigint
  /** Its instructions: offsets [instructions, entryEnd) in .eh_frame. */
  readonly instructions: number
  readonly entryEnd: number
}

/** One entry header: where it ends, and for an FDE the offset of its CIE. */
interface EntryHeader {
  readonly end: number
  readonly body: number
  readonly cieOffset: number | undefined
}

/** The CFI of one file: .eh_frame, its header when present, and the CIEs decoded so far. */
export class EhFrame {
  private readonly cies = new Map<number, Cie>()

  constructor(
    readonly frame: Region,
    readonly header: Region | undefined,
    readonly little: boolean,
    readonly addressSize: 4 | 8,
  ) {}

  cursor(pos: number, end = this.frame.bytes.length): DwarfCursor {
    return new DwarfCursor(this.frame.bytes, pos, this.frame.addr, end, this.little, this.addressSize)
  }

  /** The header of the entry at `offset`: undefined at the zero terminator or the end of the section. */
  entryAt(offset: number): EntryHeader | undefined {
    if (offset + 4 > this.frame.bytes.length) return undefined
    const cur = this.cursor(offset)
    let length = BigInt(cur.u32())
    if (length === 0n) return undefined
    const wide = length === 0xffffffffn
    if (wide) length = cur.u64()
    const body = cur.pos
    const end = body + Number(length)
    if (length > BigInt(this.frame.bytes.length) || end > this.frame.bytes.length)
      throw new DwarfRangeError(`entry at ${offset} runs past .eh_frame`)
    const id = wide ? Number(cur.u64()) : cur.u32()
    return { end, body: cur.pos, cieOffset: id === 0 ? undefined : body - id }
  }

  /** The FDE at `offset` of .eh_frame, undefined when that is a CIE or the terminator. */
  fdeAt(offset: number): Fde | undefined {
    const entry = this.entryAt(offset)
    if (entry?.cieOffset === undefined) return undefined
    const cie = this.cieAt(entry.cieOffset)
    const cur = this.cursor(entry.body, entry.end)
    const start = cur.pointer(cie.fdeEncoding & 0x7f) ?? 0n
    const range = cur.pointerValue(cie.fdeEncoding & 0x0f) & (this.addressSize === 8 ? (1n << 64n) - 1n : 0xffffffffn)
    if (cie.hasAugmentationData) cur.skip(cur.ulebNumber())
    return { offset, cie, start, end: start + range, instructions: cur.pos, entryEnd: entry.end }
  }

  cieAt(offset: number): Cie {
    let cie = this.cies.get(offset)
    if (!cie) {
      cie = this.parseCie(offset)
      this.cies.set(offset, cie)
    }
    return cie
  }

  private parseCie(offset: number): Cie {
    const entry = this.entryAt(offset)
    if (!entry || entry.cieOffset !== undefined) throw new DwarfRangeError(`no CIE at .eh_frame offset ${offset}`)
    const cur = this.cursor(entry.body, entry.end)
    const version = cur.u8()
    let augmentation = ''
    for (let ch = cur.u8(); ch !== 0; ch = cur.u8()) augmentation += String.fromCharCode(ch)
    if (augmentation.includes('eh')) cur.skip(this.addressSize)
    if (version >= 4) cur.skip(2) // address_size, segment_selector_size
    const codeAlign = cur.uleb()
    const dataAlign = cur.sleb()
    const raRegister = version === 1 ? cur.u8() : cur.ulebNumber()
    let fdeEncoding = 0
    let signalFrame = false
    let problem: string | undefined
    const hasAugmentationData = augmentation.startsWith('z')
    if (hasAugmentationData) {
      const augEnd = cur.ulebNumber() + cur.pos
      for (const ch of augmentation.slice(1)) {
        if (ch === 'R') fdeEncoding = cur.u8()
        else if (ch === 'L') cur.u8()
        else if (ch === 'P') cur.pointer(cur.u8() & 0x7f, { datarel: 0n, textrel: 0n, funcrel: 0n })
        else if (ch === 'S') signalFrame = true
        else if (ch !== 'B' && ch !== 'G') break // unknown letter: its data is skipped with the rest
      }
      cur.pos = augEnd
    } else if (augmentation !== '' && augmentation !== 'eh') {
      problem = `CIE augmentation "${augmentation}" is not understood`
    }
    if (fdeEncoding === DW_EH_PE_omit) problem ??= 'CIE omits its FDE addresses'
    const initial: CfaState = {
      cfa: { kind: 'register', register: -1, offset: 0n },
      registers: new Map(),
      raSigned: false,
    }
    const run = runCfaProgram(cur, initial, undefined, 0n, undefined, { codeAlign, dataAlign, fdeEncoding })
    problem ??= run.problem
    return {
      offset,
      codeAlign,
      dataAlign,
      raRegister,
      fdeEncoding,
      hasAugmentationData,
      signalFrame,
      initial: copyState(initial),
      ...(problem ? { problem } : {}),
    }
  }
}

/** Locates .eh_frame (and .eh_frame_hdr) of `elf`: by section headers, else through PT_GNU_EH_FRAME. Undefined when absent. */
export function loadEhFrame(elf: ElfFile, bytes?: Uint8Array): EhFrame | undefined {
  const little = elf.endian === 'little'
  const addressSize = elf.class === 64 ? 8 : 4
  const read = (offset: bigint, size: bigint): Uint8Array => readRange(elf.path, bytes, offset, size)
  const section = (name: string): Region | undefined => {
    const s = elf.sections.find((x) => x.name === name && x.type !== SHT_NOBITS && x.size > 0n)
    return s && { bytes: read(s.offset, s.size), addr: s.addr }
  }
  let header = section('.eh_frame_hdr')
  if (!header) {
    const seg = elf.segments.find((s) => s.type === PT_GNU_EH_FRAME && s.filesz > 0n)
    if (seg) header = { bytes: read(seg.offset, seg.filesz), addr: seg.vaddr }
  }
  let frame = section('.eh_frame')
  if (!frame && header) {
    // No section headers: the header says where .eh_frame starts; it runs at most to the end of its PT_LOAD.
    const cur = new DwarfCursor(header.bytes, 4, header.addr, header.bytes.length, little, addressSize)
    const version = header.bytes[0]
    const addr = version === 1 ? cur.pointer(header.bytes[1] ?? DW_EH_PE_omit, { datarel: header.addr }) : undefined
    const load =
      addr === undefined
        ? undefined
        : elf.segments.find((s) => s.type === PT_LOAD && addr >= s.vaddr && addr < s.vaddr + s.filesz)
    if (addr !== undefined && load)
      frame = { bytes: read(load.offset + (addr - load.vaddr), load.vaddr + load.filesz - addr), addr }
  }
  return frame && new EhFrame(frame, header, little, addressSize)
}

/** `size` bytes at file offset `offset`: from `bytes` (the whole file) when given, else read from `path`. */
function readRange(path: string, bytes: Uint8Array | undefined, offset: bigint, size: bigint): Uint8Array {
  if (bytes) {
    if (offset + size > BigInt(bytes.length))
      throw new DwarfRangeError(`file range ${offset}+${size} is past the end of ${path}`)
    return bytes.subarray(Number(offset), Number(offset + size))
  }
  const out = new Uint8Array(Number(size))
  const fd = openSync(path, 'r')
  try {
    let done = 0
    while (done < out.length) {
      const n = readSync(fd, out, done, out.length - done, Number(offset) + done)
      if (n <= 0) throw new DwarfRangeError(`${path} ends before file offset ${offset + size}`)
      done += n
    }
  } finally {
    closeSync(fd)
  }
  return out
}
