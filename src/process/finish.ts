// Where the current function returns to, found from its prologue: at the entry the return
// address is at [sp]; after `push rbp` at [sp+8]; once `mov rbp, rsp` ran, at [rbp+8].
// Code without a frame pointer past its prologue needs CFI (the unwinder): we report unknown.
import { moduleAt, type Module } from './modules.js'

export interface ReturnSite {
  /** Where the caller resumes. */
  returnAddress: bigint
  /** The stack pointer once the function has returned: a hit with a lower sp is a deeper recursion. */
  cfa: bigint
}

const ENDBR64 = [0xf3, 0x0f, 0x1e, 0xfa]
const PUSH_RBP = 0x55
const RET = 0xc3
const MOV_RBP_RSP = [0x48, 0x89, 0xe5]

function startsWith(code: Uint8Array, at: number, bytes: readonly number[]): boolean {
  return bytes.every((b, i) => code[at + i] === b)
}

/**
 * `code` holds the first bytes of the function, `offset` is pc - function start, `opcodeAtPc`
 * the byte at pc (a `ret` there means the return address is at [sp]), `readWord`
 * reads a 64-bit stack word. Returns undefined when the prologue does not tell (use stepping).
 */
export function x86ReturnSite(
  code: Uint8Array,
  offset: number,
  opcodeAtPc: number,
  regs: { rsp: bigint; rbp: bigint },
  readWord: (address: bigint) => bigint,
): ReturnSite | undefined {
  const body = startsWith(code, 0, ENDBR64) ? 4 : 0
  if (offset <= body || opcodeAtPc === RET) return { returnAddress: readWord(regs.rsp), cfa: regs.rsp + 8n }
  if (code[body] !== PUSH_RBP) return undefined
  if (offset === body + 1) return { returnAddress: readWord(regs.rsp + 8n), cfa: regs.rsp + 16n }
  if (startsWith(code, body + 1, MOV_RBP_RSP) && offset >= body + 4) {
    return { returnAddress: readWord(regs.rbp + 8n), cfa: regs.rbp + 16n }
  }
  return undefined
}

/** The return site of the function containing `pc`, reading its code and stack through `read`. */
export function x86ReturnSiteAt(
  pc: bigint,
  regs: { rsp: bigint; rbp: bigint },
  modules: readonly Module[],
  read: (address: bigint, length: number) => Uint8Array,
): ReturnSite | undefined {
  const readWord = (address: bigint): bigint => Buffer.from(read(address, 8)).readBigUInt64LE(0)
  const atPc = read(pc, 1)[0] ?? 0
  const mod = moduleAt(modules, pc)
  const hit = mod?.elf.symbolize(pc - mod.bias)
  if (!mod || !hit) return atPc === RET ? { returnAddress: readWord(regs.rsp), cfa: regs.rsp + 8n } : undefined
  const code = read(mod.bias + hit.symbol.value, 8)
  return x86ReturnSite(code, Number(hit.offset), atPc, regs, readWord)
}
