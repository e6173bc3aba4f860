// Where each xsave state component lies in the (standard, non-compacted) xsave area of this CPU:
// XCR0 from XGETBV, offsets from CPUID leaf 0xD, as the kernel's PTRACE_GETREGSET lays them out.
// Vendors differ past AVX: opmask is at 1088 on Intel and 832 on AMD Zen 4, PKRU at 2688 on Intel,
// 2432 on Zen 3 and 832 on Zen 2. Only CPUID knows; without it, those components are not decoded.
import { cpuid, xgetbv } from '../cpuid.js'

/** Names of xsave state components by bit (Intel SDM vol. 1, 13.1). */
const COMPONENTS = [
  'x87',
  'sse',
  'avx',
  'bndregs',
  'bndcsr',
  'opmask',
  'zmm_hi256',
  'hi16_zmm',
  'pt',
  'pkru',
  'pasid',
  'cet_u',
  'cet_s',
  'hdc',
  'uintr',
  'lbr',
  'hwp',
  'tilecfg',
  'tiledata',
]

/**
 * Offsets the same on every CPU, the only ones used without CPUID: the legacy region (0-511, x87
 * and SSE) and the header (512-575) are architectural, and AVX's upper halves come right after the
 * header, at 576, in every vendor's standard format (Intel, AMD, Zhaoxin; gdb 14 assumes it too).
 */
const SAME_ON_EVERY_CPU: ReadonlyMap<number, readonly [offset: number, size: number]> = new Map([[2, [576, 256]]])

export const XSAVE_BIT = { x87: 0, sse: 1, avx: 2, opmask: 5, zmmHi256: 6, hi16Zmm: 7, pkru: 9 } as const

export interface XsaveLayout {
  /** The components the OS enabled (XCR0). */
  readonly xcr0: bigint
  /** Byte offset of each user component >= 2 present in XCR0 whose place is known. */
  readonly offsets: ReadonlyMap<number, number>
  /** Byte size of each component in `offsets` (CPUID 0xD.i EAX). */
  readonly sizes: ReadonlyMap<number, number>
  /** Size of the area for the enabled components (CPUID 0xD.0 EBX), 0 when unknown. */
  readonly size: number
  /**
   * 'cpuid' normally; 'fallback' when CPUID could not be run here: then only the offsets that are
   * the same on every CPU are known, and the rest of XCR0's components are in `undecoded`.
   */
  readonly source: 'cpuid' | 'fallback'
  /** Bits of the components >= 2 enabled in XCR0 whose offset is unknown: their registers are not decoded. */
  readonly undecoded: readonly number[]
}

/** [eax, ebx, ecx, edx] of CPUID `leaf`.`subleaf`, or undefined where it cannot be run. */
export type CpuidQuery = (leaf: number, subleaf: number) => readonly [number, number, number, number] | undefined

let cached: XsaveLayout | undefined

/**
 * The layout on this CPU. Where CPUID cannot be run (a system that refuses executable pages), the
 * layout of `swReservedXcr0` (bytes 464..471 of an area from PTRACE_GETREGSET) that
 * `fallbackLayout` knows, or undefined without it.
 */
export function xsaveLayout(swReservedXcr0?: bigint): XsaveLayout | undefined {
  if (cached) return cached
  const xcr0 = xgetbv(0)
  const layout = xcr0 === undefined ? undefined : layoutFromCpuid(xcr0, cpuid)
  if (layout) {
    cached = layout
    return cached
  }
  return swReservedXcr0 === undefined ? undefined : fallbackLayout(swReservedXcr0)
}

/**
 * The layout CPUID leaf 0xD describes for the components of `xcr0`: sub-leaf i gives component i's
 * size (EAX) and offset in the standard format (EBX); sub-leaf 0 the size of the whole area (EBX).
 * Undefined when `query` cannot run CPUID.
 */
export function layoutFromCpuid(xcr0: bigint, query: CpuidQuery): XsaveLayout | undefined {
  const leaf0 = query(0xd, 0)
  if (!leaf0) return undefined
  const offsets = new Map<number, number>()
  const sizes = new Map<number, number>()
  const undecoded: number[] = []
  for (let bit = 2; bit < 64; bit++) {
    if (!hasComponent(xcr0, bit)) continue
    const sub = query(0xd, bit)
    if (sub && sub[0] > 0) {
      offsets.set(bit, sub[1])
      sizes.set(bit, sub[0])
    } else undecoded.push(bit)
  }
  return { xcr0, offsets, sizes, size: leaf0[1], source: 'cpuid', undecoded }
}

/**
 * What can be known of the layout of `xcr0` without CPUID: the offsets that are the same on every
 * CPU (AVX at 576). Every other enabled component (opmask, zmm_hi256, hi16_zmm, pkru, ...) lies
 * where its vendor put it, so it is listed in `undecoded`, never given another CPU's offset.
 */
export function fallbackLayout(xcr0: bigint): XsaveLayout {
  const offsets = new Map<number, number>()
  const sizes = new Map<number, number>()
  const undecoded: number[] = []
  for (let bit = 2; bit < 64; bit++) {
    if (!hasComponent(xcr0, bit)) continue
    const place = SAME_ON_EVERY_CPU.get(bit)
    if (place === undefined) {
      undecoded.push(bit)
    } else {
      offsets.set(bit, place[0])
      sizes.set(bit, place[1])
    }
  }
  return { xcr0, offsets, sizes, size: 0, source: 'fallback', undecoded }
}

/** Names of the components set in XCR0, in bit order ('x87', 'sse', 'avx', 'opmask', ...). */
export function componentNames(xcr0: bigint): string[] {
  const names: string[] = []
  for (let bit = 0; bit < 64; bit++) {
    if (hasComponent(xcr0, bit)) names.push(componentName(bit))
  }
  return names
}

/** 'opmask' for 5, ..., 'component<bit>' past the known ones. */
export function componentName(bit: number): string {
  return COMPONENTS[bit] ?? `component${bit}`
}

export function hasComponent(xcr0: bigint, bit: number): boolean {
  return (xcr0 & (1n << BigInt(bit))) !== 0n
}
