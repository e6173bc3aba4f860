// Incremental snapshots (issue 12): a repeat capture lays the pages written since over the earlier
// capture's (PatchedPages) instead of reading or listing every page. Whatever the process did to its
// memory in between (wrote a map's first and last page, discarded pages, shrank, grew, unmapped and
// mapped again, moved the heap's end), the incremental snapshot reads what the process holds: what a
// live read gets, and what a non-incremental capture of the same stop holds.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { loadSnapshot, type MapState, type PageRun, type Process, type ProcessSnapshot } from '../../src/index.js'
import { heldBytes, heldSize } from '../../src/snapshot/content.js'
import { Residency } from '../../src/snapshot/capture-memory.js'
import { hasTracker, trackWrites } from '../../src/snapshot/incremental.js'
import { PatchedPages } from '../../src/snapshot/patched-pages.js'
import { probeWriteTracking } from '../../src/process/write-probe.js'
import { TRACK_FROM_BYTES } from '../../src/snapshot/tracked-writes.js'
import { goldenSections, renderGolden } from '../../src/golden/render.js'
import { fixture, start } from '../helpers.js'

const dir = mkdtempSync(join(tmpdir(), 'procsnap-incremental-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const PAGE = 4096
const MiB = 1 << 20
const tracking = probeWriteTracking().mechanism !== undefined
/** Large enough that the first capture starts write tracking (where the kernel has it); small: never tracked. */
const TRACKED_MIB = TRACK_FROM_BYTES / MiB + 8
const SMALL_MIB = 8
/** Each test reads hundreds of MiB (live reads and captures as oracles): on a busy machine that takes a while. */
const SLOW = { timeout: 60_000 }

/** Byte for byte, as Buffer.equals compares (toEqual walks a 40 MiB array element by element). */
function same(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.length).equals(b)
}

function bytesOf(map: MapState): Uint8Array {
  return heldBytes(map, 0, heldSize(map))
}

function mapAt(snap: ProcessSnapshot, address: bigint): MapState {
  const map = snap.maps.find((m) => address >= m.start && address < m.end)
  if (!map) throw new Error(`no map at 0x${address.toString(16)}`)
  return map
}

/** remap's fill pattern (fixtures/c/remap.c) for page p. */
function filled(p: number): Uint8Array {
  return Uint8Array.from({ length: PAGE }, (_, i) => (p * 131 + i * 7 + 1) & 0xff)
}

/**
 * The oracle at a stop: every map the snapshot holds reads what a live read of the process gets, and
 * what a non-incremental capture of the same stop holds (bytes, and untouched runs); the untouched
 * runs of the incremental one are zeros in the process.
 */
function expectHoldsTheProcess(proc: Process, snap: ProcessSnapshot): void {
  const full = proc.createSnapshot({ level: 'writable', incremental: false })
  expect(snap.maps.map((m) => [m.start, m.end, m.perms])).toEqual(full.maps.map((m) => [m.start, m.end, m.perms]))
  snap.maps.forEach((m, i) => {
    const oracle = full.maps[i] as MapState
    expect(heldSize(m)).toBe(heldSize(oracle))
    if (heldSize(m) === 0) return
    const where = `${m.path || '[anon]'} at 0x${m.start.toString(16)}`
    expect(same(bytesOf(m), bytesOf(oracle)), where).toBe(true)
    expect(m.untouched, where).toEqual(oracle.untouched)
    if (m.path.startsWith('[v')) return // [vdso], [vvar]: not the process's data
    expect(same(bytesOf(m), proc.readMemory(m.start, heldSize(m))), where).toBe(true)
    for (const [from, to] of m.untouched ?? [])
      expect(
        proc.readMemory(m.start + BigInt(from), to - from).every((b) => b === 0),
        where,
      ).toBe(true)
  })
  expect(snap.diff(full).isEmpty).toBe(true)
}

async function remap(mib: number): Promise<Process> {
  const proc = await start(fixture('remap'), { args: [String(mib)] })
  proc.breakAt('ready')
  expect((await proc.cont()).kind).toBe('breakpoint')
  return proc
}

describe.each([
  { mib: TRACKED_MIB, tracked: tracking },
  { mib: SMALL_MIB, tracked: false },
])(
  'a repeat snapshot after the process changed its memory ($mib MiB map, tracked: $tracked)',
  SLOW,
  ({ mib, tracked }) => {
    it('reads what the process holds at every step: ends written, pages discarded, map shrunk, grown, remapped, heap moved', async () => {
      const proc = await remap(mib)
      const buf = proc.regs.rdi
      let previous = proc.createSnapshot({ level: 'writable' })
      expectHoldsTheProcess(proc, previous)
      for (let step = 1; step <= 7; step++) {
        await proc.cont()
        expect(proc.regs.rdx).toBe(BigInt(step))
        expect(hasTracker(proc)).toBe(tracked)
        const size = Number(proc.regs.rsi)
        const snap = proc.createSnapshot({ level: 'writable' })
        expectHoldsTheProcess(proc, snap)
        const map = mapAt(snap, buf)
        expect(Number(map.end - map.start)).toBe(size)
        if (step === 1) {
          // the first and the last page: the earlier capture's pages with those two laid over them
          expect(map.sparse?.pages).toBeInstanceOf(PatchedPages)
          expect(snap.memory.read(buf, 1)[0]).toBe((filled(0)[0]! + 1) & 0xff)
          expect(snap.memory.read(buf + BigInt(size - 1), 1)[0]).toBe(0x5a)
          expect(snap.memory.read(buf + BigInt(PAGE), PAGE)).toEqual(filled(1))
          const changes = previous.diff(snap).memory.filter((c) => c.addressAfter >= buf && c.addressAfter < map.end)
          expect(changes.map((c) => [c.mapOffset, c.after.length])).toEqual([
            [0n, 1],
            [BigInt(size - 1), 1],
          ])
        }
        if (step === 2) {
          expect(snap.memory.read(buf + BigInt(10 * PAGE), 3 * PAGE).every((b) => b === 0)).toBe(true)
          expect(snap.memory.read(buf + BigInt(13 * PAGE), PAGE)).toEqual(filled(13))
          // untracked, the page tables say the discarded pages are untouched again; tracked, they count as written
          if (!tracked) expect(map.untouched).toEqual([[10 * PAGE, 13 * PAGE]])
        }
        if (step === 4) expect(snap.memory.read(buf + BigInt(size - MiB), MiB).every((b) => b === 0x77)).toBe(true)
        if (step === 5) {
          expect(snap.memory.read(buf, PAGE).every((b) => b === 0x33)).toBe(true)
          expect(snap.memory.read(buf + BigInt(PAGE), PAGE).every((b) => b === 0)).toBe(true)
        }
        previous = snap
      }
    })
  },
)

describe('a tracked map with untouched pages', SLOW, () => {
  it.skipIf(!tracking)(
    'keeps its untouched runs exact: the page tables list every page as touched (uffd-wp markers), the tracker knows better',
    async () => {
      // 256 MiB, every fourth page filled: 60 MiB read, so the pages written from here on are tracked
      const proc = await start(fixture('reserve'), { args: ['256', String(60 * 256), '3', '0'] })
      proc.breakAt('ready')
      await proc.cont()
      const buf = proc.regs.rdi
      const end = buf + proc.regs.rsi
      const touchedBefore = new Residency(proc.pid).touched(buf, end) ?? []
      const first = proc.createSnapshot({ level: 'writable' })
      const untouchedBefore = mapAt(first, buf).untouched ?? []
      await proc.cont()
      expect(hasTracker(proc)).toBe(true)
      // pages 1 and 2 were never touched (the fixture filled 0, 4, 8...): write one of them
      proc.writeMemory(buf + BigInt(PAGE + 9), Uint8Array.of(0xab))
      const snap = proc.createSnapshot({ level: 'writable' })
      const map = mapAt(snap, buf)
      expect(snap.memory.read(buf + BigInt(PAGE + 9), 1)).toEqual(Uint8Array.of(0xab))
      expect(map.untouched?.[0]).toEqual([2 * PAGE, 4 * PAGE])
      expect(map.untouched?.length).toBe(untouchedBefore.length)
      // a capture with no earlier one to build on asks the page tables: with no page swapped out, it
      // asks for present pages only, and the markers (which read as swapped) do not count
      const vmSwap = /^VmSwap:\s+(\d+) kB/m.exec(readFileSync(`/proc/${proc.pid}/status`, 'latin1'))?.[1]
      if (vmSwap === '0') {
        const touchedNow = new Residency(proc.pid).touched(buf, end)
        expect(touchedNow?.[0]).toEqual([0, 2 * PAGE])
        expect(touchedNow?.slice(1)).toEqual(touchedBefore.slice(1))
      }
      expectHoldsTheProcess(proc, snap) // (its live reads of the whole map make every page present)
    },
  )
})

describe('in a program we did not write', SLOW, () => {
  it.skipIf(!tracking)(
    'python3: a bytearray written a byte at a time between stops; each incremental snapshot holds what the process holds',
    async () => {
      const mib = TRACKED_MIB
      const code = [
        'import os',
        `b = bytearray(${mib} << 20)`,
        'for i in range(len(b) // 4096): b[i * 4096] = 1',
        'for i in range(4):',
        '    b[i * 4096 * 97 + 5] = 7 + i',
        '    os.getppid()',
      ].join('\n')
      const proc = await start('/usr/bin/python3', { args: ['-c', code] })
      proc.breakAt('libc.so.6!getppid')
      expect((await proc.cont({ timeout: 60_000 })).kind).toBe('breakpoint')
      proc.createSnapshot({ level: 'writable' })
      for (let i = 1; i < 4; i++) {
        await proc.cont()
        expect(hasTracker(proc)).toBe(true)
        const snap = proc.createSnapshot({ level: 'writable' })
        // the bytearray's buffer: the map that holds i * 97 pages past a page that holds 7 + i
        const hits = snap.memory.find(Uint8Array.of(1, 0, 0, 0, 0, 7 + i))
        expect(hits.length).toBeGreaterThan(0)
        const map = mapAt(snap, hits[0]!)
        expect(map.sparse?.pages).toBeInstanceOf(PatchedPages)
        expectHoldsTheProcess(proc, snap)
      }
    },
  )
})

describe('a chain of incremental snapshots', SLOW, () => {
  it.skipIf(!tracking)(
    'each reads its own stop, however many were laid over each other; saved and loaded, and diffed, they stay equal',
    async () => {
      const proc = await start(fixture('reserve'), {
        args: [String(TRACKED_MIB), String((TRACKED_MIB * MiB) / PAGE), '10', '0'],
      })
      proc.breakAt('ready')
      await proc.cont()
      const buf = proc.regs.rdi
      const size = Number(proc.regs.rsi)
      const chain = [proc.createSnapshot({ level: 'writable' })]
      const live = [proc.readMemory(buf, size)]
      for (let round = 1; round <= 6; round++) {
        await proc.cont()
        // the fixture added `round` to page `round`'s first byte; and this test writes the last page and a page of its own
        proc.writeMemory(buf + BigInt(size - PAGE), Uint8Array.of(round))
        proc.writeMemory(buf + BigInt((100 + round) * PAGE + 7), Uint8Array.of(0xee, round))
        const snap = proc.createSnapshot({ level: 'writable' })
        chain.push(snap)
        live.push(proc.readMemory(buf, size))
        const pages = mapAt(snap, buf).sparse?.pages
        expect(pages).toBeInstanceOf(PatchedPages)
        expect(pages?.size).toBe(size / PAGE)
      }
      // every snapshot of the chain still reads the bytes of its own stop
      chain.forEach((snap, i) => expect(same(bytesOf(mapAt(snap, buf)), live[i]!), `snapshot ${i}`).toBe(true))
      const last = chain[chain.length - 1]!
      // iteration (what saving and diffing walk) lists the pages in order, each as the process held it
      const pages = mapAt(last, buf).sparse!.pages
      let expected = 0
      for (const [at, bytes] of pages) {
        expect(at).toBe(expected)
        expected += PAGE
        if (at === size - PAGE || at === 106 * PAGE) expect(same(bytes, live[6]!.subarray(at, at + PAGE))).toBe(true)
      }
      expect(expected).toBe(size)
      // saved and loaded: the same bytes; the diff with the snapshot it came from is empty
      const path = join(dir, 'chain.procsnap')
      last.save(path)
      const back = loadSnapshot(path) as ProcessSnapshot
      expect(same(bytesOf(mapAt(back, buf)), live[6]!)).toBe(true)
      expect(back.diff(last).isEmpty).toBe(true)
      // the diff of two links of the chain: what round 6 changed, and nothing else in the map
      const changes = chain[5]!
        .diff(last)
        .memory.filter((c) => c.addressAfter >= buf && c.addressAfter < buf + BigInt(size))
      expect(changes.map((c) => c.mapOffset)).toEqual([BigInt(6 * PAGE), BigInt(106 * PAGE + 7), BigInt(size - PAGE)])
      // with no tracker, the next links read every page and compare it with the one they are laid over
      let base = last
      for (let round = 7; round <= 8; round++) {
        await proc.cont()
        trackWrites(proc, undefined) // (a capture that read this much starts tracking again at each resume)
        proc.writeMemory(buf + BigInt((200 + round) * PAGE), Uint8Array.of(round))
        const snap = proc.createSnapshot({ level: 'writable' })
        expect(mapAt(snap, buf).sparse?.pages).toBeInstanceOf(PatchedPages)
        expect(same(bytesOf(mapAt(snap, buf)), proc.readMemory(buf, size))).toBe(true)
        const changed = base
          .diff(snap)
          .memory.filter((c) => c.addressAfter >= buf && c.addressAfter < buf + BigInt(size))
        expect(changed.map((c) => c.mapOffset)).toEqual([BigInt(round * PAGE), BigInt((200 + round) * PAGE)])
        base = snap
      }
      expectHoldsTheProcess(proc, base)
    },
  )

  it.skipIf(!tracking)('a patch that grows past an eighth of the map is flattened into a plain page list', async () => {
    const mib = TRACKED_MIB
    const proc = await start(fixture('reserve'), { args: [String(mib), String((mib * MiB) / PAGE), '4', '0'] })
    proc.breakAt('ready')
    await proc.cont()
    const buf = proc.regs.rdi
    const size = Number(proc.regs.rsi)
    proc.createSnapshot({ level: 'writable' })
    const kinds: string[] = []
    // each round writes a twentieth of the pages (the fixture's page among them), other ones each time:
    // the patch over the first capture grows
    for (let round = 1; round <= 3; round++) {
      await proc.cont()
      for (let p = round; p < size / PAGE; p += 20)
        proc.writeMemory(buf + BigInt(p * PAGE + 1), Uint8Array.of(0xc0 + round))
      const snap = proc.createSnapshot({ level: 'writable' })
      kinds.push(mapAt(snap, buf).sparse?.pages.constructor.name ?? 'content')
      // live reads as the oracle: a non-incremental capture would be the next one's base
      expect(same(bytesOf(mapAt(snap, buf)), proc.readMemory(buf, size))).toBe(true)
    }
    // an eighth: two rounds' patch (2/20) is not more than that, three rounds' (3/20, merged over the first capture) is
    expect(kinds).toEqual(['PatchedPages', 'PatchedPages', 'Map'])
  })
})

describe('the touched runs of a map', () => {
  it('come in order from PAGEMAP_SCAN when there are more than one call returns (15,360 runs), as pagemap says', async () => {
    const proc = await start(fixture('reserve'), { args: ['256', String(60 * 256), '1', '0'] })
    proc.breakAt('ready')
    await proc.cont()
    const buf = proc.regs.rdi
    const end = buf + proc.regs.rsi
    const scanned = new Residency(proc.pid).touched(buf, end)
    const read = new Residency(proc.pid, { scan: false }).touched(buf, end)
    expect(read?.length).toBe(60 * 256)
    expect(scanned).toEqual(read)
    const ascending = (runs: readonly PageRun[]): boolean =>
      runs.every(([f, t], i) => f < t && (i === 0 || f > runs[i - 1]![1]))
    expect(ascending(scanned ?? [])).toBe(true)
    const snap = proc.createSnapshot({ level: 'writable' })
    const untouched = mapAt(snap, buf).untouched ?? []
    expect(ascending(untouched)).toBe(true)
    expect(untouched.reduce((n, [f, t]) => n + t - f, 0)).toBe(Number(proc.regs.rsi) - 60 * 256 * PAGE)
  })
})

describe('the golden view of an incremental snapshot', () => {
  it('shows the data of a large .bss the capture shared page by page, as a non-incremental capture does', async () => {
    const proc = await remap(SMALL_MIB)
    const header = { key: 'k', test: 't' }
    const view = (snap: ProcessSnapshot): string =>
      renderGolden(header, goldenSections(snap.data, snap.modules(), { include: ['memory'] }))
    proc.createSnapshot({ level: 'writable' })
    await proc.cont()
    const snap = proc.createSnapshot({ level: 'writable' })
    const big = mapAt(snap, proc.resolve('g_big') + BigInt(MiB)) // the anonymous map after the executable's data
    expect(big.sparse?.pages).toBeInstanceOf(PatchedPages) // shared with the first capture, not copied
    const text = view(snap)
    expect(text).toBe(view(proc.createSnapshot({ level: 'writable', incremental: false })))
    expect(text).toMatch(/g_big/)
  })
})

describe('maps while writes are tracked', () => {
  it.skipIf(!tracking)(
    'are the maps of an untracked run: a heap grown after tracking began is one [heap] from start_brk, the .bss apart',
    async () => {
      // python3 holds 40 MiB (the capture starts tracking), then grows its heap with brk.
      const script =
        'import os\nbig = bytearray(40 << 20)\nfor i in range(3):\n' +
        '    x = [bytearray(1000 + i) for _ in range(3000)]\n    os.write(1, b"%d\\n" % i)\n'
      const layout = async (incremental: boolean): Promise<string[]> => {
        const proc = await start('/usr/bin/python3', { args: ['-c', script], stdout: 'ignore' })
        proc.breakAt('libc.so.6!write')
        await proc.cont()
        proc.createSnapshot({ level: 'writable', incremental })
        await proc.cont() // tracking starts as the process resumes
        expect(hasTracker(proc)).toBe(incremental)
        await proc.cont()
        const snap = proc.createSnapshot({ level: 'writable', incremental })
        return snap.maps.map((m) => `${m.start.toString(16)}-${m.end.toString(16)} ${m.perms} ${m.path}`)
      }
      const tracked = await layout(true)
      expect(tracked).toEqual(await layout(false))
      expect(tracked.filter((m) => m.endsWith('[heap]'))).toHaveLength(1)
    },
    60_000,
  )
})
