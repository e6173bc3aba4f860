// x86_64 registers beyond user_regs_struct, from the xsave area of a stopped thread
// (PTRACE_GETREGSET NT_X86_XSTATE): x87 (80-bit, exact), SSE, AVX, AVX-512 and PKRU.
import { readFileSync } from 'node:fs'
import { ProcessStateError, PtraceError } from '../../errors.js'
import { errnoName, PTRACE } from '../constants.js'
import { addressOf, lastErrno, sys } from '../libc.js'
import { componentNames, hasComponent, XSAVE_BIT, xsaveLayout, type XsaveLayout } from './x86_64-xsave-layout.js'
import type { RegisterFeatures } from './types.js'

const NT_PRFPREG = 2
const NT_X86_XSTATE = 0x202
const ESRCH = 3
const ENODEV = 19
const EINVAL = 22
/** Larger than any xsave area the kernel hands out today (AMX included: 11 KiB). */
const AREA = new Uint8Array(16384)
const VIEW = new DataView(AREA.buffer)
const IOVEC = Buffer.alloc(16)
const FXSAVE = {
  fcw: 0,
  fsw: 2,
  ftw: 4,
  fop: 6,
  fip: 8,
  fdp: 16,
  mxcsr: 24,
  mxcsrMask: 28,
  st: 32,
  xmm: 160,
  size: 512,
} as const
/** xstate_fx_sw_bytes.xfeatures: the kernel's copy of XCR0 in the software-reserved bytes. */
const SW_XFEATURES = 472
/** XSTATE_BV: which components are not in their init state (a clear bit reads as zeros). */
const XSTATE_BV = 512

/** `length` bytes at `offset`, little-endian. */
function le(area: Uint8Array, offset: number, length: number): bigint {
  const view = area.buffer === AREA.buffer ? VIEW : new DataView(area.buffer, area.byteOffset, area.byteLength)
  let value = 0n
  let i = length
  while (i >= 8) {
    i -= 8
    value = (value << 64n) | view.getBigUint64(offset + i, true)
  }
  while (i > 0) {
    i -= 1
    value = (value << 8n) | BigInt(area[offset + i] ?? 0)
  }
  return value
}

/**
 * `ftw` is the full 16-bit tag word that gdb shows (`$ftag`), rebuilt from FXSAVE's abridged 8-bit one
 * as gdb's i387_supply_fxsave does: an empty register is 3, a used one is classified by its
 * contents (0 valid, 1 zero, 2 special: NaN, infinity, denormal, unnormal).
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

/** Fills AREA with regset `type` of thread `tid`; returns the kernel's length, or -errno. */
function getRegset(tid: number, type: number): number {
  IOVEC.writeBigUInt64LE(addressOf(AREA), 0)
  IOVEC.writeBigUInt64LE(BigInt(AREA.length), 8)
  if (Number(sys.ptraceBuf(PTRACE.GETREGSET, tid, type, IOVEC)) !== 0) return -lastErrno()
  return Number(IOVEC.readBigUInt64LE(8))
}

/** ESRCH means gone or not ours: a thread that no longer exists, or a zombie, is gone. */
function threadGone(tid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${tid}/stat`, 'latin1')
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3)
    return state === 'Z' || state === 'X'
  } catch {
    return true
  }
}

/**
 * Every extended register of a stopped thread by name, full width. A kernel or CPU without XSAVE
 * (ENODEV/EINVAL for NT_X86_XSTATE) still gives the FXSAVE area: x87 and SSE registers only.
 */
export function readXState(tid: number): Record<string, bigint> {
  let size = getRegset(tid, NT_X86_XSTATE)
  if (size === -ENODEV || size === -EINVAL) size = getRegset(tid, NT_PRFPREG)
  if (size === -ESRCH && threadGone(tid))
    throw new ProcessStateError(
      'ERR_PROCESS_ENDED',
      `Cannot read the x87/SSE/AVX registers of thread ${tid}: it is gone. The process was killed or ended outside procsnap since its last stop (a SIGKILL from elsewhere, the OOM killer); await proc.wait() to learn how it ended.`,
    )
  if (size < 0) {
    throw new PtraceError(
      'ERR_PTRACE',
      -size,
      `Reading the x87/SSE/AVX registers of thread ${tid} failed (${errnoName(-size)}): the thread is gone or not stopped.`,
    )
  }
  const area = AREA.subarray(0, size)
  return decodeXState(area, size > XSTATE_BV ? xsaveLayout(le(area, SW_XFEATURES, 8)) : undefined)
}

/**
 * Registers by name from an xsave area in the standard (non-compacted) format as PTRACE_GETREGSET
 * gives it; `layout` undefined or an area of 512 bytes means the FXSAVE part only (x87, SSE).
 */
export function decodeXState(area: Uint8Array, layout: XsaveLayout | undefined): Record<string, bigint> {
  const regs: Record<string, bigint> = {}
  if (area.length < FXSAVE.size) return regs
  const fsw = Number(le(area, FXSAVE.fsw, 2))
  const st = Array.from({ length: 8 }, (_, i) => le(area, FXSAVE.st + 16 * i, 10))
  st.forEach((value, i) => (regs[`st${i}`] = value))
  regs.fcw = le(area, FXSAVE.fcw, 2)
  regs.fsw = BigInt(fsw)
  regs.ftw = fullTagWord(area[FXSAVE.ftw] ?? 0, fsw, st)
  regs.fop = le(area, FXSAVE.fop, 2)
  regs.fip = le(area, FXSAVE.fip, 8)
  regs.fdp = le(area, FXSAVE.fdp, 8)
  regs.mxcsr = le(area, FXSAVE.mxcsr, 4)
  regs.mxcsr_mask = le(area, FXSAVE.mxcsrMask, 4)
  for (let i = 0; i < 16; i++) regs[`xmm${i}`] = le(area, FXSAVE.xmm + 16 * i, 16)
  if (layout && area.length >= XSTATE_BV + 8) extendedRegisters(area, layout, le(area, XSTATE_BV, 8), regs)
  return regs
}

/** Bytes [offset, offset + length) of component `bit`, or zeros when the component is in its init state. */
function component(
  area: Uint8Array,
  layout: XsaveLayout,
  xstateBv: bigint,
  bit: number,
  offset: number,
  length: number,
): bigint {
  const base = layout.offsets.get(bit)
  if (base === undefined || !hasComponent(xstateBv, bit) || base + offset + length > area.length) return 0n
  return le(area, base + offset, length)
}

function extendedRegisters(
  area: Uint8Array,
  layout: XsaveLayout,
  xstateBv: bigint,
  regs: Record<string, bigint>,
): void {
  const { xcr0 } = layout
  const part = (bit: number, offset: number, length: number): bigint =>
    component(area, layout, xstateBv, bit, offset, length)
  const avx = hasComponent(xcr0, XSAVE_BIT.avx)
  const avx512 =
    avx &&
    hasComponent(xcr0, XSAVE_BIT.opmask) &&
    hasComponent(xcr0, XSAVE_BIT.zmmHi256) &&
    hasComponent(xcr0, XSAVE_BIT.hi16Zmm)
  for (let i = 0; i < 16 && avx; i++) {
    const ymm = (regs[`xmm${i}`] ?? 0n) | (part(XSAVE_BIT.avx, 16 * i, 16) << 128n)
    regs[`ymm${i}`] = ymm
    if (avx512) regs[`zmm${i}`] = ymm | (part(XSAVE_BIT.zmmHi256, 32 * i, 32) << 256n)
  }
  if (avx512) {
    for (let i = 16; i < 32; i++) {
      const zmm = part(XSAVE_BIT.hi16Zmm, 64 * (i - 16), 64)
      regs[`xmm${i}`] = zmm & ((1n << 128n) - 1n)
      regs[`ymm${i}`] = zmm & ((1n << 256n) - 1n)
      regs[`zmm${i}`] = zmm
    }
    for (let i = 0; i < 8; i++) regs[`k${i}`] = part(XSAVE_BIT.opmask, 8 * i, 8)
  }
  if (hasComponent(xcr0, XSAVE_BIT.pkru)) regs.pkru = part(XSAVE_BIT.pkru, 0, 4)
}

/** XCR0, the names of the enabled components and the area's size on this machine (computed once). */
export function xsaveFeatures(): RegisterFeatures {
  const layout = xsaveLayout()
  if (!layout) return { xcr0: 0n, components: [], xsaveSize: 0 }
  return { xcr0: layout.xcr0, components: componentNames(layout.xcr0), xsaveSize: layout.size }
}
