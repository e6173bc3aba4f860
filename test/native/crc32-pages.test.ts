// The CRC-32 kernel (src/native/kernels/crc32.c, run from an executable page) against zlib's crc32,
// on crafted and random pages, and its machine code against a rebuild with the same compiler.
import { execFileSync } from 'node:child_process'
import { randomFillSync } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { crc32 } from 'node:zlib'
import { afterEach, describe, expect, it } from 'vitest'
import { KERNEL_COMPILER } from '../../src/native/code-page.js'
import { CRC32_CODE, crc32Pages, hasCrcKernel, useCrcKernel } from '../../src/native/crc32-pages.js'
import { cpuid } from '../../src/native/cpuid.js'
import { crcPages } from '../../src/files/shared-pages.js'

const BUILD = fileURLToPath(new URL('../../src/native/kernels/build.sh', import.meta.url))
const SOURCE = fileURLToPath(new URL('../../src/native/kernels/crc32.c', import.meta.url))
const PAGE = 4096

function zlibPages(bytes: Uint8Array): number[] {
  return Array.from({ length: bytes.length / PAGE }, (_, p) => crc32(bytes.subarray(p * PAGE, (p + 1) * PAGE)))
}

/** 64 pages: zeros, ones, one bit set at each end, a counter, then random ones. */
function crafted(shared: boolean): Uint8Array {
  const bytes = shared ? new Uint8Array(new SharedArrayBuffer(64 * PAGE)) : new Uint8Array(64 * PAGE)
  bytes.fill(0xff, PAGE, 2 * PAGE)
  bytes[2 * PAGE] = 1
  bytes[4 * PAGE - 1] = 0x80
  for (let i = 0; i < PAGE; i++) bytes[4 * PAGE + i] = i & 0xff
  randomFillSync(bytes, 5 * PAGE)
  return bytes
}

describe('the CRC-32 kernel', () => {
  afterEach(() => useCrcKernel(true))
  const pclmul = ((cpuid(1)?.[2] ?? 0) & 2) !== 0

  it.runIf(pclmul)('runs on this x86_64 CPU, which has PCLMULQDQ', () => {
    expect(hasCrcKernel()).toBe(true)
  })

  it.runIf(pclmul)('gives zlib crc32 of every page, shared or not, from any page of a buffer', () => {
    for (const shared of [false, true]) {
      const bytes = crafted(shared)
      const out = new Uint32Array(64)
      expect(crc32Pages(bytes, out)).toBe(true)
      expect([...out]).toEqual(zlibPages(bytes))
      // a view starting at page 3 into the middle of a larger table
      const table = new Uint32Array(100).fill(7)
      expect(crc32Pages(bytes.subarray(3 * PAGE, 10 * PAGE), table.subarray(20))).toBe(true)
      expect([...table.subarray(20, 27)]).toEqual(zlibPages(bytes.subarray(3 * PAGE, 10 * PAGE)))
      expect(table[19]).toBe(7)
      expect(table[27]).toBe(7)
    }
    expect(crc32Pages(new Uint8Array(0), new Uint32Array(0))).toBe(true)
  })

  it('refuses what is not whole pages, or a table too short', () => {
    expect(() => crc32Pages(new Uint8Array(PAGE + 1), new Uint32Array(2))).toThrow(RangeError)
    expect(() => crc32Pages(new Uint8Array(2 * PAGE), new Uint32Array(1))).toThrow(RangeError)
  })

  it('turned off, writes nothing and crcPages gives the same values through zlib', () => {
    const bytes = crafted(true)
    const fast = crcPages(bytes)
    useCrcKernel(false)
    expect(hasCrcKernel()).toBe(false)
    const out = new Uint32Array(64)
    expect(crc32Pages(bytes, out)).toBe(false)
    expect(out.every((c) => c === 0)).toBe(true)
    expect([...crcPages(bytes)]).toEqual([...fast])
    expect([...fast]).toEqual(zlibPages(bytes))
  })

  const compiler = execFileSync('gcc', ['--version'], { encoding: 'utf8' }).split('\n')[0]
  it('builds from crc32.c: flat code, no relocations, under 1 KiB', () => {
    const built = execFileSync(BUILD, [SOURCE], { encoding: 'utf8' }).trim()
    expect(built).toMatch(/^([0-9a-f]{2})+$/)
    expect(built.length / 2).toBeLessThan(1024)
  })

  it.runIf(compiler === KERNEL_COMPILER)(`is the committed code (${KERNEL_COMPILER}): else run build.sh`, () => {
    expect(CRC32_CODE.toString('hex')).toBe(execFileSync(BUILD, [SOURCE], { encoding: 'utf8' }).trim())
  })
})
