// x86_64 registers beyond user_regs_struct, from the xsave area of a stopped thread
// (PTRACE_GETREGSET NT_X86_XSTATE): x87 (80-bit, exact), SSE, AVX, AVX-512 and PKRU.
import { PTRACE } from '../constants.js'
import { addressOf, sys } from '../libc.js'
import { componentNames, hasComponent, XSAVE_BIT, xsaveLayout, type XsaveLayout } from './x86_64-xsave-layout.js'
import type { RegisterFeatures } from './types.js'

const NT_X86_XSTATE = 0x202
/** Larger than any xsave area the kernel hands out today (AMX included: 11 KiB). */
const AREA = new Uint8Array(16384)
const IOVEC = Buffer.alloc(16)
const FXSAVE = { fcw: 0, fsw: 2, ftw: 4, fop: 6, fip: 8, fdp: 16, mxcsr: 24, mxcsrMask: 28, st: 32, xmm: 160 } as const
/** xstate_fx_sw_bytes.xfeatures: the kernel's copy of XCR0 in the software-reserved bytes. */
const SW_XFEATURES = 472
const XSTATE_BV = 512

function bytesToBigint(area: Uint8Array, offset: number, length: number): bigint {
  let value = 0n
  for (let i = length - 1; i >= 0; i--) value = (value << 8n) | BigInt(area[offset + i] ?? 0)
  return value
}

/**
 * The full 16-bit x87 tag word gdb shows, from FXSAVE's abridged one: an empty register is 3, a
 * used one is classified by its contents (0 valid, 1 zero, 2 special), as gdb's i387_supply_fxsave does.
 */
function fullTagWord(abridged: number, fsw: number, st: readonly bigint[]): bigint {
  const top = (fsw >> 11) & 7
  let tags = 0
  for (let physical = 7; physical >= 0; physical--) {
    let tag = 3
    if (abridged & (1 << physical)) {
      const value = st[(physical - top + 8) & 7] ?? 0n
      const exponent = Number((value >> 64n) & 0x7fffn)
      const mantissa = value & ((1n << 64n) - 1n)
      if (exponent === 0x7fff) tag = 2
      else if (exponent === 0) tag = mantissa === 0n ? 1 : 2
      else tag = mantissa >> 63n === 1n ? 0 : 2
    }
    tags |= tag << (2 * physical)
  }
  return BigInt(tags)
}

function readArea(tid: number): number {
  IOVEC.writeBigUInt64LE(addressOf(AREA), 0)
  IOVEC.writeBigUInt64LE(BigInt(AREA.length), 8)
  if (Number(sys.ptraceBuf(PTRACE.GETREGSET, tid, NT_X86_XSTATE, IOVEC)) !== 0) return 0
  return Number(IOVEC.readBigUInt64LE(8))
}

/** Every extended register of a stopped thread by name, full width; {} when the kernel refuses. */
export function readXState(tid: number): Record<string, bigint> {
  const size = readArea(tid)
  if (size < XSTATE_BV + 8) return {}
  const area = AREA
  const layout = xsaveLayout(bytesToBigint(area, SW_XFEATURES, 8))
  if (!layout) return {}
  const present = bytesToBigint(area, XSTATE_BV, 8)
  const regs: Record<string, bigint> = {}
  const fsw = Number(bytesToBigint(area, FXSAVE.fsw, 2))
  const st = Array.from({ length: 8 }, (_, i) => bytesToBigint(area, FXSAVE.st + 16 * i, 10))
  st.forEach((value, i) => (regs[`st${i}`] = value))
  regs.fcw = bytesToBigint(area, FXSAVE.fcw, 2)
  regs.fsw = BigInt(fsw)
  regs.ftw = fullTagWord(area[FXSAVE.ftw] ?? 0, fsw, st)
  regs.fop = bytesToBigint(area, FXSAVE.fop, 2)
  regs.fip = bytesToBigint(area, FXSAVE.fip, 8)
  regs.fdp = bytesToBigint(area, FXSAVE.fdp, 8)
  regs.mxcsr = bytesToBigint(area, FXSAVE.mxcsr, 4)
  regs.mxcsr_mask = bytesToBigint(area, FXSAVE.mxcsrMask, 4)
  vectorRegisters(area, size, layout, present, regs)
  return regs
}

/** Bytes of component `bit` at `offset` within it, or zeros when the component is in its init state. */
function component(area: Uint8Array, size: number, layout: XsaveLayout, present: bigint, bit: number, offset: number, length: number): bigint {
  const base = layout.offsets.get(bit)
  if (base === undefined || !hasComponent(present, bit) || base + offset + length > size) return 0n
  return bytesToBigint(area, base + offset, length)
}

function vectorRegisters(area: Uint8Array, size: number, layout: XsaveLayout, present: bigint, regs: Record<string, bigint>): void {
  const { xcr0 } = layout
  const avx = hasComponent(xcr0, XSAVE_BIT.avx)
  const avx512 = hasComponent(xcr0, XSAVE_BIT.opmask) && hasComponent(xcr0, XSAVE_BIT.zmmHi256) && hasComponent(xcr0, XSAVE_BIT.hi16Zmm)
  for (let i = 0; i < 16; i++) {
    const xmm = bytesToBigint(area, FXSAVE.xmm + 16 * i, 16)
    regs[`xmm${i}`] = xmm
    if (!avx) continue
    const ymm = xmm | (component(area, size, layout, present, XSAVE_BIT.avx, 16 * i, 16) << 128n)
    regs[`ymm${i}`] = ymm
    if (avx512) regs[`zmm${i}`] = ymm | (component(area, size, layout, present, XSAVE_BIT.zmmHi256, 32 * i, 32) << 256n)
  }
  if (avx512) {
    for (let i = 16; i < 32; i++) {
      const zmm = component(area, size, layout, present, XSAVE_BIT.hi16Zmm, 64 * (i - 16), 64)
      regs[`xmm${i}`] = zmm & ((1n << 128n) - 1n)
      regs[`ymm${i}`] = zmm & ((1n << 256n) - 1n)
      regs[`zmm${i}`] = zmm
    }
    for (let i = 0; i < 8; i++) regs[`k${i}`] = component(area, size, layout, present, XSAVE_BIT.opmask, 8 * i, 8)
  }
  if (hasComponent(xcr0, XSAVE_BIT.pkru)) regs.pkru = component(area, size, layout, present, XSAVE_BIT.pkru, 0, 4)
}

/** XCR0, the names of the enabled components and the area's size on this machine. */
export function xsaveFeatures(): RegisterFeatures {
  const layout = xsaveLayout()
  if (!layout) return { xcr0: 0n, components: [], xsaveSize: 0 }
  return { xcr0: layout.xcr0, components: componentNames(layout.xcr0), xsaveSize: layout.size }
}
