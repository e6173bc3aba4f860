// Thousands of breakpoints at once, set and removed in any order: reads and writes over them see and
// change the program's own bytes, checked against libc's file on disk (an oracle we did not write).
import { closeSync, openSync, readSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import type { Breakpoint, MemoryMap, Process } from '../../src/index.js'
import { fixture, start } from '../helpers.js'

const PAGE = 4096n
const INT3 = 0xcc

/** Bytes as the kernel has them (int3 included), through /proc/PID/mem: not through procsnap. */
function rawBytes(proc: Process, address: bigint, length: number): Buffer {
  const fd = openSync(`/proc/${proc.pid}/mem`, 'r')
  try {
    const buf = Buffer.alloc(length)
    expect(readSync(fd, buf, 0, length, address)).toBe(length)
    return buf
  } finally {
    closeSync(fd)
  }
}

/** The bytes a file-backed map was loaded from. */
function fileBytes(map: MemoryMap): Buffer {
  const fd = openSync(map.path, 'r')
  try {
    const buf = Buffer.alloc(Number(map.end - map.start))
    readSync(fd, buf, 0, buf.length, Number(map.offset))
    return buf
  } finally {
    closeSync(fd)
  }
}

/** A small deterministic generator (LCG), so that a failure replays. */
function random(seed: number): (n: number) => number {
  let x = seed >>> 0
  return (n) => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0
    return x % n
  }
}

function shuffle<T>(items: T[], next: (n: number) => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = next(i + 1)
    const t = items[i] as T
    items[i] = items[j] as T
    items[j] = t
  }
  return items
}

/** The counter at its entry point with libc's text map (never run while the test holds sites there) and its file bytes. */
async function libcText(): Promise<{ proc: Process; text: MemoryMap; file: Buffer }> {
  const proc = await start(fixture('counter'), { args: ['1'], stdout: 'ignore' })
  const text = proc.maps.find((m) => m.path.endsWith('/libc.so.6') && m.perms.startsWith('r-x'))
  if (!text) throw new Error('no libc text map')
  const file = fileBytes(text)
  expect(Buffer.from(proc.readMemory(text.start, file.length)).equals(file)).toBe(true) // the oracle holds
  return { proc, text, file }
}

/** Offsets in the map: its first and last byte, both sides of page boundaries, runs of adjacent bytes, and spread ones. */
function siteOffsets(size: number, count: number, next: (n: number) => number): number[] {
  const offsets = new Set<number>([0, 1, size - 2, size - 1])
  for (let page = Number(PAGE); page < size; page += 7 * Number(PAGE)) {
    offsets.add(page - 1)
    offsets.add(page)
  }
  for (let run = 0; run < 20; run++) {
    const at = next(size - 16)
    for (let i = 0; i < 9; i++) offsets.add(at + i)
  }
  while (offsets.size < count) offsets.add(next(size))
  return shuffle([...offsets], next)
}

/** Reads of many shapes: the whole map, pieces of odd sizes, and reads that start, end or sit exactly at a site. */
function expectReadsMatch(proc: Process, text: MemoryMap, expected: Buffer, sites: readonly number[]): void {
  const size = expected.length
  expect(Buffer.from(proc.readMemory(text.start, size)).equals(expected)).toBe(true)
  for (let at = 0, step = 1; at < size; at += step, step = 1 + ((step * 3 + 1) % 8191)) {
    const n = Math.min(step, size - at)
    expect(Buffer.from(proc.readMemory(text.start + BigInt(at), n)).equals(expected.subarray(at, at + n))).toBe(true)
  }
  for (const s of sites.slice(0, 300)) {
    const at = text.start + BigInt(s)
    expect(proc.readMemory(at, 1)[0]).toBe(expected[s])
    const from = Math.max(0, s - 5)
    expect(Buffer.from(proc.readMemory(text.start + BigInt(from), s - from)).equals(expected.subarray(from, s))).toBe(
      true,
    )
    const to = Math.min(size, s + 6)
    expect(Buffer.from(proc.readMemory(at, to - s)).equals(expected.subarray(s, to))).toBe(true)
  }
}

describe('thousands of breakpoints', () => {
  it('a read over 3,000 armed sites (map edges, page boundaries, adjacent bytes) returns the file’s bytes', async () => {
    const { proc, text, file } = await libcText()
    const next = random(1)
    const offsets = siteOffsets(file.length, 3000, next)
    for (const s of offsets) proc.breakAt(text.start + BigInt(s))
    const raw = rawBytes(proc, text.start, file.length)
    for (const s of offsets) expect(raw[s]).toBe(INT3) // every site holds its int3: what the reads hide
    expectReadsMatch(proc, text, file, offsets)
  })

  it('set, disabled, enabled and removed in any order, reads stay the file’s bytes and each int3 is where an armed breakpoint is', async () => {
    const { proc, text, file } = await libcText()
    const next = random(2)
    const offsets = siteOffsets(file.length, 2000, next)
    const bps = new Map<number, Breakpoint[]>()
    for (const s of offsets) {
      const list = [proc.breakAt(text.start + BigInt(s))]
      if (next(4) === 0) list.push(proc.breakAt(text.start + BigInt(s))) // two sharing a site
      bps.set(s, list)
    }
    for (let round = 0; round < 3; round++) {
      for (const s of shuffle([...offsets], next)) {
        for (const bp of bps.get(s) ?? []) {
          const pick = next(6)
          if (pick === 0) bp.remove()
          else if (pick === 1) bp.disable()
          else if (pick === 2) bp.enable()
        }
      }
      // Removed ones come back: set again at a random half of the removed sites.
      for (const s of offsets) {
        const list = bps.get(s) ?? []
        if (list.length > 0 && list.every((bp) => bp.removed) && next(2) === 0)
          list.push(proc.breakAt(text.start + BigInt(s)))
      }
      const raw = rawBytes(proc, text.start, file.length)
      for (const s of offsets) {
        const armed = (bps.get(s) ?? []).some((bp) => bp.enabled && !bp.removed)
        expect(raw[s], `offset 0x${s.toString(16)}`).toBe(armed ? INT3 : file[s])
      }
      expectReadsMatch(proc, text, file, offsets)
    }
    for (const list of bps.values()) for (const bp of list) bp.remove()
    expect(rawBytes(proc, text.start, file.length).equals(file)).toBe(true)
    expect(proc.breakpoints).toEqual([])
  })

  it('a write over armed sites changes what they restore and keeps their int3; removing them leaves the new bytes', async () => {
    const { proc, text, file } = await libcText()
    const next = random(3)
    // A window across a page boundary with a site on each side of it, at both ends and in between.
    const from = 5 * Number(PAGE) - 64
    const length = 200
    const offsets = [from, from + 1, 5 * Number(PAGE) - 1, 5 * Number(PAGE), from + length - 1]
    for (let i = 0; i < 40; i++) offsets.push(from + next(length))
    const sites = [...new Set(offsets)]
    const bps = sites.map((s) => proc.breakAt(text.start + BigInt(s)))
    // Sites just outside the window keep their int3 and original bytes.
    const outside = [from - 1, from + length].map((s) => proc.breakAt(text.start + BigInt(s)))
    const written = Buffer.from(Array.from({ length }, (_, i) => (i * 37 + 11) & 0xff))
    proc.writeMemory(text.start + BigInt(from), written)
    const expected = Buffer.from(file)
    written.copy(expected, from)
    expect(Buffer.from(proc.readMemory(text.start + BigInt(from - 8), length + 16))).toEqual(
      expected.subarray(from - 8, from + length + 8),
    )
    const raw = rawBytes(proc, text.start, file.length)
    for (const s of [...sites, from - 1, from + length]) expect(raw[s]).toBe(INT3)
    for (let i = 0; i < length; i++) if (!sites.includes(from + i)) expect(raw[from + i]).toBe(written[i])
    // A write that starts in the middle of the sites and ends past them.
    const tail = Buffer.from([1, 2, 3, 4, 5, 6, 7, 8])
    proc.writeMemory(text.start + BigInt(from + length - 4), tail)
    tail.copy(expected, from + length - 4)
    for (const bp of shuffle([...bps, ...outside], next)) bp.remove()
    expect(rawBytes(proc, text.start, file.length).equals(expected)).toBe(true)
    // Once removed, a site neither patches reads nor writes: new bytes there read and land as written.
    const again = Buffer.from(Array.from({ length: length + 2 }, (_, i) => (i * 53 + 5) & 0xff))
    proc.writeMemory(text.start + BigInt(from - 1), again)
    expect(Buffer.from(proc.readMemory(text.start + BigInt(from - 1), length + 2))).toEqual(again)
    expect(rawBytes(proc, text.start + BigInt(from - 1), length + 2)).toEqual(again)
  })
})
