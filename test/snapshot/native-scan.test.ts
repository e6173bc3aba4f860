// The native word scan (src/snapshot/native-scan.ts) finds the runs the JS scan finds, run for run:
// on random buffers at every alignment and shift against a byte-by-byte oracle that knows moved
// pointers and thread ids, and on real diffs (pagediff, python3 under ASLR, moved stacks).
import { afterEach, describe, expect, it } from 'vitest'
import type { MemoryChange, Snapshot } from '../../src/index.js'
import { useNativeWordDiff, wordDiff } from '../../src/native/word-diff.js'
import { changedRuns, MERGE_GAP, type Alignment } from '../../src/snapshot/changed-runs.js'
import { fixture, random, start } from '../helpers.js'

afterEach(() => useNativeWordDiff(true))

/** Where the test's "map" sits in a and in b: a word of a in [BASE, BASE + SPAN) is a pointer that moved by DELTA. */
const BASE = 0x7f12_3400_0000n
const SPAN = 0x10_0000n
const DELTA = 0x2_0000_1000n
/** Thread ids: a's 4242 is b's 4343. */
const ID_A = 4242
const ID_B = 4343

const align = (shift: number, from: number, to: number): Alignment => ({
  shift,
  from,
  to,
  same: (x, y) => x === y || (x >= BASE && x < BASE + SPAN && y === x + DELTA),
  mayMove: (hi) => hi === Number(BASE >> 32n),
  sameId: (x, y) => x === ID_A && y === ID_B,
})

/**
 * The oracle, byte by byte: words of 8 bytes from the first compared byte; a word whose bytes differ
 * is no change when it is a moved pointer or its halves are equal or the same thread's id; else a
 * run from its first to its last differing byte. The bytes after the last whole word are one run.
 */
function naiveRuns(a: Uint8Array, b: Uint8Array, al: Alignment): Array<[number, number]> {
  const { shift } = al
  const start = Math.max(0, -shift, al.from)
  const end = Math.min(al.to, a.length, b.length - shift)
  const runs: Array<[number, number]> = []
  const add = (from: number, to: number): void => {
    const last = runs[runs.length - 1]
    if (last && from - last[1] <= MERGE_GAP) last[1] = to
    else runs.push([from, to])
  }
  const le = (bytes: Uint8Array, at: number, n: number): bigint => {
    let v = 0n
    for (let k = n - 1; k >= 0; k--) v = (v << 8n) | BigInt(bytes[at + k] ?? 0)
    return v
  }
  for (let w = start; w < end; w += 8) {
    const wEnd = Math.min(w + 8, end)
    let first = -1
    let last = -1
    for (let i = w; i < wEnd; i++)
      if (a[i] !== b[i + shift]) {
        if (first < 0) first = i
        last = i
      }
    if (first < 0) continue
    if (wEnd - w === 8) {
      if (al.same(le(a, w, 8), le(b, w + shift, 8))) continue
      const half = (k: number): boolean => {
        const [x, y] = [Number(le(a, w + k, 4)), Number(le(b, w + shift + k, 4))]
        return x === y || al.sameId(x, y)
      }
      if (half(0) && half(4)) continue
    }
    add(first, last + 1)
  }
  return runs
}

function put64(bytes: Uint8Array, at: number, value: bigint): void {
  for (let k = 0; k < 8; k++) bytes[at + k] = Number((value >> BigInt(8 * k)) & 0xffn)
}

function put32(bytes: Uint8Array, at: number, value: number): void {
  for (let k = 0; k < 4; k++) bytes[at + k] = (value >>> (8 * k)) & 0xff
}

/** The runs of the JS scan and of the native one. */
function bothScans(a: Uint8Array, b: Uint8Array, al: Alignment): [Array<[number, number]>, Array<[number, number]>] {
  useNativeWordDiff(false)
  const js = changedRuns(a, b, al)
  useNativeWordDiff(true)
  return [js, changedRuns(a, b, al)]
}

/** A diff's records made by the JS scan and by the native one. */
function bothDiffs(a: Snapshot, b: Snapshot): [readonly MemoryChange[], readonly MemoryChange[]] {
  useNativeWordDiff(false)
  const js = a.diff(b).memory
  useNativeWordDiff(true)
  return [js, a.diff(b).memory]
}

describe('the native word scan', () => {
  it.runIf(process.arch === 'x64' && process.env.PROCSNAP_KERNELS !== '0')('is the one diffs take on x86_64', () => {
    expect(wordDiff()).toBeDefined()
  })

  it('finds what the JS scan and a byte-by-byte oracle find: every alignment and shift, moved pointers, ids, sparse and dense changes', () => {
    const next = random(0x1234567)
    let runsSeen = 0
    for (let round = 0; round < 400; round++) {
      const size = round < 40 ? 1 + next(64) : 1 + next(3 * 4096 * (round % 10 === 0 ? 40 : 1))
      const shift = next(25) - 12
      const [offA, offB] = [next(8), next(8)]
      const backA = new Uint8Array(size + 32)
      const backB = new Uint8Array(size + 32)
      const a = backA.subarray(offA, offA + size)
      const b = backB.subarray(offB, offB + size + 12) // room for a's bytes at + shift
      for (let i = 0; i < a.length; i++) a[i] = next(4) === 0 ? next(256) : 0
      for (let i = 0; i < size; i++) if (i + shift >= 0 && i + shift < b.length) b[i + shift] = a[i] ?? 0
      const from = next(3) === 0 ? next(Math.min(size, 20)) : 0
      const to = next(3) === 0 ? size - next(Math.min(size, 20)) : size
      const start = Math.max(0, -shift, from)
      // Moved pointers and thread ids on word boundaries (no change) and off them (changes), then changed bytes.
      for (let k = next(12); k > 0; k--) {
        const at = start + 8 * next(Math.max(1, (size - start) >> 3)) + (next(4) === 0 ? 1 + next(7) : 0)
        if (at + 8 > size || at + shift + 8 > b.length) continue
        const p = BASE + BigInt(next(Number(SPAN)))
        if (next(2) === 0) {
          put64(a, at, p)
          put64(b, at + shift, p + DELTA)
        } else {
          const half = 4 * next(2)
          put32(a, at + half, ID_A)
          put32(b, at + shift + half, ID_B)
        }
      }
      const dense = round % 7 === 0
      for (let k = dense ? size : next(30); k > 0; k--) {
        const i = next(size) + shift
        if (i >= 0 && i < b.length) b[i] = (b[i] ?? 0) ^ (1 + next(255))
      }
      const al = align(shift, from, to)
      const want = naiveRuns(a, b, al)
      const [js, native] = bothScans(a, b, al)
      const label = `round ${round}: ${size} bytes, shift ${shift}, offsets ${offA} ${offB}, [${from}, ${to})`
      expect(js, label).toEqual(want)
      expect(native, label).toEqual(want)
      runsSeen += want.length
    }
    expect(runsSeen).toBeGreaterThan(1000)
  })

  it('makes the same records as the JS scan on pagediff under ASLR: one run, another, a moved map and its pointers', async () => {
    const snaps: Snapshot[] = []
    for (let r = 0; r < 2; r++) {
      const proc = await start(fixture('pagediff'), { args: ['1', String(r + 1)], aslr: true })
      proc.breakAt('ready')
      await proc.cont()
      snaps.push(proc.createSnapshot({ level: 'writable' }))
      await proc.cont()
      snaps.push(proc.createSnapshot({ level: 'writable' }))
      await proc.kill()
    }
    const [a1, b1, a2, b2] = snaps as [Snapshot, Snapshot, Snapshot, Snapshot]
    for (const [x, y, least] of [
      [a1, b1, 256],
      [a1, b2, 128],
      [a1, a2, 1],
      [b1, a2, 256],
    ] as const) {
      const [js, native] = bothDiffs(x, y)
      expect(native).toEqual(js)
      expect(native.length).toBeGreaterThanOrEqual(least)
    }
  })

  it('makes the same records as the JS scan on python3 under ASLR, within a run and across two (heaps, moved stacks)', async () => {
    const code = [
      'import os',
      'b = bytearray(1 << 16)',
      'for i in range(2):',
      '    b[i * 4099] = 7 + i',
      '    os.getppid()',
    ]
    const snaps: Snapshot[] = []
    for (let r = 0; r < 2; r++) {
      const proc = await start('/usr/bin/python3', { args: ['-c', code.join('\n')], aslr: true })
      proc.breakAt('libc.so.6!getppid')
      await proc.cont({ timeout: 60_000 })
      snaps.push(proc.createSnapshot({ level: 'writable' }))
      await proc.cont({ timeout: 60_000 })
      snaps.push(proc.createSnapshot({ level: 'writable' }))
      await proc.kill()
    }
    const [a1, b1, a2] = snaps as [Snapshot, Snapshot, Snapshot]
    const stackA = a1.maps.find((m) => m.path === '[stack]')
    const stackB = a2.maps.find((m) => m.path === '[stack]')
    expect(stackA?.end).not.toBe(stackB?.end) // the stacks moved
    for (const [x, y] of [
      [a1, b1],
      [a1, a2],
      [b1, a2],
    ] as const) {
      const [js, native] = bothDiffs(x, y)
      expect(native).toEqual(js)
      expect(native.length).toBeGreaterThan(1)
    }
  })
})
