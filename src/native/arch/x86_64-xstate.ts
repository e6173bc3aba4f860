// x86_64 registers beyond user_regs_struct, from the xsave area of a stopped thread
// (PTRACE_GETREGSET NT_X86_XSTATE): x87 (80-bit, exact), SSE, AVX, AVX-512 and PKRU.
import { readFileSync } from 'node:fs'
import { ProcessStateError, PtraceError } from '../../errors.js'
import { errnoName, PTRACE } from '../constants.js'
import { addressOf, lastErrno, sys } from '../libc.js'
import {
  componentName,
  componentNames,
  hasComponent,
  XSAVE_BIT,
  xsaveLayout,
  type XsaveLayout,
} from './x86_64-xsave-layout.js'
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
/** Byte offsets in the FXSAVE (legacy) region, the first 512 bytes of every xsave area. */
export const FXSAVE = {
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
/**
 * XCR0 as the kernel writes it for ptrace and core files, in the FXSAVE area's software-usable bytes
 * (`sw_usable_bytes[464..471]`, arch/x86/include/asm/user.h; gdb's I386_LINUX_XSAVE_XCR0_OFFSET).
 * A signal frame's `_fpx_sw_bytes` puts it at 472 instead: not this area.
 */
const SW_XFEATURES = 464
/** XSTATE_BV: which components are not in their init state (a clear bit reads as zeros). */
export const XSTATE_BV = 512

/** A DataView per area, made once: decoding reads an area a register at a time. */
const views = new WeakMap<Uint8Array, DataView>()

function viewOf(area: Uint8Array): DataView {
  if (area.buffer === AREA.buffer) return VIEW
  let view = views.get(area)
  if (!view) views.set(area, (view = new DataView(area.buffer, area.byteOffset, area.byteLength)))
  return view
}

/** `length` bytes at `offset`, little-endian. */
function le(area: Uint8Array, offset: number, length: number): bigint {
  const view = viewOf(area)
  if (length === 2) return BigInt(view.getUint16(offset, true))
  if (length === 4) return BigInt(view.getUint32(offset, true))
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
  const area = readArea(tid)
  return decodeXState(area, xsaveAreaLayout(area))
}

/** A copy of the xsave area of a stopped thread as the kernel gives it (512 bytes of FXSAVE without XSAVE). */
export function readXStateArea(tid: number): Uint8Array {
  return readArea(tid).slice()
}

/**
 * Writes an area as `readXStateArea` gives it (whole: the kernel takes no less) into a stopped thread
 * with PTRACE_SETREGSET: NT_X86_XSTATE, or NT_PRFPREG for a 512-byte FXSAVE area. 0, or the errno
 * (EINVAL: an XSTATE_BV bit outside XCR0, or MXCSR bits the CPU reserves; EFAULT: a wrong size).
 */
export function writeXStateArea(tid: number, area: Uint8Array): number {
  const iovec = Buffer.alloc(16)
  iovec.writeBigUInt64LE(addressOf(area), 0)
  iovec.writeBigUInt64LE(BigInt(area.length), 8)
  const type = area.length > FXSAVE.size ? NT_X86_XSTATE : NT_PRFPREG
  return Number(sys.ptraceBuf(PTRACE.SETREGSET, tid, type, iovec)) === 0 ? 0 : lastErrno()
}

/** The layout of an area from this machine's kernel: this CPU's, its XCR0 read from the area where CPUID cannot run. */
export function xsaveAreaLayout(area: Uint8Array): XsaveLayout | undefined {
  return area.length > XSTATE_BV ? xsaveLayout(le(area, SW_XFEATURES, 8)) : undefined
}

/** The area in AREA (valid until the next read). */
function readArea(tid: number): Uint8Array {
  let size = getRegset(tid, NT_X86_XSTATE)
  if (size === -ENODEV || size === -EINVAL) size = getRegset(tid, NT_PRFPREG)
  if (size === -ESRCH && threadGone(tid))
    throw new ProcessStateError(
      'ERR_PROCESS_ENDED',
      `Cannot read the x87/SSE/AVX registers of thread ${tid}: it is gone. The process was ` +
        `killed or ended outside procsnap since its last stop (a SIGKILL from elsewhere, the OOM ` +
        `killer); await proc.wait() to learn how it ended.`,
    )
  if (size < 0) {
    throw new PtraceError(
      'ERR_PTRACE',
      -size,
      `Reading the x87/SSE/AVX registers of thread ${tid} failed (${errnoName(-size)}): the thread is gone or not stopped.`,
    )
  }
  return AREA.subarray(0, size)
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
  // A component whose offset is unknown (no CPUID here) gives no registers at all, never zeros.
  const decoded = (bit: number): boolean => hasComponent(xcr0, bit) && layout.offsets.has(bit)
  const avx = decoded(XSAVE_BIT.avx)
  const avx512 = avx && decoded(XSAVE_BIT.opmask) && decoded(XSAVE_BIT.zmmHi256) && decoded(XSAVE_BIT.hi16Zmm)
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
  if (decoded(XSAVE_BIT.pkru)) regs.pkru = part(XSAVE_BIT.pkru, 0, 4)
}

/** Reads one register out of an xsave area. */
export interface AreaDecoder {
  readonly name: string
  decode(area: Uint8Array): bigint
}

const decoderCache = new Map<string, readonly AreaDecoder[]>()

/**
 * The registers `decodeXState` gives for areas of `area`'s layout and size, in its order, each decoded
 * on its own (the same table, built once, for every such area): a register costs nothing until read.
 */
export function xstateDecoders(area: Uint8Array): readonly AreaDecoder[] {
  const layout = xsaveAreaLayout(area)
  const extended = layout !== undefined && area.length >= XSTATE_BV + 8
  // On this machine a layout is fixed by XCR0 and how it was learnt (CPUID, or the fallback without it).
  const key = area.length < FXSAVE.size ? 'none' : extended ? `${layout.source}:${layout.xcr0}` : 'fxsave'
  let table = decoderCache.get(key)
  if (!table) {
    table = area.length < FXSAVE.size ? [] : buildDecoders(extended ? layout : undefined)
    decoderCache.set(key, table)
  }
  return table
}

function buildDecoders(layout: XsaveLayout | undefined): AreaDecoder[] {
  const table: AreaDecoder[] = []
  const add = (name: string, decode: (area: Uint8Array) => bigint): number => table.push({ name, decode })
  const st = (area: Uint8Array, i: number): bigint => le(area, FXSAVE.st + 16 * i, 10)
  for (let i = 0; i < 8; i++) add(`st${i}`, (a) => st(a, i))
  add('fcw', (a) => le(a, FXSAVE.fcw, 2))
  add('fsw', (a) => le(a, FXSAVE.fsw, 2))
  add('ftw', (a) =>
    fullTagWord(
      a[FXSAVE.ftw] ?? 0,
      Number(le(a, FXSAVE.fsw, 2)),
      Array.from({ length: 8 }, (_, i) => st(a, i)),
    ),
  )
  add('fop', (a) => le(a, FXSAVE.fop, 2))
  add('fip', (a) => le(a, FXSAVE.fip, 8))
  add('fdp', (a) => le(a, FXSAVE.fdp, 8))
  add('mxcsr', (a) => le(a, FXSAVE.mxcsr, 4))
  add('mxcsr_mask', (a) => le(a, FXSAVE.mxcsrMask, 4))
  const xmm = (area: Uint8Array, i: number): bigint => le(area, FXSAVE.xmm + 16 * i, 16)
  for (let i = 0; i < 16; i++) add(`xmm${i}`, (a) => xmm(a, i))
  if (!layout) return table
  const decoded = (bit: number): boolean => hasComponent(layout.xcr0, bit) && layout.offsets.has(bit)
  const avx = decoded(XSAVE_BIT.avx)
  const avx512 = avx && decoded(XSAVE_BIT.opmask) && decoded(XSAVE_BIT.zmmHi256) && decoded(XSAVE_BIT.hi16Zmm)
  // As component() does, with each component's offset looked up once and XSTATE_BV's low bits as a number.
  const part = (bit: number): Part => {
    const base = layout.offsets.get(bit) ?? 0
    return (area, offset, length, whole = length) =>
      ((viewOf(area).getUint32(XSTATE_BV, true) >>> bit) & 1) === 0 || base + offset + whole > area.length
        ? 0n
        : le(area, base + offset, length)
  }
  const [upper, zmmHi, hi16, opmask, pkru] = [
    XSAVE_BIT.avx,
    XSAVE_BIT.zmmHi256,
    XSAVE_BIT.hi16Zmm,
    XSAVE_BIT.opmask,
    XSAVE_BIT.pkru,
  ].map(part) as [Part, Part, Part, Part, Part]
  const ymm = (area: Uint8Array, i: number): bigint => xmm(area, i) | (upper(area, 16 * i, 16) << 128n)
  for (let i = 0; i < 16 && avx; i++) {
    add(`ymm${i}`, (a) => ymm(a, i))
    if (avx512) add(`zmm${i}`, (a) => ymm(a, i) | (zmmHi(a, 32 * i, 32) << 256n))
  }
  if (avx512) {
    for (let i = 16; i < 32; i++) {
      const at = 64 * (i - 16)
      // The low bits of zmm<i>: zero, as zmm<i> is, when the area is too short to hold all of it.
      add(`xmm${i}`, (a) => hi16(a, at, 16, 64))
      add(`ymm${i}`, (a) => hi16(a, at, 32, 64))
      add(`zmm${i}`, (a) => hi16(a, at, 64))
    }
    for (let i = 0; i < 8; i++) add(`k${i}`, (a) => opmask(a, 8 * i, 8))
  }
  if (decoded(XSAVE_BIT.pkru)) add('pkru', (a) => pkru(a, 0, 4))
  return table
}

/** `length` bytes at `offset` of one component, zero in its init state or when `whole` bytes do not fit in the area. */
type Part = (area: Uint8Array, offset: number, length: number, whole?: number) => bigint

/** The xsave components that hold register `name` (all of them needed to decode it), or undefined if none. */
function componentsOf(name: string): number[] | undefined {
  if (name === 'pkru') return [XSAVE_BIT.pkru]
  const m = /^(xmm|ymm|zmm|k)(\d+)$/.exec(name)
  if (!m) return undefined
  const [, kind = '', digits = ''] = m
  const index = Number(digits)
  const avx512 = [XSAVE_BIT.avx, XSAVE_BIT.opmask, XSAVE_BIT.zmmHi256, XSAVE_BIT.hi16Zmm]
  if (kind === 'k') return index < 8 ? avx512 : undefined
  if (index >= 32) return undefined
  if (index >= 16 || kind === 'zmm') return avx512
  return kind === 'ymm' ? [XSAVE_BIT.avx] : undefined
}

/**
 * Why thread `tid` has no register `name` that x86_64 can have: the OS did not enable its xsave
 * component (the CPU lacks it), or its offset is unknown because CPUID cannot be run here.
 * Undefined for a name that is no such register, or one that `readXState` does give.
 */
export function explainMissingXState(tid: number, name: string): string | undefined {
  if (!componentsOf(name)) return undefined
  const size = getRegset(tid, NT_X86_XSTATE)
  if (size === -ENODEV || size === -EINVAL) return explainMissingInArea(name, AREA.subarray(0, FXSAVE.size))
  if (size < 0) return undefined
  return explainMissingInArea(name, AREA.subarray(0, size))
}

/** As `explainMissingXState`, for an area of a thread of this machine (its size and XCR0 tell the rest). */
export function explainMissingInArea(name: string, area: Uint8Array): string | undefined {
  const bits = componentsOf(name)
  if (!bits) return undefined
  if (area.length <= XSTATE_BV)
    return `this CPU or kernel has no xsave area (only FXSAVE's x87 and SSE registers), so there is no ${name}`
  const layout = xsaveAreaLayout(area)
  if (!layout) return undefined
  const xcr0 = `XCR0 0x${layout.xcr0.toString(16)}`
  const state = (of: number[]): string => {
    const names = of.map(componentName).join(', ')
    return of.length > 1 ? `AVX-512 state (xsave components ${names})` : `xsave component ${names}`
  }
  const absent = bits.filter((bit) => !hasComponent(layout.xcr0, bit))
  if (absent.length > 0) return `this CPU or kernel does not enable ${state(absent)} (${xcr0}), so there is no ${name}`
  const unknown = bits.filter((bit) => layout.undecoded.includes(bit))
  if (unknown.length === 0) return undefined
  return (
    `${name} is ${state(unknown)}, which this CPU has (${xcr0}), but only CPUID leaf 0xD says where that lies ` +
    `in the xsave area (Intel and AMD differ), and CPUID cannot run in this process: it needs an executable page, ` +
    `which this system refuses (MemoryDenyWriteExecute, SELinux execmem). procsnap does not guess; ` +
    `the x87, SSE and AVX registers are there as usual`
  )
}

/** XCR0, the names of the enabled components and the area's size on this machine (computed once). */
export function xsaveFeatures(): RegisterFeatures {
  const layout = xsaveLayout()
  if (!layout) return { xcr0: 0n, components: [], xsaveSize: 0 }
  return { xcr0: layout.xcr0, components: componentNames(layout.xcr0), xsaveSize: layout.size }
}
