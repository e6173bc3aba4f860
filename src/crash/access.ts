// Whether a faulting x86_64 instruction read, wrote or executed the address it faulted on, from its
// encoding: the kernel's page-fault error code (which says it) reaches only a signal handler's
// frame, never the tracer. Only the opcodes whose memory operand's direction is certain are named;
// anything else is undefined (the report then says "access to").

export type Access = 'read' | 'write' | 'execute'

/** Legacy prefixes: operand/address size, lock, rep, segments. */
const PREFIXES = new Set([0x66, 0x67, 0xf0, 0xf2, 0xf3, 0x2e, 0x36, 0x3e, 0x26, 0x64, 0x65])

/** One-byte opcodes whose ModRM memory operand is written (stores, read-modify-write, xchg). */
const WRITES_0 = new Set([
  0x00, 0x01, 0x08, 0x09, 0x10, 0x11, 0x18, 0x19, 0x20, 0x21, 0x28, 0x29, 0x30, 0x31, 0x86, 0x87, 0x88, 0x89, 0xc6,
  0xc7, 0xc0, 0xc1, 0xd0, 0xd1, 0xd2, 0xd3,
])
/** One-byte opcodes whose ModRM memory operand is only read. */
const READS_0 = new Set([
  0x02, 0x03, 0x0a, 0x0b, 0x12, 0x13, 0x1a, 0x1b, 0x22, 0x23, 0x2a, 0x2b, 0x32, 0x33, 0x38, 0x39, 0x3a, 0x3b, 0x84,
  0x85, 0x8a, 0x8b, 0x63, 0x69, 0x6b,
])
/** One-byte opcodes that write the stack (push, call, pushf, enter). */
const STACK_WRITES_0 = new Set([0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57, 0x68, 0x6a, 0x9c, 0xe8, 0xc8])
/** One-byte opcodes that read the stack (pop, ret, popf, leave). */
const STACK_READS_0 = new Set([0x58, 0x59, 0x5a, 0x5b, 0x5c, 0x5d, 0x5e, 0x5f, 0x9d, 0xc3, 0xc2, 0xc9])

/** 0F-map opcodes (legacy SSE, or VEX/EVEX map 1) that store to their memory operand. */
const WRITES_1 = new Set([
  0x11, 0x13, 0x17, 0x29, 0x2b, 0x7f, 0xd6, 0xe7, 0xc3, 0xb0, 0xb1, 0xc0, 0xc1, 0xab, 0xb3, 0xbb,
])
/** 0F-map opcodes that only load from their memory operand. */
const READS_1 = new Set([
  0x10, 0x12, 0x16, 0x28, 0x2e, 0x2f, 0x6e, 0x6f, 0xb6, 0xb7, 0xbe, 0xbf, 0xaf, 0x40, 0x41, 0x42, 0x43, 0x44, 0x45,
  0x46, 0x47, 0x48, 0x49, 0x4a, 0x4b, 0x4c, 0x4d, 0x4e, 0x4f, 0x54, 0x57, 0x58, 0x59, 0x5c, 0x5e, 0x74, 0x75, 0x76,
  0xd7, 0xda, 0xde, 0xeb, 0xef, 0xf8, 0xfe, 0xd4, 0xdb, 0x60, 0x61, 0x62, 0x64, 0x65, 0x66,
])
/** 0F-map opcodes that write their memory operand: shld/shrd. (0F C7 /1 cmpxchg8b/16b, 0F BA /5-7 bts/btr/btc: by reg.) */
const SHIFTS_1 = new Set([0xa4, 0xa5, 0xac, 0xad])
/** 0F 38 opcodes that store (vmaskmov, vpmaskmov, vpcompress*, vcompressp*, scatters); the rest load. */
const WRITES_2 = new Set([0x2e, 0x2f, 0x8e, 0x63, 0x8a, 0x8b, 0xa0, 0xa1, 0xa2, 0xa3])
/** 0F 38 opcodes that, F3-prefixed (EVEX), are vpmov* down-conversions: the memory operand is the destination. */
const DOWN_CONVERTS = new Set([
  0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35,
])
/** 0F 3A opcodes that store (vpextr*, extractps, vextract*, vcvtps2ph); the rest load. */
const WRITES_3 = new Set([0x14, 0x15, 0x16, 0x17, 0x19, 0x1b, 0x1d, 0x39, 0x3b])

interface Decoded {
  readonly map: number
  readonly opcode: number
  /** The ModRM byte, when the opcode has one and the bytes reach it. */
  readonly modrm: number | undefined
  readonly rep: boolean
  /** The mandatory prefix of a VEX/EVEX instruction (pp: 0 none, 1 66, 2 F3, 3 F2). */
  readonly pp: number
}

/** Prefixes, REX/VEX/EVEX, the opcode map and byte, and the ModRM that follows. */
function decode(code: Uint8Array): Decoded | undefined {
  let i = 0
  let rep = false
  while (i < code.length && PREFIXES.has(code[i] ?? 0)) {
    if (code[i] === 0xf3 || code[i] === 0xf2) rep = true
    i++
  }
  if ((code[i] ?? 0) >> 4 === 0x4) i++ // REX
  const b = code[i]
  if (b === undefined) return undefined
  let map = 0
  let pp = 0
  if (b === 0xc5) {
    map = 1
    pp = (code[i + 1] ?? 0) & 3
    i += 2
  } else if (b === 0xc4) {
    map = (code[i + 1] ?? 0) & 0x1f
    pp = (code[i + 2] ?? 0) & 3
    i += 3
  } else if (b === 0x62) {
    map = (code[i + 1] ?? 0) & 0x07
    pp = (code[i + 2] ?? 0) & 3
    i += 4
  } else if (b === 0x0f) {
    const next = code[i + 1]
    map = next === 0x38 ? 2 : next === 0x3a ? 3 : 1
    i += map === 1 ? 1 : 2
  }
  const opcode = code[i]
  if (opcode === undefined) return undefined
  return { map, opcode, modrm: code[i + 1], rep, pp }
}

/**
 * What the instruction `code` (bytes at the faulting pc) did at `fault`: 'execute' when the pc is
 * the fault address; 'write' or 'read' from its opcode and, for pushes, calls and string moves,
 * from where the fault lies (`rsp`, `rdi`); undefined when the encoding does not tell.
 */
export function faultAccess(
  code: Uint8Array | undefined,
  pc: bigint,
  fault: bigint | undefined,
  regs: { readonly rsp?: bigint; readonly rdi?: bigint },
): Access | undefined {
  if (fault === undefined) return undefined
  if (fault === pc) return 'execute'
  const d = code && decode(code)
  if (!d) return undefined
  const memory = d.modrm !== undefined && d.modrm >> 6 !== 3
  const reg = d.modrm === undefined ? -1 : (d.modrm >> 3) & 7
  const nearStack = regs.rsp !== undefined && fault >= regs.rsp - 4096n && fault < regs.rsp + 4096n
  if (d.map === 0) {
    if (STACK_WRITES_0.has(d.opcode)) return 'write'
    if (STACK_READS_0.has(d.opcode)) return 'read'
    if (d.opcode === 0xa4 || d.opcode === 0xa5)
      return regs.rdi !== undefined && fault >> 12n === regs.rdi >> 12n ? 'write' : 'read'
    if (d.opcode === 0xaa || d.opcode === 0xab) return 'write'
    if (d.opcode >= 0xac && d.opcode <= 0xaf) return 'read'
    if (!memory) return undefined
    if (WRITES_0.has(d.opcode)) return 'write'
    if (READS_0.has(d.opcode)) return 'read'
    if (d.opcode === 0x80 || d.opcode === 0x81 || d.opcode === 0x83) return reg === 7 ? 'read' : 'write'
    if (d.opcode === 0xf6 || d.opcode === 0xf7) return reg === 2 || reg === 3 ? 'write' : 'read'
    if (d.opcode === 0xfe || d.opcode === 0xff) {
      if (reg === 0 || reg === 1) return 'write'
      if (reg === 2 || reg === 6) return nearStack ? 'write' : 'read' // call/push [mem]: the push, or the operand
      if (reg === 4) return 'read'
    }
    return undefined
  }
  if (!memory) return undefined
  if (d.map === 1) {
    if (d.opcode >= 0x90 && d.opcode <= 0x9f) return 'write' // setcc
    if (d.opcode === 0x7e) return d.rep ? 'read' : 'write' // movq xmm, m64 (F3) / movd r/m32, xmm
    if (d.opcode === 0xae) return reg === 0 || reg === 3 || reg === 4 || reg === 6 ? 'write' : 'read' // fxsave, stmxcsr, xsave, xsaveopt
    if (d.opcode === 0xc7) return reg === 1 ? 'write' : undefined // cmpxchg8b/16b
    if (d.opcode === 0xba) return reg >= 5 ? 'write' : 'read' // bts/btr/btc, bt
    if (WRITES_1.has(d.opcode) || SHIFTS_1.has(d.opcode)) return 'write'
    if (READS_1.has(d.opcode)) return 'read'
    return undefined
  }
  if (d.map === 2) return WRITES_2.has(d.opcode) || (d.pp === 2 && DOWN_CONVERTS.has(d.opcode)) ? 'write' : 'read'
  if (d.map === 3) return WRITES_3.has(d.opcode) ? 'write' : 'read'
  return undefined
}
