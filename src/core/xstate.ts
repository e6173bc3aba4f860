// A thread's extended registers (by name, as a snapshot holds them) laid out as an xsave area for a
// core file: FXSAVE region, header, and the AVX/AVX-512/PKRU components at Intel's standard offsets
// (layout.ts XSAVE says why), independent of the CPU of the machine that writes the core.
import type { CoreCpu } from './types.js'
import { FXSAVE as FXSAVE_AT } from '../native/arch/x86_64-xstate.js'
import { XSAVE } from './layout.js'

const BIT = { x87: 0, sse: 1, avx: 2, opmask: 5, zmmHi256: 6, hi16Zmm: 7, pkru: 9 } as const

/** Bits [shift, shift + 8 * bytes) of `value` into `area` at `offset`, little-endian. */
function put(area: Uint8Array, offset: number, bytes: number, value: bigint | undefined, shift = 0): void {
  if (value === undefined) return
  let v = value >> BigInt(shift)
  for (let i = 0; i < bytes; i++, v >>= 8n) area[offset + i] = Number(v & 0xffn)
}

/** The FXSAVE abridged tag byte from the full 16-bit tag word: bit i set when register i is not empty (tag != 3). */
function abridged(ftw: bigint | undefined): number {
  if (ftw === undefined) return 0
  let tags = 0
  for (let i = 0; i < 8; i++) if (((ftw >> BigInt(2 * i)) & 3n) !== 3n) tags |= 1 << i
  return tags
}

/** Which xsave components the area will hold: those the snapshot's CPU enabled and whose registers it has. */
function componentsOf(regs: Readonly<Record<string, bigint>>, cpu: CoreCpu): number[] {
  const xcr0 = cpu.xcr0 ?? 0n
  const has = (bit: number): boolean => (xcr0 & (1n << BigInt(bit))) !== 0n
  const bits: number[] = []
  if (has(BIT.avx) && regs.ymm0 !== undefined) bits.push(BIT.avx)
  if (has(BIT.opmask) && has(BIT.zmmHi256) && has(BIT.hi16Zmm) && regs.zmm0 !== undefined && regs.k0 !== undefined)
    bits.push(BIT.opmask, BIT.zmmHi256, BIT.hi16Zmm)
  if (has(BIT.pkru) && regs.pkru !== undefined) bits.push(BIT.pkru)
  return bits
}

/**
 * The thread's xsave area for NT_X86_XSTATE (its first 512 bytes are NT_FPREGSET's FXSAVE image), or
 * the FXSAVE image alone when the snapshot's CPU had no XSAVE. Every component written is marked live
 * in XSTATE_BV; bytes 464.. hold the XCR0 the area describes, as the kernel writes them.
 */
export function encodeCoreXState(regs: Readonly<Record<string, bigint>>, cpu: CoreCpu): Uint8Array {
  const bits = componentsOf(regs, cpu)
  const xsave = cpu.xcr0 !== undefined && cpu.xcr0 !== 0n
  let size: number = xsave ? XSAVE.headerEnd : XSAVE.legacySize
  for (const bit of bits) {
    const [offset, length] = XSAVE.components.get(bit) ?? [0, 0]
    size = Math.max(size, offset + length)
  }
  const area = new Uint8Array(size)
  put(area, FXSAVE_AT.fcw, 2, regs.fcw)
  put(area, FXSAVE_AT.fsw, 2, regs.fsw)
  area[FXSAVE_AT.ftw] = abridged(regs.ftw)
  put(area, FXSAVE_AT.fop, 2, regs.fop)
  put(area, FXSAVE_AT.fip, 8, regs.fip)
  put(area, FXSAVE_AT.fdp, 8, regs.fdp)
  put(area, FXSAVE_AT.mxcsr, 4, regs.mxcsr)
  put(area, FXSAVE_AT.mxcsrMask, 4, regs.mxcsr_mask)
  for (let i = 0; i < 8; i++) put(area, FXSAVE_AT.st + 16 * i, 10, regs[`st${i}`])
  for (let i = 0; i < 16; i++) put(area, FXSAVE_AT.xmm + 16 * i, 16, regs[`xmm${i}`])
  if (!xsave) return area
  const at = (bit: number): number => XSAVE.components.get(bit)?.[0] ?? 0
  let xcr0 = (1n << BigInt(BIT.x87)) | (1n << BigInt(BIT.sse))
  for (const bit of bits) xcr0 |= 1n << BigInt(bit)
  put(area, XSAVE.swXcr0, 8, xcr0)
  put(area, XSAVE.xstateBv, 8, xcr0)
  if (bits.includes(BIT.avx)) for (let i = 0; i < 16; i++) put(area, at(BIT.avx) + 16 * i, 16, regs[`ymm${i}`], 128)
  if (bits.includes(BIT.opmask)) {
    for (let i = 0; i < 8; i++) put(area, at(BIT.opmask) + 8 * i, 8, regs[`k${i}`])
    for (let i = 0; i < 16; i++) put(area, at(BIT.zmmHi256) + 32 * i, 32, regs[`zmm${i}`], 256)
    for (let i = 0; i < 16; i++) put(area, at(BIT.hi16Zmm) + 64 * i, 64, regs[`zmm${i + 16}`])
  }
  if (bits.includes(BIT.pkru)) put(area, at(BIT.pkru), 4, regs.pkru)
  return area
}
