// Memory diffs of real processes against a byte-by-byte comparison of what live reads returned: runs
// at page, chunk and map edges, runs merged across at most 4 equal bytes, pointers that moved under
// ASLR, snapshots saved and loaded, buffers at any alignment.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { loadSnapshot, type Process, type Snapshot } from '../../src/index.js'
import { changedRuns, MERGE_GAP } from '../../src/snapshot/changed-runs.js'
import { placeMatcher } from '../../src/snapshot/diff-memory.js'
import { pairMaps } from '../../src/snapshot/diff.js'
import { fixture, le64, start } from '../helpers.js'

const PAGE = 4096
const MIB = 1 << 20
const dir = mkdtempSync(join(tmpdir(), 'procsnap-diff-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** pagediff stopped at its first ready(): its map's address and size (1 MiB, 256 pages). */
async function atReady(
  options: { aslr?: boolean; step?: number } = {},
): Promise<{ proc: Process; buf: bigint; size: number }> {
  const proc = await start(fixture('pagediff'), { args: ['1', String(options.step ?? 1)], aslr: options.aslr ?? false })
  proc.breakAt('ready')
  await proc.cont()
  return { proc, buf: proc.regs.rdi, size: Number(proc.regs.rsi) }
}

/**
 * The oracle, byte by byte: for each 8-byte word (counted from `from`) where bytes differ, its first to
 * last differing byte; runs at most MERGE_GAP equal bytes apart are one. `at(i)` is b's index for a's i.
 */
function naiveRuns(a: Uint8Array, b: Uint8Array, from: number, to: number, shift = 0): Array<[number, number]> {
  const runs: Array<[number, number]> = []
  for (let w = from; w < to; w += 8) {
    let first = -1
    let last = -1
    for (let i = w; i < Math.min(w + 8, to); i++) {
      if (a[i] === b[i + shift]) continue
      if (first < 0) first = i
      last = i
    }
    if (first < 0) continue
    const prev = runs[runs.length - 1]
    if (prev && first - prev[1] <= MERGE_GAP) prev[1] = last + 1
    else runs.push([first, last + 1])
  }
  return runs
}

/** The changes a diff reports in the map at `buf`, as [offset in the map, before, after]. */
function changesIn(a: Snapshot, b: Snapshot, buf: bigint): Array<[number, number[], number[]]> {
  return a
    .diff(b)
    .memory.filter((c) => c.addressBefore - c.mapOffset === buf)
    .map((c) => [Number(c.mapOffset), [...c.before], [...c.after]])
}

function expected(
  before: Uint8Array,
  after: Uint8Array,
  runs: Array<[number, number]>,
): Array<[number, number[], number[]]> {
  return runs.map(([s, e]) => [s, [...before.subarray(s, e)], [...after.subarray(s, e)]])
}

describe('memory diff', () => {
  it('of one changed byte in every page is what a byte-by-byte comparison of live reads finds, saved and loaded too', async () => {
    const { proc, buf, size } = await atReady()
    const before = proc.readMemory(buf, size)
    const a = proc.createSnapshot({ level: 'writable' })
    await proc.cont()
    const after = proc.readMemory(buf, size)
    const b = proc.createSnapshot({ level: 'writable' })
    const runs = naiveRuns(before, after, 0, size)
    expect(runs.length).toBe(size / PAGE) // the fixture changed every page, each once
    const want = expected(before, after, runs)
    expect(changesIn(a, b, buf)).toEqual(want)
    a.save(join(dir, 'a.json'))
    b.save(join(dir, 'b.json'))
    const [la, lb] = [loadSnapshot(join(dir, 'a.json')), loadSnapshot(join(dir, 'b.json'))]
    expect(changesIn(la, lb, buf)).toEqual(want)
    expect(changesIn(la, b, buf)).toEqual(want)
    const c = a.diff(b).memory.find((m) => m.addressAfter === buf + 0x1061n) // page 1's change, at 97
    expect(c?.location).toBe(`${c?.identity}+0x1061`)
  })

  it('runs at the first and last byte of a map, across page and 256 KiB chunk edges, merged across at most 4 equal bytes', async () => {
    const { proc, buf, size } = await atReady({ step: 0 })
    const chunk = 64 * PAGE
    const touched = [
      0, // the map's first byte
      PAGE - 1,
      PAGE, // adjacent across a page edge: one run
      2 * PAGE - 2,
      2 * PAGE + 2, // 3 equal bytes between: one run
      3 * PAGE - 3,
      3 * PAGE + 2, // 4 equal bytes between: one run
      4 * PAGE - 3,
      4 * PAGE + 3, // 5 equal bytes between: two runs
      chunk - 2,
      chunk + 2, // across a natively compared chunk: one run
      2 * chunk - 3,
      2 * chunk + 3, // two runs
      5 * PAGE + 17,
      5 * PAGE + 23, // both ends of one word, 5 equal bytes between: the word's range
      size - 1, // the map's last byte
    ]
    const before = proc.readMemory(buf, size)
    const a = proc.createSnapshot({ level: 'writable' })
    for (const off of touched) proc.writeMemory(buf + BigInt(off), Uint8Array.of((before[off] ?? 0) ^ 0xff))
    const after = proc.readMemory(buf, size)
    const b = proc.createSnapshot({ level: 'writable' })
    const got = changesIn(a, b, buf)
    expect(got.map(([s, x]) => [s, x.length])).toEqual([
      [0, 1],
      [PAGE - 1, 2],
      [2 * PAGE - 2, 5],
      [3 * PAGE - 3, 6],
      [4 * PAGE - 3, 1],
      [4 * PAGE + 3, 1],
      [5 * PAGE + 17, 7],
      [chunk - 2, 5],
      [2 * chunk - 3, 1],
      [2 * chunk + 3, 1],
      [size - 1, 1],
    ])
    expect(got).toEqual(expected(before, after, naiveRuns(before, after, 0, size)))
  })

  it('pointers into a map that moved with it (ASLR on) are no change; the bytes the program changed are', async () => {
    interface Run {
      buf: bigint
      size: number
      first: Snapshot
      second: Snapshot
      pointer: bigint
    }
    const runs: Run[] = []
    for (let r = 0; r < 2; r++) {
      const { proc, buf, size } = await atReady({ aslr: true })
      const first = proc.createSnapshot({ level: 'writable' })
      const pointer = Buffer.from(proc.readMemory(buf + 8n, 8)).readBigUInt64LE(0)
      await proc.cont()
      runs.push({ buf, size, first, second: proc.createSnapshot({ level: 'writable' }), pointer })
      await proc.kill()
    }
    const [x, y] = runs as [Run, Run]
    expect(x.buf).not.toBe(y.buf) // the map moved, and with it the pointer in every page
    expect([x.pointer, y.pointer]).toEqual([x.buf, y.buf])
    const inMap = (c: { addressBefore: bigint; mapOffset: bigint }): boolean => c.addressBefore - c.mapOffset === x.buf
    // (Only the map: ld.so keeps the initial program break, which moved too, but with no [heap] map to pair it with.)
    expect(x.first.diff(y.first).memory.filter(inMap)).toEqual([])
    const changes = x.first.diff(y.second).memory.filter(inMap)
    // One change a page, where the program changed a byte, except page 0 (at 0) and 0x7e (at 0xe,
    // inside the pointer: a changed pointer is reported, with all the bytes it differs in).
    expect(changes.map((c) => Number(c.mapOffset) >> 12)).toEqual(Array.from({ length: x.size / PAGE }, (_, p) => p))
    for (const c of changes) {
      const page = Number(c.mapOffset) >> 12
      const at = (page * 97) % PAGE
      expect(c.addressAfter - y.buf).toBe(c.mapOffset)
      if (at >= 8 && at < 16) {
        expect(Number(c.mapOffset) % PAGE).toBeLessThanOrEqual(at)
        expect((Number(c.mapOffset) % PAGE) + c.before.length).toBeGreaterThan(at)
      } else {
        expect([Number(c.mapOffset) % PAGE, c.before.length]).toEqual([at, 1])
        expect((c.before[0] ?? 0) ^ (c.after[0] ?? 0)).toBe(0x5a)
      }
    }
  })

  it('finds the same runs in buffers at any byte alignment and with b shifted, as a byte-by-byte comparison', async () => {
    const { proc, buf, size } = await atReady()
    const n = 64 * 1024
    const before = proc.readMemory(buf, n)
    await proc.cont()
    const after = proc.readMemory(buf, n)
    // Pairs of changed bytes 6 apart at every offset modulo 8: one word's range, or two runs, by where words start.
    for (let k = 0; k < 64; k++) {
      const at = 1000 + k * 97
      after[at] = (after[at] ?? 0) ^ 0x11
      after[at + 6] = (after[at + 6] ?? 0) ^ 0x22
    }
    // Words equal as float64 numbers but not in bits (+0 and -0), equal NaNs, different NaNs, equal zeros.
    const word = (at: number, x: number[], y: number[]): void => {
      before.set(x, at)
      after.set(y, at)
    }
    word(40000, [0, 0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 0x80])
    word(40008, [0, 0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 0])
    word(40064, new Array<number>(8).fill(0xff), new Array<number>(8).fill(0xff))
    word(40128, new Array<number>(8).fill(0xff), [0xfe, ...new Array<number>(7).fill(0xff)])
    word(40192, [0, 0, 0, 0, 0, 0, 0, 0x80], [0, 0, 0, 0, 0, 0, 0, 0])
    const place = (bytes: Uint8Array, offset: number, pad: number): Uint8Array => {
      const out = new Uint8Array(bytes.length + offset + pad).fill(0xee)
      out.set(bytes, offset)
      return out.subarray(offset, offset + bytes.length + pad)
    }
    const same = (x: bigint, y: bigint): boolean => x === y
    const sameId = (): boolean => false
    for (const shift of [0, 8, 3, -8, -5])
      for (const offA of [0, 1, 2, 3, 4])
        for (const offB of [0, 1, 3, 5]) {
          const a = place(before, offA, 0).subarray(0, n)
          // b holds a's byte i at i + shift
          const shifted = new Uint8Array(n + 16)
          shifted.set(after.subarray(Math.max(0, -shift)), Math.max(0, shift))
          const b = place(shifted, offB, 0)
          const from = Math.max(0, -shift) + 8
          const to = n - 16
          const got = changedRuns(a, b, { shift, from, to, same, sameId })
          expect(got, `shift ${shift}, offsets ${offA} ${offB}`).toEqual(naiveRuns(a, b, from, to, shift))
          if (shift === 0)
            expect(got.filter(([x]) => x >= 40000 && x < 40200)).toEqual([
              [40007, 40008],
              [40128, 40129],
              [40199, 40200],
            ])
        }
    expect(size).toBe(MIB)
  })
})

/** A 64-bit word's 8 bytes, little-endian. */
function wordBytes(value: bigint): Uint8Array {
  const out = new Uint8Array(8)
  new DataView(out.buffer).setBigUint64(0, BigInt.asUintN(64, value), true)
  return out
}

/** glibc's PTR_MANGLE on x86_64: rol(pointer ^ guard, 0x11). */
function mangle(pointer: bigint, guard: bigint): bigint {
  const x = pointer ^ guard
  return BigInt.asUintN(64, (x << 17n) | (x >> 47n))
}

describe('memory diff, word by word', () => {
  it('tells words apart by their bits: NaNs with other bits, +0 and -0, at page, block and map edges, after a difference in the same page', async () => {
    const { proc, buf, size } = await atReady({ step: 0 })
    const put = (offset: number, value: bigint): void => proc.writeMemory(buf + BigInt(offset), wordBytes(value))
    const flip = (offset: number): void => {
      const [x] = proc.readMemory(buf + BigInt(offset), 1)
      proc.writeMemory(buf + BigInt(offset), Uint8Array.of((x ?? 0) ^ 0xff))
    }
    const QNAN = 0x7ff8_0000_0000_0001n
    // Before a: words that stay as they are (equal NaNs, -0 and +0 on both sides, a page of zeros).
    put(PAGE, QNAN)
    put(9 * PAGE, 0x8000_0000_0000_0000n)
    put(9 * PAGE + 8, 0n)
    put(9 * PAGE + 16, 0xffff_ffff_ffff_ffffn)
    proc.writeMemory(buf + BigInt(10 * PAGE), new Uint8Array(PAGE))
    put(10 * PAGE + 2400, 0n)
    put(2 * PAGE + 512, 0n)
    put(3 * PAGE + 4000, 0n)
    put(PAGE + 200, QNAN)
    put(PAGE + 208, 0x7ff8_0000_0000_0000n)
    const a = proc.createSnapshot({ level: 'writable' })
    const before = proc.readMemory(buf, size)
    flip(PAGE + 100) // after an equal NaN
    put(PAGE + 200, 0x7ff8_0000_0000_0002n) // a NaN with other bits: byte 0 differs
    put(PAGE + 208, 0xfff8_0000_0000_0000n) // the sign of a NaN: byte 7 differs
    put(2 * PAGE + 512, 0x8000_0000_0000_0000n) // -0 for +0, the page's only difference
    flip(3 * PAGE + 8) // a difference, then a -0 for +0 further in the same page
    put(3 * PAGE + 4000, 0x8000_0000_0000_0000n)
    flip(5 * PAGE - 1) // the last byte of a page and the first of the next: one run
    flip(5 * PAGE)
    flip(7 * PAGE) // the first and the last byte of one page
    flip(8 * PAGE - 1)
    put(10 * PAGE + 2400, 0x8000_0000_0000_0000n) // -0 among zeros
    flip(16 * PAGE - 2) // across a 64 KiB block: one run
    flip(16 * PAGE + 1)
    flip(40 * PAGE + 4088) // a page alone, in its last word
    flip(size - 8)
    flip(size - 1)
    const after = proc.readMemory(buf, size)
    const b = proc.createSnapshot({ level: 'writable' })
    const got = changesIn(a, b, buf)
    expect(got).toEqual(expected(before, after, naiveRuns(before, after, 0, size)))
    expect(got.map(([s, x]) => [s, x.length])).toEqual([
      [PAGE + 100, 1],
      [PAGE + 200, 1],
      [PAGE + 215, 1],
      [2 * PAGE + 519, 1],
      [3 * PAGE + 8, 1],
      [3 * PAGE + 4007, 1],
      [5 * PAGE - 1, 2],
      [7 * PAGE, 1],
      [8 * PAGE - 1, 1],
      [10 * PAGE + 2407, 1],
      [16 * PAGE - 2, 4],
      [40 * PAGE + 4088, 1],
      [size - 8, 8],
    ])
  })

  it('finds every run of pages where many words differ: every byte, every 16th byte, two differences far apart', async () => {
    const { proc, buf, size } = await atReady({ step: 0 })
    const a = proc.createSnapshot({ level: 'writable' })
    const before = proc.readMemory(buf, size)
    const page = (n: number, at: (k: number) => boolean): void => {
      const bytes = proc.readMemory(buf + BigInt(n * PAGE), PAGE).map((x, k) => (at(k) ? x ^ 0x0f : x))
      proc.writeMemory(buf + BigInt(n * PAGE), bytes)
    }
    page(20, () => true)
    page(21, (k) => k % 16 === 3)
    page(23, (k) => k === 100 || k === 3000)
    page(24, (k) => k === 3000 || k === 4000)
    const after = proc.readMemory(buf, size)
    const b = proc.createSnapshot({ level: 'writable' })
    const got = changesIn(a, b, buf)
    expect(got).toEqual(expected(before, after, naiveRuns(before, after, 0, size)))
    expect(got.length).toBe(1 + PAGE / 16 - 1 + 4) // page 21's first change is 3 bytes past page 20's run: merged
  })

  it('asks for a bigint only where a word may be a pointer: every address of a map, mangled too, may; far from the maps, none', async () => {
    const runs: Snapshot[] = []
    for (let r = 0; r < 2; r++) {
      const { proc } = await atReady({ aslr: true })
      runs.push(proc.createSnapshot({ level: 'writable' }))
      await proc.kill()
    }
    const [x, y] = runs as [Snapshot, Snapshot]
    const pairs = pairMaps(x.data, y.data)
    const places = placeMatcher(x.data, y.data, pairs)
    const guardOf = (s: Snapshot): bigint => le64(s.memory.read((s.regs.fs_base ?? 0n) + 0x30n, 8))
    const [guardX, guardY] = [guardOf(x), guardOf(y)]
    expect(guardX).not.toBe(0n)
    const halves = (v: bigint): [number, number] => [Number(v >> 32n), Number(v & 0xffff_ffffn)]
    let checked = 0
    for (const p of pairs) {
      if (p.identity === '[stack]') continue // its sub-page shift is another test's
      for (const at of [0n, (p.a.end - p.a.start) / 2n, p.a.end - p.a.start - 1n, p.a.end - p.a.start]) {
        const [pa, pb] = [p.a.start + at, p.b.start + at]
        expect(places.same(pa, pb), p.identity).toBe(true)
        expect(places.mayMove(...halves(pa)), p.identity).toBe(true)
        const [ma, mb] = [mangle(pa, guardX), mangle(pb, guardY)]
        expect(places.same(ma, mb), p.identity).toBe(true)
        expect(places.mayMove(...halves(ma)), p.identity).toBe(true)
        checked++
      }
    }
    expect(checked).toBeGreaterThan(20)
    // Values no map's high half holds, not even demangled: no pointer, no bigint.
    const far = [0x1234n, 0x0101_0101_0101_0101n, 0x4000_0000_0000_0000n]
    for (const v of far)
      if (!x.maps.some((m) => m.start >> 32n === v >> 32n)) expect(places.mayMove(...halves(v))).toBe(false)
    // Without ASLR nothing moved: no word needs a bigint.
    const same = placeMatcher(x.data, x.data, pairMaps(x.data, x.data))
    expect(same.mayMove(...halves(x.maps[0]?.start ?? 0n))).toBe(false)
  })

  it('records are plain records: addresses, copies of the bytes (not views of the snapshots), location', async () => {
    const { proc, buf, size } = await atReady()
    const a = proc.createSnapshot({ level: 'writable' })
    const before = proc.readMemory(buf, size)
    await proc.cont()
    const after = proc.readMemory(buf, size)
    const b = proc.createSnapshot({ level: 'writable' })
    const inMap = a.diff(b).memory.filter((c) => c.addressBefore - c.mapOffset === buf)
    expect(inMap).toHaveLength(size / PAGE)
    for (const [i, c] of inMap.entries()) {
      const at = i * PAGE + ((i * 97) % PAGE)
      const plain = {
        identity: inMap[0]?.identity,
        mapOffset: BigInt(at),
        addressBefore: buf + BigInt(at),
        addressAfter: buf + BigInt(at),
        before: before.subarray(at, at + 1),
        after: after.subarray(at, at + 1),
        location: b.symbolize(buf + BigInt(at)),
      }
      expect(c).toEqual(plain)
      expect({ ...c }).toEqual(plain) // own fields: spread, printed and cloned as they are
      expect(Object.getPrototypeOf(c)).toBe(Object.prototype)
    }
    const first = inMap[0]
    if (!first) throw new Error('no change')
    first.before[0] = 0xaa // a copy: the snapshot and a new diff keep their bytes
    expect(a.memory.read(buf, 1)).toEqual(before.subarray(0, 1))
    expect(a.diff(b).memory.find((c) => c.addressAfter === buf)?.before).toEqual(before.subarray(0, 1))
    expect(() => JSON.stringify(first)).toThrow(TypeError) // bigints, as with a plain record
  })

  it('records compare with toEqual, record with record, and differ where a field differs', async () => {
    const { proc, buf } = await atReady()
    const a = proc.createSnapshot({ level: 'writable' })
    await proc.cont()
    const b = proc.createSnapshot({ level: 'writable' })
    const c = proc.createSnapshot({ level: 'writable' })
    const inMap = (r: { addressAfter: bigint }): boolean => r.addressAfter >= buf && r.addressAfter < buf + BigInt(MIB)
    const d = a.diff(b).memory.filter(inMap)
    expect(a.diff(c).memory.filter(inMap)).toEqual(d)
    expect(d[1]).not.toEqual(d[2])
    expect(d[0]).not.toEqual({ ...d[0], after: Uint8Array.of(0) })
    expect(d[0]).toMatchObject({ addressAfter: buf, mapOffset: 0n })
    expect(structuredClone(d[0])).toEqual(d[0])
  })
})
