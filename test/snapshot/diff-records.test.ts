// A diff's memory records are made on the first read of `memory`: before that read the diff must
// print, spread, clone, stringify and compare as it does after it, and the records must be what the
// snapshots hold, field for field (addresses, bytes, location as symbolizeIn names it), in moved
// maps (ASLR), maps held page by page, maps with untouched pages, and at a map's first and last byte.
import { inspect } from 'node:util'
import { format as prettyFormat } from '@vitest/pretty-format'
import { describe, expect, it } from 'vitest'
import type { MemoryChange, Process, Snapshot, SnapshotDiff } from '../../src/index.js'
import { identities, symbolizeIn } from '../../src/snapshot/regions.js'
import { fixture, start } from '../helpers.js'

const PAGE = 4096
const KEYS = ['identity', 'mapOffset', 'addressBefore', 'addressAfter', 'before', 'after', 'location']

/** counter at its first three bump() calls: g_counter differs between each two. */
async function counterStops(aslr: boolean): Promise<[Snapshot, Snapshot, Snapshot]> {
  const proc = await start(fixture('counter'), { stdout: 'ignore', aslr })
  proc.breakAt('bump')
  const snaps: Snapshot[] = []
  for (let i = 0; i < 3; i++) {
    await proc.cont()
    snaps.push(proc.createSnapshot({ level: 'writable' }))
  }
  return snaps as [Snapshot, Snapshot, Snapshot]
}

/** Each record checked against the snapshots: its maps by identity, bytes read back, location by symbolizeIn. */
function expectRecordsOf(a: Snapshot, b: Snapshot, memory: readonly MemoryChange[]): void {
  const mapOf = (s: Snapshot, id: string): { start: bigint } | undefined =>
    [...identities(s.data)].find(([, name]) => name === id)?.[0]
  for (const r of memory) {
    expect(Object.keys(r)).toEqual(KEYS)
    expect(Object.getPrototypeOf(r)).toBe(Object.prototype)
    expect(r.before.constructor).toBe(Uint8Array)
    expect(r.after.constructor).toBe(Uint8Array)
    const length = r.before.length
    expect(length).toBeGreaterThan(0)
    expect(r.after.length).toBe(length)
    expect(r.addressAfter).toBe((mapOf(b, r.identity)?.start ?? -1n) + r.mapOffset)
    // the initial stack under ASLR moved by a sub-page amount: a's address is its own
    if (r.identity !== '[stack]') expect(r.addressBefore).toBe((mapOf(a, r.identity)?.start ?? -1n) + r.mapOffset)
    expect(r.before).toEqual(a.memory.read(r.addressBefore, length))
    expect(r.after).toEqual(b.memory.read(r.addressAfter, length))
    expect(r.before).not.toEqual(r.after)
    expect(r.location).toBe(symbolizeIn(b.data, b.modules(), r.addressAfter) ?? r.identity)
  }
}

describe('memory records made on first read', () => {
  it('a diff prints, spreads, clones, stringifies and compares the same before its memory is read as after', async () => {
    const [a, b, c] = await counterStops(false)
    const fresh = (): SnapshotDiff => a.diff(b)
    const read = fresh()
    expect(read.memory.length).toBeGreaterThan(0)
    expect(read.memory.some((r) => r.location === 'counter!g_counter')).toBe(true)

    const shown = inspect(fresh(), { depth: 8 })
    expect(shown).toBe(inspect(read, { depth: 8 }))
    expect(shown).not.toContain('Getter')
    expect(shown).toContain("location: 'counter!g_counter'")
    expect(inspect({ diffs: [fresh()] }, { depth: 10 })).toBe(inspect({ diffs: [read] }, { depth: 10 }))
    expect(inspect({ ...fresh() }, { depth: 8 })).toBe(inspect({ ...read }, { depth: 8 }))
    expect(inspect(fresh().data, { depth: 8 })).toBe(inspect(read.data, { depth: 8 }))
    expect(Object.getOwnPropertySymbols(read.data)).toEqual([]) // once read, nothing but the fields
    expect(prettyFormat(fresh())).toBe(prettyFormat(read))

    const spread = { ...fresh().data }
    expect(Object.getOwnPropertyDescriptor(spread, 'memory')?.value).toEqual(read.memory)
    expect(Object.keys(spread)).toEqual(Object.keys(read.data))
    expect(structuredClone(fresh())).toEqual(structuredClone(read))
    expect(structuredClone(fresh().data).memory).toEqual(read.memory)

    const bigints = (_: string, v: unknown): unknown => (typeof v === 'bigint' ? `${v}n` : v)
    expect(JSON.stringify(fresh(), bigints)).toBe(JSON.stringify(read, bigints))
    expect(() => JSON.stringify(fresh())).toThrow(TypeError) // bigints, as in any plain record

    expect(fresh()).toEqual(fresh())
    expect(fresh()).toEqual(read)
    expect(fresh()).not.toEqual(a.diff(c)) // g_counter went on: other bytes after
    const altered = structuredClone(read)
    const first = altered.data.memory[0] as MemoryChange
    first.after[0] = (first.after[0] ?? 0) ^ 0xff
    expect(fresh()).not.toEqual(altered)
    expect(fresh().data).not.toEqual(altered.data)
    expect(altered).not.toEqual(fresh())
  })

  it('asking isEmpty makes no record; the first read of memory leaves a plain property, and toString reads the same', async () => {
    const [a, b] = await counterStops(false)
    const d = a.diff(b)
    expect(d.isEmpty).toBe(false)
    expect(a.diff(a).isEmpty).toBe(true)
    expect(Object.getOwnPropertyDescriptor(d.data, 'memory')).toHaveProperty('get') // not made yet
    const memory = d.memory
    expect(d.memory).toBe(memory) // made once
    expect(Object.getOwnPropertyDescriptor(d.data, 'memory')).toEqual({
      value: memory,
      writable: true,
      enumerable: true,
      configurable: true,
    })
    expect(d.toString()).toBe(a.diff(b).toString())
  })

  it('records are what the snapshots hold under ASLR: moved pointers are no record, the rest read back', async () => {
    const [a, b, c] = await counterStops(true)
    for (const [x, y] of [
      [a, b],
      [a, c],
      [b, a],
    ] as const) {
      const d = x.diff(y)
      expect(d.memory.length).toBeGreaterThan(0)
      expectRecordsOf(x, y, d.memory)
    }
    expect(a.diff(b).memory.some((r) => r.location === 'counter!g_counter')).toBe(true)
  })

  it("at a map's first and last byte, every page changed, and across two runs of a program (ASLR)", async () => {
    const launchReady = async (aslr: boolean): Promise<{ proc: Process; buf: bigint; size: number }> => {
      const proc = await start(fixture('pagediff'), { args: ['1', '1'], aslr })
      proc.breakAt('ready')
      await proc.cont()
      return { proc, buf: proc.regs.rdi, size: Number(proc.regs.rsi) }
    }
    const { proc, buf, size } = await launchReady(false)
    const a = proc.createSnapshot({ level: 'writable' })
    await proc.cont()
    proc.writeMemory(buf + BigInt(size - 1), Uint8Array.of(0xee)) // the map's last byte
    const b = proc.createSnapshot({ level: 'writable' })
    const inMap = a.diff(b).memory.filter((r) => r.addressAfter >= buf && r.addressAfter < buf + BigInt(size))
    expect(inMap).toHaveLength(size / PAGE + 1)
    expect(inMap[0]?.mapOffset).toBe(0n) // page 0 changes at its byte 0
    expect(inMap[inMap.length - 1]).toMatchObject({ mapOffset: BigInt(size - 1), after: Uint8Array.of(0xee) })
    expectRecordsOf(a, b, a.diff(b).memory)
    const other = (await launchReady(true)).proc.createSnapshot({ level: 'writable' })
    const across = a.diff(other)
    expectRecordsOf(a, other, across.memory)
  })

  it('in python3 (ASLR), between two getppid() calls: every record reads back, named as symbolizeIn names it', async () => {
    const code = [
      'import os',
      'b = bytearray(1 << 16)',
      'for i in range(2):',
      '    b[i * 4099] = 7 + i',
      '    os.getppid()',
    ]
    const proc = await start('/usr/bin/python3', { args: ['-c', code.join('\n')], aslr: true })
    proc.breakAt('libc.so.6!getppid')
    await proc.cont({ timeout: 60_000 })
    const a = proc.createSnapshot({ level: 'writable' })
    await proc.cont({ timeout: 60_000 })
    const b = proc.createSnapshot({ level: 'writable' })
    const d = a.diff(b)
    expect(d.memory.length).toBeGreaterThan(1)
    expect(d.memory.some((r) => r.after[0] === 8 && r.before[0] === 0)).toBe(true) // b[4099] = 8
    expectRecordsOf(a, b, d.memory)
  })

  it('maps held page by page (full) and with untouched pages: records read back', async () => {
    const proc = await start(fixture('reserve'), { args: ['64', '3', '2'] })
    proc.breakAt('ready')
    await proc.cont()
    const buf = proc.regs.rdi
    const size = Number(proc.regs.rsi)
    const a = proc.createSnapshot({ level: 'full' })
    const aw = proc.createSnapshot({ level: 'writable' })
    await proc.cont() // round 1: the first byte of spread page 1 grows by 1
    proc.writeMemory(buf + BigInt(size - 2), Uint8Array.of(1, 2)) // an untouched page, its last two bytes
    proc.writeMemory(buf + 5n * BigInt(PAGE) + 100n, Uint8Array.of(9))
    const b = proc.createSnapshot({ level: 'full' })
    const bw = proc.createSnapshot({ level: 'writable' })
    expect(aw.maps.find((m) => m.start === buf)?.untouched?.length).toBeGreaterThan(0)
    for (const [x, y] of [
      [a, b],
      [aw, bw],
    ] as const) {
      const d = x.diff(y)
      const inMap = d.memory.filter((r) => r.addressAfter >= buf && r.addressAfter < buf + BigInt(size))
      expect(inMap.map((r) => [r.mapOffset, [...r.after]])).toEqual([
        [5n * BigInt(PAGE) + 100n, [9]],
        [
          BigInt(Math.floor(size / 3 / PAGE) * PAGE),
          [...y.memory.read(buf + BigInt(Math.floor(size / 3 / PAGE) * PAGE), 1)],
        ],
        [BigInt(size - 2), [1, 2]],
      ])
      expectRecordsOf(x, y, d.memory)
    }
  })
})
