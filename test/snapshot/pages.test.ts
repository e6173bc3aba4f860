// Issue 12: a capture reads only the pages a process touched (the others are zeros, listed in
// `untouched`), and a second capture of the same process shares the pages that did not change.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { loadSnapshot, type MapState, type PageRun, type Process, type ProcessSnapshot } from '../../src/index.js'
import { heldBytes } from '../../src/snapshot/content.js'
import { probeWriteTracking } from '../../src/process/write-probe.js'
import { hasTracker, trackWrites, type WrittenPages } from '../../src/snapshot/incremental.js'
import { TRACK_FROM_BYTES } from '../../src/snapshot/tracked-writes.js'
import { fixture, start } from '../helpers.js'

const dir = mkdtempSync(join(tmpdir(), 'procsnap-pages-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const PAGE = 4096
const MiB = 1 << 20

/** reserve's bytes at a page it filled (see fixtures/c/reserve.c): the oracle of what the process wrote. */
function filled(offset: number): Uint8Array {
  const page = offset / PAGE
  return Uint8Array.from({ length: PAGE }, (_, i) => (page * 131 + i * 7 + 1) & 0xff)
}

/** reserve stopped at its first ready(buf, size, 0). */
async function reserve(mib: number, pages: number, rounds = 1, discard = false): Promise<Process> {
  const proc = await start(fixture('reserve'), {
    args: [String(mib), String(pages), String(rounds), discard ? '1' : '0'],
  })
  proc.breakAt('ready')
  expect((await proc.cont()).kind).toBe('breakpoint')
  return proc
}

function mapAt(snap: ProcessSnapshot, address: bigint): MapState {
  const map = snap.maps.find((m) => address >= m.start && address < m.end)
  if (!map) throw new Error(`no map at 0x${address.toString(16)}`)
  return map
}

function bytesOf(map: MapState): Uint8Array {
  return heldBytes(map, 0, Number(map.end - map.start))
}

/** Rss + Swap of the map at `start`, in bytes, from /proc/PID/smaps: what the kernel says is touched. */
function smapsTouched(pid: number, start: bigint): number {
  const text = readFileSync(`/proc/${pid}/smaps`, 'latin1')
  const at = text.indexOf(`${start.toString(16)}-`)
  const block = text.slice(at, text.indexOf('VmFlags', at))
  const kb = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(block)?.[1] ?? NaN)
  return (kb('Rss') + kb('Swap')) * 1024
}

/** Byte for byte, as Buffer.equals compares (expect's toEqual walks a 64 MiB array element by element). */
function same(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  return a !== undefined && b !== undefined && Buffer.from(a.buffer, a.byteOffset, a.length).equals(b)
}

const total = (runs: readonly PageRun[] | undefined): number => (runs ?? []).reduce((n, [f, t]) => n + t - f, 0)

describe('pages never touched', () => {
  it('a 1 GiB reservation with 3 pages written costs 3 pages: untouched covers the rest, contents are what it wrote', async () => {
    const proc = await reserve(1024, 3, 1, true)
    const buf = proc.regs.rdi
    const size = Number(proc.regs.rsi)
    const step = Math.floor(size / 3 / PAGE) * PAGE
    const touchedByKernel = smapsTouched(proc.pid, buf)
    global.gc?.()
    const rss0 = process.memoryUsage().rss
    const snap = proc.createSnapshot({ level: 'writable' })
    const grew = process.memoryUsage().rss - rss0
    const map = mapAt(snap, buf)
    expect(map.start).toBe(buf)
    expect(touchedByKernel).toBe(3 * PAGE)
    expect(map.untouched).toEqual([
      [PAGE, step],
      [step + PAGE, 2 * step],
      [2 * step + PAGE, size],
    ])
    expect(size - total(map.untouched)).toBe(touchedByKernel)
    const bytes = bytesOf(map)
    for (const k of [0, 1, 2]) expect(bytes.subarray(k * step, k * step + PAGE)).toEqual(filled(k * step))
    // the page written then discarded (MADV_DONTNEED) reads as zeros and is untouched again
    const discarded = size / 4 + PAGE
    expect(bytes.subarray(discarded, discarded + PAGE).every((b) => b === 0)).toBe(true)
    expect(map.untouched?.some(([f, t]) => f <= discarded && t >= discarded + PAGE)).toBe(true)
    expect(snap.memory.read(buf + BigInt(discarded), 8)).toEqual(new Uint8Array(8))
    // the snapshot's 1 GiB buffer is mostly untouched memory: this process did not grow by a gigabyte
    expect(grew).toBeLessThan(64 * MiB)
    // pprintMaps says how much was never touched
    let text = ''
    snap.pprintMaps({ color: false, stream: { write: (t: string) => (text += t) } })
    expect(text.split('\n')[0]).toMatch(/ held; 1\.0 GiB never touched: zeros, not read\)$/)
    // a live read agrees (the snapshot is a copy of the process's memory, zeros included)
    expect(proc.readMemory(buf + BigInt(step), PAGE)).toEqual(filled(step))
  })

  it('thread stacks hold their live pages only: the rest of each 8 MiB stack is untouched, and backtraces unwind', async () => {
    const proc = await start(fixture('manythreads'), { args: ['16'] })
    proc.breakAt('ready')
    await proc.cont()
    const snap = proc.createSnapshot({ level: 'writable' })
    const workers = snap.threads.filter((t) => t.index > 1)
    expect(workers.length).toBe(16)
    for (const t of workers) {
      const map = mapAt(snap, t.regs.rsp ?? 0n)
      const size = Number(map.end - map.start)
      expect(size).toBeGreaterThanOrEqual(8 * MiB)
      expect(size - total(map.untouched)).toBe(smapsTouched(proc.pid, map.start))
      expect(total(map.untouched)).toBeGreaterThan(size * 0.95)
      expect(t.backtrace.map((f) => f.symbol)).toContain('worker')
    }
  })

  it('saved and loaded, the contents stay the same', async () => {
    const proc = await reserve(64, 5)
    const buf = proc.regs.rdi
    const snap = proc.createSnapshot({ level: 'writable' })
    const path = join(dir, 'reserve.json')
    snap.save(path)
    const back = loadSnapshot(path)
    expect(same(bytesOf(mapAt(back as ProcessSnapshot, buf)), bytesOf(mapAt(snap, buf)))).toBe(true)
    expect(back.diff(snap).isEmpty).toBe(true)
  })
})

describe('incremental snapshots', () => {
  it('share the pages that did not change; their contents equal a full capture, and the earlier snapshot stays as it was', async () => {
    const n = 256
    const proc = await reserve(16, n, 4)
    const buf = proc.regs.rdi
    const size = Number(proc.regs.rsi)
    const step = size / n
    const first = proc.createSnapshot({ level: 'writable' })
    const firstBytes = first.maps.map((m) => bytesOf(m).slice())
    const again = proc.createSnapshot({ level: 'writable' })
    // nothing ran in between: the same contents, not a copy
    expect(mapAt(again, buf).content === mapAt(first, buf).content).toBe(true)
    const earlier = [first]
    const bases: ProcessSnapshot[] = []
    for (const round of [1, 2, 3]) {
      await proc.cont()
      expect(proc.regs.rdx).toBe(BigInt(round))
      const next = proc.createSnapshot({ level: 'writable' })
      const full = proc.createSnapshot({ level: 'writable', incremental: false })
      expect(next.maps.length).toBe(full.maps.length)
      next.maps.forEach((m, i) => expect(same(bytesOf(m), bytesOf(full.maps[i] as MapState))).toBe(true))
      const map = mapAt(next, buf)
      // round r added r to the first byte of page r: one page copied, the others views of the first capture
      expect(map.sparse?.pages.size).toBe(n)
      const written = round * step
      // the base is the previous capture: the first one, then each round's full capture
      const base = mapAt(bases[bases.length - 1] ?? first, buf).content
      expect(map.sparse?.pages.get(written)?.buffer === base?.buffer).toBe(false)
      expect(map.sparse?.pages.get((round + 1) * step)?.buffer === base?.buffer).toBe(true)
      const d = earlier[earlier.length - 1]?.diff(next)
      const inBuf = d?.memory.filter((c) => c.addressAfter >= buf && c.addressAfter < buf + BigInt(size))
      const was = filled(written)[0] ?? 0
      expect(inBuf).toMatchObject([
        { addressAfter: buf + BigInt(written), before: Uint8Array.of(was), after: Uint8Array.of(was + round) },
      ])
      earlier.push(next)
      bases.push(full)
    }
    first.maps.forEach((m, i) => expect(same(bytesOf(m), firstBytes[i])).toBe(true))
  })

  it('read only the pages a tracker says were written', async () => {
    const n = 64
    const proc = await reserve(8, n, 4)
    const buf = proc.regs.rdi
    const size = Number(proc.regs.rsi)
    const step = size / n
    let round = 0
    const asked: Array<[bigint, bigint]> = []
    // what the fixture does between two stops (reserve.c): the oracle a real tracker measures
    const tracker: WrittenPages = {
      tracked: (start, end) => start === buf && end === buf + BigInt(size),
      written: (start, end) => {
        asked.push([start, end])
        return [[round * step, round * step + PAGE]]
      },
      reset: () => undefined,
    }
    trackWrites(proc, tracker)
    const first = proc.createSnapshot({ level: 'writable' })
    for (round = 1; round < 3; round++) {
      await proc.cont()
      const next = proc.createSnapshot({ level: 'writable' })
      const full = proc.createSnapshot({ level: 'writable', incremental: false })
      expect(same(bytesOf(mapAt(next, buf)), bytesOf(mapAt(full, buf)))).toBe(true)
    }
    expect(asked.length).toBeGreaterThan(0)
    expect(mapAt(first, buf).content?.subarray(step, step + 1)).toEqual(filled(step).subarray(0, 1))
    // pages outside the written runs are not read: a tracker that misses the write leaves the earlier byte
    let missed = false
    trackWrites(proc, { ...tracker, written: () => ((missed = true), []) })
    const before = proc.createSnapshot({ level: 'writable' })
    await proc.cont()
    const stale = proc.createSnapshot({ level: 'writable' })
    expect(missed).toBe(true)
    expect(proc.readMemory(buf + BigInt(3 * step), 1)).toEqual(Uint8Array.of((filled(3 * step)[0] ?? 0) + 3))
    expect(stale.memory.read(buf + BigInt(3 * step), 1)).toEqual(before.memory.read(buf + BigInt(3 * step), 1))
    trackWrites(proc, undefined)
  })

  const tracking = probeWriteTracking()
  it.skipIf(tracking.mechanism === undefined)(
    `track a big process's writes after its first capture and read only those (${tracking.uffd || 'uffd-wp'})`,
    async () => {
      const mib = TRACK_FROM_BYTES / MiB + 8
      const n = mib * (MiB / PAGE) // every page touched: the capture reads more than TRACK_FROM_BYTES
      const proc = await reserve(mib, n, 3)
      const buf = proc.regs.rdi
      const first = proc.createSnapshot({ level: 'writable' })
      expect(hasTracker(proc)).toBe(false) // it starts at the next resume, at this stop still
      let base = first
      for (const round of [1, 2]) {
        await proc.cont()
        expect(hasTracker(proc)).toBe(true)
        const next = proc.createSnapshot({ level: 'writable' })
        const full = proc.createSnapshot({ level: 'writable', incremental: false })
        next.maps.forEach((m, i) => expect(same(bytesOf(m), bytesOf(full.maps[i] as MapState))).toBe(true))
        // round r added r to the first byte of page r (reserve.c): that page read again, the rest shared
        const map = mapAt(next, buf)
        const shared = [...(map.sparse?.pages ?? [])].filter(([, b]) => b.buffer === mapAt(base, buf).content?.buffer)
        expect(shared.length).toBe(n - 1)
        expect(map.sparse?.pages.get(round * PAGE)?.[0]).toBe((filled(round * PAGE)[0] ?? 0) + round)
        base = full
      }
    },
  )
})
