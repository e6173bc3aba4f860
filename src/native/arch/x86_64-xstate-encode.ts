// The inverse of decodeXState: registers by name written into a copy of a thread's xsave area (as
// readXStateArea gives it), for PTRACE_SETREGSET. What the values do not name stays as it was.
import { RegisterError, ValueError } from '../../errors.js'
import {
  explainMissingInArea,
  FXSAVE,
  xsaveAreaLayout,
  XSTATE_BV,
  xstateDecoders,
  type AreaDecoder,
} from './x86_64-xstate.js'
import { componentNames, hasComponent, XSAVE_BIT, type XsaveLayout } from './x86_64-xsave-layout.js'

/** Bytes [offset, offset + bytes) of the area hold bits [shift, shift + 8 * bytes) of the register. */
interface Segment {
  /** The xsave component whose XSTATE_BV bit says whether these bytes are live. */
  readonly bit: number
  readonly offset: number
  readonly bytes: number
  readonly shift: number
}

/** MXCSR_MASK of a CPU that leaves it 0 in the FXSAVE area (Intel SDM vol. 1, 11.6.6). */
const DEFAULT_MXCSR_MASK = 0xffbfn
const LEGACY_X87: Readonly<Record<string, readonly [offset: number, bytes: number]>> = {
  fcw: [FXSAVE.fcw, 2],
  fsw: [FXSAVE.fsw, 2],
  fop: [FXSAVE.fop, 2],
  fip: [FXSAVE.fip, 8],
  fdp: [FXSAVE.fdp, 8],
}

/** Where register `name` lies in an area of `layout` (undefined: the area has no such register). */
function segmentsOf(name: string, layout: XsaveLayout | undefined): Segment[] | undefined {
  const x87 = LEGACY_X87[name]
  if (x87) return [{ bit: XSAVE_BIT.x87, offset: x87[0], bytes: x87[1], shift: 0 }]
  // MXCSR is SSE state for the kernel and XRSTOR (restored when SSE or AVX is), not x87's.
  if (name === 'mxcsr') return [{ bit: XSAVE_BIT.sse, offset: FXSAVE.mxcsr, bytes: 4, shift: 0 }]
  if (name === 'mxcsr_mask') return [{ bit: XSAVE_BIT.sse, offset: FXSAVE.mxcsrMask, bytes: 4, shift: 0 }]
  const m = /^(st|xmm|ymm|zmm|k)(\d+)$/.exec(name)
  if (name === 'pkru') return layout ? component(layout, XSAVE_BIT.pkru, 0, 4, 0) : undefined
  if (!m) return undefined
  const [, kind = '', digits = ''] = m
  const i = Number(digits)
  if (kind === 'st')
    return i < 8 ? [{ bit: XSAVE_BIT.x87, offset: FXSAVE.st + 16 * i, bytes: 10, shift: 0 }] : undefined
  if (kind === 'k')
    return i < 8 && layout ? avx512(layout, component(layout, XSAVE_BIT.opmask, 8 * i, 8, 0)) : undefined
  const bytes = kind === 'xmm' ? 16 : kind === 'ymm' ? 32 : 64
  if (i >= 16)
    return i < 32 && layout ? avx512(layout, component(layout, XSAVE_BIT.hi16Zmm, 64 * (i - 16), bytes, 0)) : undefined
  const low: Segment = { bit: XSAVE_BIT.sse, offset: FXSAVE.xmm + 16 * i, bytes: 16, shift: 0 }
  if (kind === 'xmm') return [low]
  const upper = layout ? component(layout, XSAVE_BIT.avx, 16 * i, 16, 128) : undefined
  if (!upper) return undefined
  if (kind === 'ymm') return [low, ...upper]
  const top = layout ? avx512(layout, component(layout, XSAVE_BIT.zmmHi256, 32 * i, 32, 256)) : undefined
  return top ? [low, ...upper, ...top] : undefined
}

/** One segment of component `bit`, if the layout knows where it lies. */
function component(
  layout: XsaveLayout,
  bit: number,
  offset: number,
  bytes: number,
  shift: number,
): Segment[] | undefined {
  const base = layout.offsets.get(bit)
  if (!hasComponent(layout.xcr0, bit) || base === undefined) return undefined
  return [{ bit, offset: base + offset, bytes, shift }]
}

/** As decodeXState: AVX-512 registers exist only when all three of its components (and AVX) are known. */
function avx512(layout: XsaveLayout, segments: Segment[] | undefined): Segment[] | undefined {
  const all = [XSAVE_BIT.avx, XSAVE_BIT.opmask, XSAVE_BIT.zmmHi256, XSAVE_BIT.hi16Zmm]
  return all.every((bit) => component(layout, bit, 0, 0, 0)) ? segments : undefined
}

const M64 = (1n << 64n) - 1n

/** Bits [shift, shift + 8 * bytes) of `value` into the segment's bytes, little-endian. */
function put(view: DataView, seg: Segment, value: bigint): void {
  let v = value >> BigInt(seg.shift)
  let at = seg.offset
  const end = seg.offset + seg.bytes
  for (; at + 8 <= end; at += 8, v >>= 64n) view.setBigUint64(at, v & M64, true)
  for (; at < end; at++, v >>= 8n) view.setUint8(at, Number(v & 0xffn))
}

/**
 * Whether the segment already reads as `value`'s bits there, as decodeXState reads it: the bytes,
 * or zeros for a component >= 2 in its init state (x87 and SSE bytes are read whatever their bits).
 */
function holds(view: DataView, xstateBv: bigint, seg: Segment, value: bigint): boolean {
  let v = value >> BigInt(seg.shift)
  if (seg.bit >= 2 && !hasComponent(xstateBv, seg.bit)) return (v & ((1n << BigInt(8 * seg.bytes)) - 1n)) === 0n
  let at = seg.offset
  const end = seg.offset + seg.bytes
  for (; at + 8 <= end; at += 8, v >>= 64n) if (view.getBigUint64(at, true) !== (v & M64)) return false
  for (; at < end; at++, v >>= 8n) if (view.getUint8(at) !== Number(v & 0xffn)) return false
  return true
}

/** The 8-bit abridged tag word FXSAVE keeps: bit i set when physical register i is not empty (tag != 3). */
function abridgedTags(ftw: bigint): number {
  let tags = 0
  for (let physical = 0; physical < 8; physical++)
    if (((ftw >> BigInt(2 * physical)) & 3n) !== 3n) tags |= 1 << physical
  return tags
}

function hex(value: bigint): string {
  return `0x${value.toString(16)}`
}

/** How to write one register of an area's layout (built once per layout). */
interface Slot {
  readonly name: string
  readonly segments: readonly Segment[]
  readonly bits: number
  /** The vector register it is a view of ('v0' for xmm0, ymm0 and zmm0), for catching two values for the same bits. */
  readonly family: string | undefined
  /** The end of its last byte in the area. */
  readonly end: number
}

interface Plan {
  /** Every register but ftw, a vector register's widest name first (zmm, ymm, xmm). */
  readonly slots: readonly Slot[]
  readonly names: ReadonlySet<string>
}

const plans = new WeakMap<readonly AreaDecoder[], Plan>()

function planFor(area: Uint8Array, layout: XsaveLayout | undefined): Plan {
  const decoders = xstateDecoders(area)
  const known = plans.get(decoders)
  if (known) return known
  const slots: Slot[] = []
  for (const d of decoders) {
    const segments = d.name === 'ftw' ? undefined : segmentsOf(d.name, layout)
    if (!segments) continue
    const vector = /^(zmm|ymm|xmm)(\d+)$/.exec(d.name)
    slots.push({
      name: d.name,
      segments,
      bits: segments.reduce((sum, seg) => sum + 8 * seg.bytes, 0),
      family: vector ? `v${vector[2] ?? ''}` : undefined,
      end: Math.max(...segments.map((seg) => seg.offset + seg.bytes)),
    })
  }
  const rank = (slot: Slot): number => (/^zmm/.test(slot.name) ? 0 : /^ymm/.test(slot.name) ? 1 : 2)
  slots.sort((a, b) => rank(a) - rank(b))
  const plan: Plan = { slots, names: new Set(decoders.map((d) => d.name)) }
  plans.set(decoders, plan)
  return plan
}

/**
 * A copy of `template` (a thread's xsave area as readXStateArea gives it, on this machine) with the
 * registers of `values` written in, under the names and widths decodeXState gives; every value a
 * bigint in [0, 2^width). A register whose value is already what the area decodes to is not
 * touched, so encodeXState(decodeXState(A), A) is A byte for byte. Writing a component in its init
 * state (XSTATE_BV bit clear, read as zeros) zeroes its bytes first and sets its bit. Only the
 * empty/non-empty half of `ftw` is stored (FXSAVE's abridged tag word): the rest is recomputed from
 * the registers' contents on reading, as the CPU does. `mxcsr_mask` is written as given, but it
 * describes the CPU: XRSTOR ignores it and the next XSAVE rewrites it.
 * Throws RegisterError for a name the area has no register for (with why: the CPU lacks the
 * component), ValueError for a value out of range, MXCSR bits the CPU reserves, or two names
 * (xmm0 and ymm0) that give different values to the same bits. Names in `skip` are left out.
 */
export function encodeXState(
  values: Readonly<Record<string, bigint>>,
  template: Uint8Array,
  skip?: ReadonlySet<string>,
): Uint8Array {
  const area = template.slice()
  if (area.length < FXSAVE.size)
    throw new RegisterError(
      `This thread has no x87/SSE register area (${area.length} bytes), so no register of it can be written.`,
    )
  const layout = area.length >= XSTATE_BV + 8 ? xsaveAreaLayout(area) : undefined
  const plan = planFor(area, layout)
  for (const name in values) if (!plan.names.has(name) && !skip?.has(name)) throw missing(name, area, layout)
  const view = new DataView(area.buffer, area.byteOffset, area.byteLength)
  const bv = (): bigint => (area.length >= XSTATE_BV + 8 ? view.getBigUint64(XSTATE_BV, true) : 0n)
  const live = (bit: number): void => {
    if (area.length < XSTATE_BV + 8 || hasComponent(bv(), bit)) return
    const base = layout?.offsets.get(bit)
    const size = layout?.sizes.get(bit)
    // Bytes of a component in its init state mean nothing: its init value (zeros) is what it holds.
    if (bit >= 2 && base !== undefined && size !== undefined) area.fill(0, base, Math.min(base + size, area.length))
    view.setBigUint64(XSTATE_BV, bv() | (1n << BigInt(bit)), true)
  }
  // Vector registers given under a wider name already: a narrower name must be its low bits.
  const given = new Map<string, string>()
  for (const slot of plan.slots) {
    const value = values[slot.name]
    if (value === undefined || skip?.has(slot.name)) continue
    const { name, bits } = slot
    if (typeof value !== 'bigint' || value < 0n || value >> BigInt(bits) !== 0n)
      throw new ValueError(
        `Cannot write ${String(value)} to ${name}: it takes an integer from 0 to 2^${bits} - 1 (a bigint).`,
      )
    if (name === 'mxcsr') checkMxcsr(value, view)
    if (slot.end > area.length)
      throw new ValueError(
        `Cannot write ${name}: the xsave area given is ${area.length} bytes, too short to hold it (up to byte ${slot.end}). ` +
          `Pass the whole area readXStateArea gives.`,
      )
    const wider = slot.family === undefined ? undefined : given.get(slot.family)
    if (wider !== undefined) {
      const whole = values[wider] ?? 0n
      if (BigInt.asUintN(bits, whole) === value) continue
      throw new ValueError(
        `${name} = ${hex(value)} and ${wider} = ${hex(whole)} give different values to the same bits ` +
          `(${name} is the low ${bits} bits of ${wider}). Give each register once, under the widest name you mean to set.`,
      )
    }
    if (slot.family !== undefined) given.set(slot.family, name)
    const current = bv()
    if (slot.segments.every((seg) => holds(view, current, seg, value))) continue
    for (const seg of slot.segments) {
      live(seg.bit)
      put(view, seg, value)
    }
  }
  const ftw = values.ftw
  if (ftw !== undefined && !skip?.has('ftw')) {
    if (typeof ftw !== 'bigint' || ftw < 0n || ftw > 0xffffn)
      throw new ValueError(
        `Cannot write ${String(ftw)} to ftw: it takes the 16-bit tag word (0 to 0xffff), as a bigint.`,
      )
    const tags = abridgedTags(ftw)
    if (area[FXSAVE.ftw] !== tags) {
      live(XSAVE_BIT.x87)
      area[FXSAVE.ftw] = tags
    }
  }
  return area
}

/** Reserved MXCSR bits make the kernel refuse the whole area (EINVAL): say which ones instead. */
function checkMxcsr(value: bigint, view: DataView): void {
  const cpuMask = BigInt(view.getUint32(FXSAVE.mxcsrMask, true))
  const mask = cpuMask === 0n ? DEFAULT_MXCSR_MASK : cpuMask
  if ((value & ~mask) !== 0n)
    throw new ValueError(
      `Cannot write ${hex(value)} to mxcsr: bits ${hex(value & ~mask)} are reserved on this CPU (its MXCSR_MASK is ` +
        `${hex(mask)}; DAZ, bit 6, is missing on some old CPUs). Clear them.`,
    )
}

function missing(name: string, area: Uint8Array, layout: XsaveLayout | undefined): RegisterError {
  const why = explainMissingInArea(name, area)
  const components = layout ? componentNames(layout.xcr0).join(', ') : 'x87, sse (FXSAVE only)'
  if (why)
    return new RegisterError(
      `Cannot write ${name}: ${why}. This CPU's register state: ${components}. A snapshot taken on a CPU that has ` +
        `it cannot put it back here: leave ${name} (and the registers of the same state) out of the values to write.`,
    )
  return new RegisterError(
    `Unknown x86_64 extended register '${name}'. Known: st0-st7, fcw, fsw, ftw, fop, fip, fdp, mxcsr, ` +
      `mxcsr_mask, xmm0-xmm15, and where this CPU has them ymm0-ymm15, zmm0-zmm31, xmm16-xmm31, ymm16-ymm31, ` +
      `k0-k7, pkru (this CPU's register state: ${components}).`,
  )
}
