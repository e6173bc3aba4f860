// Where each xsave state component lies in the (standard, non-compacted) xsave area of this CPU:
// XCR0 from XGETBV, offsets from CPUID leaf 0xD, as the kernel's PTRACE_GETREGSET lays them out.
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
 * Offsets of the standard format on every CPU we know of, used only where CPUID cannot be run
 * (a system refusing executable pages): XCR0 then comes from the area's software-reserved bytes.
 */
const STANDARD_OFFSETS: ReadonlyMap<number, number> = new Map([
  [2, 576],
  [5, 1088],
  [6, 1152],
  [7, 1664],
  [9, 2688],
])

export const XSAVE_BIT = { x87: 0, sse: 1, avx: 2, opmask: 5, zmmHi256: 6, hi16Zmm: 7, pkru: 9 } as const

export interface XsaveLayout {
  /** The components the OS enabled (XCR0). */
  readonly xcr0: bigint
  /** Byte offset of each user component >= 2 present in XCR0. */
  readonly offsets: ReadonlyMap<number, number>
  /** Size of the area for the enabled components (CPUID 0xD.0 EBX), 0 when unknown. */
  readonly size: number
  /** 'cpuid' normally; 'fallback' when the offsets are the standard ones, not read from this CPU. */
  readonly source: 'cpuid' | 'fallback'
}

let cached: XsaveLayout | undefined

/** The layout on this CPU, or from `swReservedXcr0` (bytes 472..479 of an xsave area) when CPUID cannot be run. */
export function xsaveLayout(swReservedXcr0?: bigint): XsaveLayout | undefined {
  if (cached) return cached
  const xcr0 = xgetbv(0)
  const leaf0 = cpuid(0xd, 0)
  if (xcr0 !== undefined && leaf0) {
    const offsets = new Map<number, number>()
    for (let bit = 2; bit < 32; bit++) {
      if (!hasComponent(xcr0, bit)) continue
      const sub = cpuid(0xd, bit)
      if (sub && sub[0] > 0) offsets.set(bit, sub[1])
    }
    cached = { xcr0, offsets, size: leaf0[1], source: 'cpuid' }
    return cached
  }
  return swReservedXcr0 === undefined ? undefined : standardLayout(swReservedXcr0)
}

/** The fallback: the standard offsets of the components set in `xcr0`, not read from this CPU. */
export function standardLayout(xcr0: bigint): XsaveLayout {
  const offsets = new Map([...STANDARD_OFFSETS].filter(([bit]) => hasComponent(xcr0, bit)))
  return { xcr0, offsets, size: 0, source: 'fallback' }
}

/** Names of the components set in XCR0, in bit order ('x87', 'sse', 'avx', 'opmask', ...). */
export function componentNames(xcr0: bigint): string[] {
  const names: string[] = []
  for (let bit = 0; bit < 64; bit++) {
    if ((xcr0 & (1n << BigInt(bit))) !== 0n) names.push(COMPONENTS[bit] ?? `component${bit}`)
  }
  return names
}

export function hasComponent(xcr0: bigint, bit: number): boolean {
  return (xcr0 & (1n << BigInt(bit))) !== 0n
}
