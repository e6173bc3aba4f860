// The word-diff kernel: its bytes in src/native/word-diff.ts are what kernels/word-diff.c compiles to
// (rebuilt here with gcc), and it finds the differing words a word-by-word comparison finds, at any
// alignment of either side, across its 64-byte rounds and its tail, up to its cap and resumed past it.
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { WORD_DIFF_CODE, bytesAddress, useNativeWordDiff, wordDiff } from '../../src/native/word-diff.js'
import { KERNEL_COMPILER } from '../../src/native/code-page.js'
import { random } from '../helpers.js'

const BUILD = fileURLToPath(new URL('../../src/native/kernels/build.sh', import.meta.url))
const SOURCE = fileURLToPath(new URL('../../src/native/kernels/word-diff.c', import.meta.url))

/** Indices of the 8-byte words of a[0, 8n) and b[0, 8n) whose bytes differ, byte by byte. */
function naiveWords(a: Uint8Array, b: Uint8Array, n: number): number[] {
  const out: number[] = []
  for (let w = 0; w < n; w++)
    for (let k = 0; k < 8; k++)
      if (a[8 * w + k] !== b[8 * w + k]) {
        out.push(w)
        break
      }
  return out
}

// An x86_64 kernel (SSE2 intrinsics): built and run on x86_64 hosts only; elsewhere diffs take the JS scan.
const X64 = process.arch === 'x64'

describe('the word-diff kernel', () => {
  const compiler = X64 ? execFileSync('gcc', ['--version'], { encoding: 'utf8' }).split('\n')[0] : undefined
  const built = X64 ? execFileSync(BUILD, [SOURCE], { encoding: 'utf8' }).trim() : ''
  const committed = WORD_DIFF_CODE.toString('hex')

  it.runIf(X64)(
    'builds from word-diff.c with gcc: one function, no data, no relocations (build.sh refuses them)',
    () => {
      expect(built).toMatch(/^([0-9a-f]{2})+$/)
      expect(built.length / 2).toBeLessThan(1024)
      expect(committed.endsWith('c3')).toBe(true) // ret
    },
  )

  it.runIf(X64 && compiler === KERNEL_COMPILER)(`is the committed code (${KERNEL_COMPILER}): else run build.sh`, () => {
    expect(committed).toBe(built)
  })

  it.runIf(X64)('loads on x86_64 and finds every differing word, at any alignment, up to its cap', () => {
    useNativeWordDiff(true) // the kernel itself, also when PROCSNAP_KERNELS=0 sends diffs to the JS scan
    const kernel = wordDiff()
    useNativeWordDiff(process.env.PROCSNAP_KERNELS !== '0')
    if (!kernel) throw new Error('the kernel did not load on x86_64')
    const cap = kernel.found.length
    const next = random(0x9e3779b9)
    const size = 3 * cap * 8 + 64
    const backA = new Uint8Array(size + 16)
    const backB = new Uint8Array(size + 16)
    let capped = 0
    for (let round = 0; round < 60; round++) {
      const offA = next(8)
      const offB = next(8)
      const n = round < 8 ? round : next((size - 64) >> 3) // no word, a tail alone, then up to 3 caps' worth
      const a = backA.subarray(offA, offA + 8 * n)
      const b = backB.subarray(offB, offB + 8 * n)
      for (let i = 0; i < a.length; i++) a[i] = next(256)
      b.set(a)
      // Sparse single bytes, a dense stretch (more than a cap's worth now and then), the first and last byte.
      const changes = round % 3 === 0 ? 8 * n : next(40)
      for (let c = 0; c < changes && n > 0; c++) {
        const i = next(8 * n)
        b[i] = (b[i] ?? 0) ^ (1 + next(255))
      }
      if (n > 0 && round % 2 === 1) {
        b[0] = (b[0] ?? 0) ^ 0x80
        b[8 * n - 1] = (b[8 * n - 1] ?? 0) ^ 0x01
      }
      // Bytes past the end differ too: the kernel must not look at them.
      backB[offB + 8 * n] = (backA[offA + 8 * n] ?? 0) ^ 0xff
      const want = naiveWords(a, b, n)
      const got: number[] = []
      const [addressA, addressB] = [bytesAddress(backA) + offA, bytesAddress(backB) + offB]
      let at = 0
      for (;;) {
        const count = kernel.diff(addressA + 8 * at, addressB + 8 * at, n - at)
        expect(count).toBeLessThanOrEqual(cap)
        for (let k = 0; k < count; k++) got.push(at + (kernel.found[k] ?? 0))
        if (count < cap) break
        capped++
        at = (got[got.length - 1] ?? 0) + 1
      }
      expect(got, `round ${round}: ${n} words at offsets ${offA}, ${offB}`).toEqual(want)
    }
    expect(capped).toBeGreaterThan(3) // calls that stopped at the cap, resumed
  })
})
