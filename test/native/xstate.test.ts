// Extended registers from the xsave area, checked against what the vector fixture loaded (pattern
// bytes, masks, x87 constants), against gdb at the same stop, and on hand-made areas (init state).
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { beforeAll, describe, expect, it } from 'vitest'
import { PtraceError } from '../../src/errors.js'
import { XSAVE_BIT, standardLayout, xsaveLayout } from '../../src/native/arch/x86_64-xsave-layout.js'
import { decodeXState, readXState, xsaveFeatures } from '../../src/native/arch/x86_64-xstate.js'
import { fixture, start } from '../helpers.js'

const VECTOR = fixture('vector')
const CPUINFO = readFileSync('/proc/cpuinfo', 'latin1')
const AVX512 = /\bavx512f\b/.test(CPUINFO)
const PKU = /\bospke\b/.test(CPUINFO)
const MASKS = [0n, 0x1n, 0xffn, 0xf0f0n, 0x12345678n, 0xffffffffffffffffn, 0x8000000000000001n, 0x0123456789abcdefn]

/** What the fixture put in register r, `bits` wide: pattern bytes 64r.. little-endian, byte i = i * 7 + 1. */
function loaded(r: number, bits: number): bigint {
  let value = 0n
  for (let i = bits / 8 - 1; i >= 0; i--) value = (value << 8n) | BigInt(((64 * r + i) * 7 + 1) & 0xff)
  return value
}

/** gdb's view of the registers at checkpoint, by our names: one gdb run for the whole file. */
function gdbRegisters(): Record<string, bigint> {
  const ask: Array<[string, string]> = []
  for (let i = 0; i < (AVX512 ? 32 : 16); i++) {
    ask.push([`xmm${i}`, `p/x $xmm${i}.uint128`], [`ymm${i}`, `p/x $ymm${i}.v2_int128`])
    if (AVX512) ask.push([`zmm${i}`, `p/x $zmm${i}.v4_int128`])
  }
  if (AVX512) for (let i = 0; i < 8; i++) ask.push([`k${i}`, `p/x $k${i}`])
  if (PKU) ask.push(['pkru', 'p/x $pkru'])
  for (let i = 0; i < 8; i++) ask.push([`st${i}`, `info registers st${i}`])
  ask.push(
    ['fcw', 'p/x $fctrl'],
    ['fsw', 'p/x $fstat'],
    ['ftw', 'p/x $ftag'],
    ['fop', 'p/x $fop'],
    ['mxcsr', 'p/x $mxcsr'],
  )
  // amd64 gdb splits the 64-bit FIP/FDP into offset (low 32 bits) and "segment" (high 32 bits).
  ask.push(
    ['fip', 'p/x ((unsigned long)$fiseg << 32) | (unsigned int)$fioff'],
    ['fdp', 'p/x ((unsigned long)$foseg << 32) | (unsigned int)$fooff'],
  )
  const args = ['-batch', '-nx', '-ex', 'break *checkpoint', '-ex', 'run']
  for (const [name, command] of ask) args.push('-ex', `echo @${name}=`, '-ex', command)
  const out = execFileSync('gdb', [...args, VECTOR], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
  const regs: Record<string, bigint> = {}
  for (const m of out.matchAll(/^@(\w+)=(.*)$/gm)) {
    const [, name = '', text = ''] = m
    const raw = /\(raw (0x[0-9a-f]+)\)/.exec(text)?.[1]
    const parts = [...text.replace(/^\$\d+ = /, '').matchAll(/0x[0-9a-f]+/g)].map((p) => BigInt(p[0]))
    regs[name] = raw !== undefined ? BigInt(raw) : parts.reduceRight((acc, p) => (acc << 128n) | p, 0n) // element 0 is the low one
  }
  return regs
}

describe('readXState on the vector fixture', () => {
  let ours: Record<string, bigint> = {}
  let gdb: Record<string, bigint> = {}
  let x87Address = 0n
  let atFip: Uint8Array = new Uint8Array()

  beforeAll(async () => {
    gdb = gdbRegisters()
    const proc = await start(VECTOR)
    proc.breakAt('checkpoint')
    await proc.cont()
    ours = proc.arch.readExtendedRegs?.(proc.thread.tid) ?? {}
    x87Address = proc.resolve('x87')
    atFip = proc.readMemory(ours.fip ?? 0n, 6)
  }, 30_000)

  it('holds what the program loaded: xmm, ymm, zmm (where the CPU has AVX-512) and the opmasks', () => {
    for (let r = 0; r < 16; r++) {
      expect(ours[`xmm${r}`], `xmm${r}`).toBe(loaded(r, 128))
      expect(ours[`ymm${r}`], `ymm${r}`).toBe(loaded(r, 256))
    }
    if (!AVX512) return
    for (let r = 0; r < 32; r++) expect(ours[`zmm${r}`], `zmm${r}`).toBe(loaded(r, 512))
    for (let r = 16; r < 32; r++) {
      expect(ours[`xmm${r}`], `xmm${r}`).toBe(loaded(r, 128))
      expect(ours[`ymm${r}`], `ymm${r}`).toBe(loaded(r, 256))
    }
    MASKS.forEach((mask, i) => expect(ours[`k${i}`], `k${i}`).toBe(mask))
  })

  it('holds the x87 stack as exact 80-bit values, the full tag word and the control registers', () => {
    expect(ours.st0).toBe(0x3fffc000000000000000n) // 1.5
    expect(ours.st1).toBe(0x4000c90fdaa22168c235n) // pi, rounded to 64 bits of mantissa
    expect(ours.st2).toBe(0x80000000000000000000n) // -0.0
    expect((ours.st3 ?? 0n) >> 64n).toBe(0n) // a denormal: exponent 0, mantissa non-zero
    expect(ours.st3).not.toBe(0n)
    for (let i = 4; i < 8; i++) expect(ours[`st${i}`], `st${i}`).toBe(0n) // fninit emptied them
    expect(ours.fsw).toBe(0x2000n) // TOP = 4 after four loads, no exception flag
    // Physical registers 7..0 hold st3 (special: denormal), st2 (zero), st1, st0 (valid), then four empty ones.
    expect(ours.ftw).toBe(0x90ffn)
    expect(ours.fcw).toBe(0x37fn)
    expect(ours.mxcsr).toBe(0xbf80n)
    expect((ours.mxcsr_mask ?? 0n) & 0xffbfn).toBe(0xffbfn)
  })

  it('has the 64-bit x87 instruction and data pointers of the last fldt', () => {
    // fip: the `fldt x87(%rip)` instruction, DB /5 with a rip-relative operand that is x87 itself.
    expect([...atFip.subarray(0, 2)]).toEqual([0xdb, 0x2d])
    expect((ours.fip ?? 0n) + 6n + BigInt(Buffer.from(atFip).readInt32LE(2))).toBe(x87Address)
    if (ours.fdp !== 0n) expect(ours.fdp).toBe(x87Address) // CPUs with FDP_EXCPTN_ONLY leave it 0
    if (ours.fop !== 0n) expect(ours.fop).toBe(0x32dn) // 11 bits: DB & 7, then the ModR/M byte
  })

  it('agrees with gdb on every register gdb shows', () => {
    const names = Object.keys(gdb)
    expect(names.length).toBeGreaterThanOrEqual(AVX512 ? 32 * 3 + 8 + 15 : 32 + 15)
    expect(gdb.mxcsr).toBe(0xbf80n) // gdb stopped where we did
    for (const name of names) expect(ours[name], name).toBe(gdb[name])
  })

  it('names exactly the registers this CPU has', () => {
    const vectors = AVX512 ? 32 * 3 + 8 : 32
    expect(Object.keys(ours).length).toBe(8 + 8 + vectors + (PKU ? 1 : 0)) // st0-7, fcw..mxcsr_mask
    expect('pkru' in ours).toBe(PKU)
  })
})

describe('decodeXState', () => {
  const layout = xsaveLayout()

  /** An xsave area full of 0xa5 garbage with `xstateBv` as its XSTATE_BV. */
  function garbage(xstateBv: bigint): Uint8Array {
    const area = new Uint8Array(Math.max(layout?.size ?? 0, 4096)).fill(0xa5)
    Buffer.from(area.buffer).writeBigUInt64LE(xstateBv, 512)
    return area
  }

  it('reads a component whose XSTATE_BV bit is clear as zeros (its init state), not as the bytes there', () => {
    if (!layout) throw new Error('CPUID cannot run here')
    const all = decodeXState(garbage(layout.xcr0), layout)
    const init = decodeXState(garbage(layout.xcr0 & 3n), layout)
    const fill = (bits: number): bigint => ((1n << BigInt(bits)) - 1n) & BigInt(`0x${'a5'.repeat(bits / 8)}`)
    expect(all.ymm3).toBe(fill(256))
    expect(init.xmm3).toBe(fill(128)) // the FXSAVE part is always there
    expect(init.ymm3).toBe(fill(128))
    if (!AVX512) return
    expect(all.zmm20).toBe(fill(512))
    expect(all.k7).toBe(fill(64))
    expect(init.zmm3).toBe(fill(128))
    expect(init.zmm20).toBe(0n)
    expect(init.k7).toBe(0n)
  })

  it('gives x87 and SSE only from a bare 512-byte FXSAVE area (kernels without XSAVE)', () => {
    const names = Object.keys(decodeXState(garbage(0n).subarray(0, 512), undefined))
    expect(names).toContain('st7')
    expect(names).toContain('xmm15')
    expect(names.filter((n) => /^(ymm|zmm|k)\d/.test(n))).toEqual([])
  })
})

describe('xsaveFeatures and the layout', () => {
  it('names the xsave components XCR0 enables on this CPU, bit by bit', () => {
    const features = xsaveFeatures()
    expect(features.components.slice(0, 3)).toEqual(['x87', 'sse', 'avx'])
    expect(features.xcr0 & 0x7n).toBe(0x7n)
    const bits: Record<string, bigint> = { opmask: 5n, zmm_hi256: 6n, hi16_zmm: 7n, pkru: 9n }
    for (const [name, bit] of Object.entries(bits))
      expect(features.components.includes(name), name).toBe(((features.xcr0 >> bit) & 1n) === 1n)
    expect(features.components.includes('opmask')).toBe(AVX512)
    expect(features.components.includes('pkru')).toBe(PKU)
    expect(xsaveFeatures()).toEqual(features)
  })

  it('takes offsets from CPUID 0xD, and they match the standard ones the fallback would use', () => {
    const layout = xsaveLayout()
    expect(layout?.source).toBe('cpuid')
    if (!layout) return
    expect(layout.offsets.get(XSAVE_BIT.avx)).toBe(576)
    const fallback = standardLayout(layout.xcr0).offsets
    expect(fallback.size).toBeGreaterThan(0)
    for (const [bit, offset] of fallback) expect(layout.offsets.get(bit), `component ${bit}`).toBe(offset)
    // The area ends after the last component: 256 bytes of YMM_Hi128, 1024 of Hi16_ZMM, 8 of PKRU, ...
    expect(xsaveFeatures().xsaveSize).toBeGreaterThanOrEqual(
      Math.max(...layout.offsets.values()) + (PKU ? 8 : AVX512 ? 1024 : 256),
    )
  })

  it('refuses a thread it does not trace with a typed error', () => {
    expect(() => readXState(process.pid)).toThrow(PtraceError)
  })
})
