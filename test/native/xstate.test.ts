// Extended registers from the xsave area, checked twice: against what the vector fixture loaded
// (pattern bytes, masks, x87 constants) and against gdb at the same stop.
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { beforeAll, describe, expect, it } from 'vitest'
import { xsaveFeatures } from '../../src/native/arch/x86_64-xstate.js'
import { fixture, start } from '../helpers.js'

const VECTOR = fixture('vector')
const AVX512 = /\bavx512f\b/.test(readFileSync('/proc/cpuinfo', 'latin1'))
const MASKS = [0n, 0x1n, 0xffn, 0xf0f0n, 0x12345678n, 0xffffffffffffffffn, 0x8000000000000001n, 0x0123456789abcdefn]

/** What the fixture put in register r, `bits` wide: pattern bytes 64r.. little-endian, byte i = i * 7 + 1. */
function loaded(r: number, bits: number): bigint {
  let value = 0n
  for (let i = bits / 8 - 1; i >= 0; i--) value = (value << 8n) | BigInt(((64 * r + i) * 7 + 1) & 0xff)
  return value
}

function joinParts(parts: readonly bigint[]): bigint {
  return parts.reduceRight((acc, p) => (acc << 128n) | p, 0n)
}

/** gdb's view of the registers at vector_checkpoint, by our names. */
function gdbRegisters(): Record<string, bigint> {
  const ask: Array<[string, string]> = []
  for (let i = 0; i < (AVX512 ? 32 : 16); i++) {
    ask.push([`xmm${i}`, `p/x $xmm${i}.uint128`], [`ymm${i}`, `p/x $ymm${i}.v2_int128`])
    if (AVX512) ask.push([`zmm${i}`, `p/x $zmm${i}.v4_int128`])
  }
  if (AVX512) for (let i = 0; i < 8; i++) ask.push([`k${i}`, `p/x $k${i}`])
  for (let i = 0; i < 8; i++) ask.push([`st${i}`, `info registers st${i}`])
  ask.push(['fcw', 'p/x $fctrl'], ['fsw', 'p/x $fstat'], ['ftw', 'p/x $ftag'], ['fop', 'p/x $fop'], ['mxcsr', 'p/x $mxcsr'])
  const args = ['-batch', '-nx', '-ex', 'break *vector_checkpoint', '-ex', 'run']
  for (const [name, command] of ask) args.push('-ex', `echo @${name}=`, '-ex', command)
  const out = execFileSync('gdb', [...args, VECTOR], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
  const regs: Record<string, bigint> = {}
  for (const m of out.matchAll(/^@(\w+)=(.*)$/gm)) {
    const [, name = '', text = ''] = m
    const raw = /\(raw (0x[0-9a-f]+)\)/.exec(text)?.[1]
    const parts = [...text.replace(/^\$\d+ = /, '').matchAll(/0x[0-9a-f]+/g)].map((p) => BigInt(p[0]))
    regs[name] = raw !== undefined ? BigInt(raw) : joinParts(parts)
  }
  return regs
}

describe('extended registers (xsave)', () => {
  let ours: Record<string, bigint> = {}
  let gdb: Record<string, bigint> = {}

  beforeAll(async () => {
    gdb = gdbRegisters()
    const proc = await start(VECTOR)
    proc.breakAt('vector_checkpoint')
    await proc.cont()
    ours = proc.arch.readExtendedRegs?.(proc.thread.tid) ?? {}
  }, 30_000)

  it('holds what the program loaded: xmm, ymm, zmm (where the CPU has AVX-512) and the opmasks', () => {
    for (let r = 0; r < 16; r++) {
      expect(ours[`xmm${r}`], `xmm${r}`).toBe(loaded(r, 128))
      expect(ours[`ymm${r}`], `ymm${r}`).toBe(loaded(r, 256))
    }
    if (!AVX512) return
    for (let r = 0; r < 32; r++) expect(ours[`zmm${r}`], `zmm${r}`).toBe(loaded(r, 512))
    for (let r = 16; r < 32; r++) expect(ours[`xmm${r}`], `xmm${r}`).toBe(loaded(r, 128))
    MASKS.forEach((mask, i) => expect(ours[`k${i}`], `k${i}`).toBe(mask))
  })

  it('holds the x87 stack as exact 80-bit values and the control registers', () => {
    expect(ours.st0).toBe(0x3fffc000000000000000n) // 1.5
    expect(ours.st1).toBe(0x4000c90fdaa22168c235n) // pi, rounded to 64 bits of mantissa
    expect(ours.st2).toBe(0x80000000000000000000n) // -0.0
    expect((ours.st3 ?? 0n) >> 64n).toBe(0n) // a denormal: exponent 0, mantissa non-zero
    expect(ours.st3).not.toBe(0n)
    expect(ours.mxcsr).toBe(0xbf80n)
    expect(ours.fcw).toBe(0x37fn)
  })

  it('agrees with gdb on every register gdb shows', () => {
    const names = Object.keys(gdb)
    expect(names.length).toBeGreaterThanOrEqual(AVX512 ? 32 * 3 + 8 + 13 : 32 + 13)
    for (const name of names) expect(ours[name], name).toBe(gdb[name])
  })

  it('names the xsave components XCR0 enables on this CPU', () => {
    const features = xsaveFeatures()
    expect(features.components.slice(0, 3)).toEqual(['x87', 'sse', 'avx'])
    expect(features.xcr0 & 0x7n).toBe(0x7n)
    if (AVX512) expect(features.components).toEqual(expect.arrayContaining(['opmask', 'zmm_hi256', 'hi16_zmm']))
    expect(features.xsaveSize).toBeGreaterThanOrEqual(576)
    const flags = readFileSync('/proc/cpuinfo', 'latin1')
    expect(features.components.includes('pkru')).toBe(/\bospke\b/.test(flags))
  })
})

it('gdb is the oracle we think it is: it sees the fixture at its checkpoint', () => {
  expect(execFileSync('gdb', ['-batch', '-nx', '-ex', 'break *vector_checkpoint', '-ex', 'run', '-ex', 'p/x $mxcsr', VECTOR], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })).toMatch(/= 0xbf80/)
})
