// The registers of a core's xsave area (NT_X86_XSTATE, or NT_FPREGSET's FXSAVE image). Its layout is
// chosen by its size and XCR0 (bytes 464..): procsnap and gdb 13 write Intel's standard offsets
// (layout.ts XSAVE), the kernel writes its CPU's (CPUID 0xD): opmask at 832 on AMD Zen 4, 1088 on Intel.
import { decodeXState, XSTATE_BV } from '../native/arch/x86_64-xstate.js'
import { hasComponent, xsaveLayout, fallbackLayout, type XsaveLayout } from '../native/arch/x86_64-xsave-layout.js'
import { XSAVE } from './layout.js'

/** Intel's standard layout of `xcr0`'s components, when an area of `size` bytes is exactly that. */
function intelLayout(xcr0: bigint, size: number): XsaveLayout | undefined {
  const offsets = new Map<number, number>()
  const sizes = new Map<number, number>()
  let end: number = XSAVE.headerEnd
  for (let bit = 2; bit < 64; bit++) {
    if (!hasComponent(xcr0, bit)) continue
    const place = XSAVE.components.get(bit)
    if (!place) return undefined // a component procsnap does not write (AMX, CET): not Intel's layout as we know it
    offsets.set(bit, place[0])
    sizes.set(bit, place[1])
    end = Math.max(end, place[0] + place[1])
  }
  return end === size ? { xcr0, offsets, sizes, size, source: 'cpuid', undecoded: [] } : undefined
}

/**
 * Where the components of an area of `size` bytes for `xcr0` lie: Intel's standard offsets when the
 * size is theirs; this CPU's (CPUID) when the size and XCR0 are this machine's (a kernel core written
 * here); otherwise only what is the same on every CPU (AVX at 576), the rest left undecoded.
 */
export function coreXsaveLayout(xcr0: bigint, size: number): XsaveLayout {
  const here = xsaveLayout(xcr0)
  if (here?.source === 'cpuid' && here.xcr0 === xcr0 && here.size === size) return here
  return intelLayout(xcr0, size) ?? fallbackLayout(xcr0)
}

/** Registers by name of a core's xsave area, and the XCR0 it describes (undefined for a 512-byte FXSAVE image). */
export function decodeCoreXState(area: Uint8Array): { regs: Record<string, bigint>; xcr0?: bigint } {
  if (area.length <= XSTATE_BV) return { regs: decodeXState(area, undefined) }
  const xcr0 = new DataView(area.buffer, area.byteOffset, area.byteLength).getBigUint64(XSAVE.swXcr0, true)
  return { regs: decodeXState(area, coreXsaveLayout(xcr0, area.length)), xcr0 }
}
