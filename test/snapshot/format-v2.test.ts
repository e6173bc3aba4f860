// procsnap/2, the format save() writes: exact round trips of real processes at every level, zero
// and repeated pages stored once, untouched pages never read, snapshots past V8's 512 MiB string
// limit, procsnap/1 files still loading, and every kind of bad file refused with its typed error.
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { loadSnapshot, type MapState, type SnapshotData, type SnapshotLevel } from '../../src/index.js'
import { encodeSnapshotV1 } from '../../src/snapshot/format.js'
import { decodeSnapshot, encodeSnapshot, readSnapshotData, saveSnapshotData } from '../../src/snapshot/format-file.js'
import { heldBytes } from '../../src/snapshot/content.js'
import { HEADER_BYTES, META_LAST, PAGE_BYTES, layoutOf } from '../../src/snapshot/format-v2.js'
import { fixture, start, codeOf } from '../helpers.js'
import { aarch64CounterData } from './aarch64-data.js'
import { editV2, sealV2, splitV2 } from './v2-file.js'

const dir = mkdtempSync(join(tmpdir(), 'procsnap-v2-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const MiB = 1 << 20

/** A map with the given contents at `start`. */
function anon(start: bigint, held: Partial<MapState> & { size: number }): MapState {
  const { size, ...rest } = held
  return { start, end: start + BigInt(size), perms: 'rw-p', offset: 0n, path: '', inode: 0, ...rest }
}

/** Repeated pages, a zero page, a short tail, a sparse map, a partly held map, untouched runs. */
function syntheticData(): SnapshotData {
  const repeated = new Uint8Array(8 * PAGE_BYTES)
  for (let i = 0; i < repeated.length; i++) repeated[i] = (i * 131 + 7) & 0xff
  const mixed = new Uint8Array(3 * PAGE_BYTES + 100)
  mixed.set([1, 2, 3], PAGE_BYTES)
  mixed.set([9, 9], 3 * PAGE_BYTES + 98)
  const touched = new Uint8Array(6 * PAGE_BYTES)
  touched.fill(7, 0, PAGE_BYTES)
  touched.fill(8, 4 * PAGE_BYTES, 5 * PAGE_BYTES)
  return {
    ...aarch64CounterData(),
    maps: [
      anon(0x10000n, { size: repeated.length, content: repeated }),
      anon(0x20000n, { size: mixed.length, content: mixed, path: '/x', inode: 3 }),
      anon(0x30000n, {
        size: 0x4000,
        sparse: { size: 0x4000, pages: new Map([[0x2000, repeated.subarray(0, PAGE_BYTES)]]) },
      }),
      anon(0x40000n, {
        size: 0x3000,
        perms: 'r--p',
        sparse: {
          size: 0x1000,
          pages: new Map([[0, Uint8Array.from([...Buffer.from('eleven char'), ...new Uint8Array(4085)])]]),
        },
        unreadable: 'from +0x1000 on, past the end of its file',
      }),
      anon(0x50000n, {
        size: touched.length,
        content: touched,
        untouched: [
          [PAGE_BYTES, 4 * PAGE_BYTES],
          [5 * PAGE_BYTES, 6 * PAGE_BYTES],
        ],
      }),
    ],
  }
}

/** Data with each map's bytes as a Buffer (toEqual on a large Uint8Array walks it byte by byte). */
function comparable(d: SnapshotData): unknown {
  return {
    ...d,
    maps: d.maps.map(({ content, sparse, ...m }) => ({
      ...m,
      content: content && Buffer.from(content).toString('base64'),
      sparse: sparse && {
        size: sparse.size,
        pages: [...sparse.pages].map(([o, p]) => [o, Buffer.from(p).toString('hex')]),
      },
    })),
  }
}

describe('procsnap/2 files', () => {
  it('round-trip exactly: odd sizes, sparse and partly held maps, untouched runs; equal data gives equal bytes', () => {
    const data = syntheticData()
    const bytes = encodeSnapshot(data)
    expect(bytes.subarray(0, 8).toString()).toBe('PROCSNAP')
    const back = decodeSnapshot(bytes)
    expect(comparable(back)).toEqual(comparable(data))
    expect(back.maps[4]?.untouched).toEqual([
      [PAGE_BYTES, 4 * PAGE_BYTES],
      [5 * PAGE_BYTES, 6 * PAGE_BYTES],
    ])
    expect(encodeSnapshot(data).equals(bytes)).toBe(true)
    expect(encodeSnapshot(back).equals(bytes)).toBe(true)
    const path = join(dir, 'synthetic.procsnap')
    saveSnapshotData(path, data)
    expect(readFileSync(path).equals(bytes)).toBe(true)
    expect(comparable(readSnapshotData(path))).toEqual(comparable(data))
  })

  it('files of the earlier layout (metadata first, flags 0) load as before; unknown flags are refused', () => {
    const data = syntheticData()
    const { meta, data: pages } = splitV2(encodeSnapshot(data))
    const earlier = sealV2(meta, pages, true)
    expect(earlier.readUInt32LE(12)).toBe(0)
    expect(earlier.subarray(HEADER_BYTES, HEADER_BYTES + 10).toString()).toBe('{"format":')
    expect(comparable(decodeSnapshot(earlier))).toEqual(comparable(data))
    expect(encodeSnapshot(decodeSnapshot(earlier)).equals(encodeSnapshot(data))).toBe(true)
    const unknown = sealV2(meta, pages)
    unknown.writeUInt32LE(META_LAST | 4, 12)
    expect(codeOf(() => decodeSnapshot(unknown))).toBe('ERR_SNAPSHOT_CORRUPT')
    expect(() => decodeSnapshot(unknown)).toThrow(/flags are 5, which no procsnap writes/)
  })

  it('store each distinct non-zero page once, raw and page-aligned, and list maps as page runs', () => {
    const { header, meta, data } = splitV2(encodeSnapshot(syntheticData()))
    // the repeated page (also the sparse map's page 2), the data page and the tail of `mixed`, 'eleven char', two touched pages
    expect(header.pageCount).toBe(6)
    expect(data.length).toBe(6 * PAGE_BYTES)
    // the pages start at 4096, right after the header's page, and the metadata follows them
    expect(header.flags).toBe(META_LAST)
    expect(layoutOf(header)).toEqual({
      pagesAt: PAGE_BYTES,
      metaAt: 7 * PAGE_BYTES,
      size: 7 * PAGE_BYTES + header.metaLength,
    })
    const maps = (
      JSON.parse(meta) as { snapshot: { maps: { content?: { runs: number[][] }; sparse?: { runs: number[][] } }[] } }
    ).snapshot.maps
    expect(maps[0]?.content?.runs).toEqual([[0, 8, 0, 0]])
    expect(maps[1]?.content?.runs).toEqual([
      [1, 1, 1],
      [3, 1, 2],
    ])
    expect(maps[2]?.sparse?.runs).toEqual([[2, 1, 0]])
    expect(maps[4]?.content?.runs).toEqual([
      [0, 1, 4],
      [4, 1, 5],
    ])
  })

  it('a run of one page repeated loads as that page everywhere, a short last page included', () => {
    // 1,000 pages and 100 bytes, every page the same: bytes 0-99 set, the rest zeros (so the short last page is the same page padded)
    const size = 1000 * PAGE_BYTES + 100
    const content = new Uint8Array(size)
    for (let at = 0; at < size; at += PAGE_BYTES) for (let i = 0; i < 100; i++) content[at + i] = i + 1
    const data: SnapshotData = { ...syntheticData(), maps: [anon(0x10000n, { size, content })] }
    const bytes = encodeSnapshot(data)
    expect(splitV2(bytes).header.pageCount).toBe(1)
    const meta = JSON.parse(splitV2(bytes).meta) as { snapshot: { maps: { content: { runs: number[][] } }[] } }
    expect(meta.snapshot.maps[0]?.content.runs).toEqual([[0, 1001, 0, 0]])
    const back = decodeSnapshot(bytes).maps[0]?.content
    expect(back && Buffer.from(back).equals(content)).toBe(true)
  })

  it('pages alike in every sampled word are never confused: each kept, repeats stored once while few are alike', () => {
    // 20 pages that differ only at byte 2000 (no sampled word there) and are zero elsewhere, then repeats
    const distinct = 20
    const content = new Uint8Array((distinct + 3) * PAGE_BYTES)
    for (let i = 0; i < distinct; i++) content[i * PAGE_BYTES + 2000] = i + 1
    content.set(content.subarray(0, PAGE_BYTES), distinct * PAGE_BYTES) // page 0 again
    content[(distinct + 2) * PAGE_BYTES + 4095] = 1 // differs from the zero page in its last byte only
    const data: SnapshotData = { ...syntheticData(), maps: [anon(0x10000n, { size: content.length, content })] }
    const bytes = encodeSnapshot(data)
    const back = decodeSnapshot(bytes)
    expect(back.maps[0]?.content && Buffer.from(back.maps[0].content).equals(content)).toBe(true)
    // all distinct pages, page 0's repeat shares its slot, page 21 (zeros) is stored as none
    expect(splitV2(bytes).header.pageCount).toBe(distinct + 1)
  })

  it('never read nor store untouched pages: bytes planted there are not saved, and a 2 GiB map saves as a few KB', () => {
    const size = 2 ** 31 // calloc'd: costs no memory until written
    const content = new Uint8Array(size)
    content.fill(1, 0, PAGE_BYTES)
    content.fill(2, 5 * PAGE_BYTES, 6 * PAGE_BYTES) // inside the untouched run: a lie the writer must not read
    const data: SnapshotData = {
      ...syntheticData(),
      maps: [anon(0x7f0000000000n, { size, content, untouched: [[PAGE_BYTES, size]] })],
    }
    const path = join(dir, 'untouched.procsnap')
    saveSnapshotData(path, data)
    expect(statSync(path).size).toBeLessThan(4 * PAGE_BYTES)
    const back = loadSnapshot(path)
    expect(back.memory.read(0x7f0000000000n, 2)).toEqual(Uint8Array.of(1, 1))
    expect(back.memory.read(0x7f0000000000n + 5n * BigInt(PAGE_BYTES), 2)).toEqual(Uint8Array.of(0, 0))
    expect(back.data.maps[0]?.untouched).toEqual([[PAGE_BYTES, size]])
    // past the dense budget (more than the file stores): held page by page, written back the same
    expect(back.data.maps[0]?.content).toBeUndefined()
    expect(encodeSnapshot(back.data).equals(readFileSync(path))).toBe(true)
  })

  it('write untouched runs as the reader requires them, whatever order and alignment the data has', () => {
    const content = new Uint8Array(8 * PAGE_BYTES).fill(3)
    const untouched: [number, number][] = [
      [6 * PAGE_BYTES, 99 * PAGE_BYTES],
      [100, 3 * PAGE_BYTES + 5],
      [2 * PAGE_BYTES, 4 * PAGE_BYTES],
    ]
    const data: SnapshotData = {
      ...syntheticData(),
      maps: [anon(0x10000n, { size: content.length, content, untouched })],
    }
    const back = decodeSnapshot(encodeSnapshot(data))
    expect(back.maps[0]?.untouched).toEqual([
      [PAGE_BYTES, 4 * PAGE_BYTES],
      [6 * PAGE_BYTES, 8 * PAGE_BYTES],
    ])
    const bytes = back.maps[0]?.content
    expect(bytes && [0, 1, 3, 4, 5, 6, 7].map((p) => bytes[p * PAGE_BYTES])).toEqual([3, 0, 0, 3, 3, 0, 0])
  })

  it('save and load snapshots past 512 MiB (one JSON string could not hold them)', () => {
    const size = 640 * MiB
    const content = new Uint8Array(size)
    for (let at = 0; at < size; at += PAGE_BYTES) content[at] = (at / PAGE_BYTES) & 0xff || 1 // 160K pages, 256 distinct
    const sparsePages = new Map<number, Uint8Array>()
    for (let at = 0; at < size; at += 64 * PAGE_BYTES)
      sparsePages.set(at, content.subarray(at + PAGE_BYTES, at + 2 * PAGE_BYTES))
    const data: SnapshotData = {
      ...syntheticData(),
      maps: [
        anon(0x100000000n, { size, content }),
        anon(0x200000000n, { size, perms: '---p', sparse: { size, pages: sparsePages } }),
      ],
    }
    const path = join(dir, 'big.procsnap')
    saveSnapshotData(path, data)
    const back = loadSnapshot(path)
    // 256 distinct pages stored (1 MiB): the 640 MiB map is past the dense budget, held page by page
    const map = back.data.maps[0]
    expect(map?.sparse?.pages.size).toBe(size / PAGE_BYTES)
    expect(map && Buffer.from(heldBytes(map, 0, size)).equals(content)).toBe(true)
    expect(back.data.maps[1]?.sparse?.pages.size).toBe(sparsePages.size)
    expect(back.memory.read(0x200000000n + 64n * BigInt(PAGE_BYTES), 1)).toEqual(Uint8Array.of(65))
    expect(back.memory.read(0x100000000n + 1280n * BigInt(PAGE_BYTES) + 1n, 1)).toEqual(Uint8Array.of(0))
    expect(statSync(path).size).toBeLessThan(4 * MiB)
  }, 60_000)
})

describe('real processes through procsnap/2', () => {
  const roundTrip = (data: SnapshotData, name: string): SnapshotData => {
    const path = join(dir, `${name}.procsnap`)
    saveSnapshotData(path, data)
    const back = loadSnapshot(path).data
    expect(comparable(back)).toEqual(comparable(data))
    expect(encodeSnapshot(back).equals(readFileSync(path))).toBe(true)
    return back
  }

  it('counter at bump, every level', async () => {
    const proc = await start(fixture('counter'))
    proc.breakAt('bump')
    await proc.cont()
    for (const level of ['base', 'writable', 'full'] as SnapshotLevel[]) {
      const snap = proc.createSnapshot({ level })
      roundTrip(snap.data, `counter-${level}`)
    }
  })

  it('pagefill, 16 MiB of each kind of page, full', async () => {
    for (const kind of ['repeated', 'distinct', 'random']) {
      const proc = await start(fixture('pagefill'), { args: ['16', kind] })
      proc.breakAt('ready')
      await proc.cont()
      const snap = proc.createSnapshot({ level: 'full' })
      const back = roundTrip(snap.data, `pagefill-${kind}`)
      const big = back.maps.find((m) => m.end - m.start === 16n * BigInt(MiB))
      expect(big?.content, kind).toBeDefined()
      await proc.kill()
    }
  }, 60_000)

  it.skipIf(!existsSync('/usr/bin/python3'))(
    'python3 at getppid, full (threads, guard pages, arenas held sparse)',
    async () => {
      const proc = await start('/usr/bin/python3', {
        args: [
          '-c',
          'import os, threading\nt = threading.Thread(target=lambda: None)\nt.start(); t.join()\nos.getppid()',
        ],
      })
      proc.breakAt('libc.so.6!getppid')
      expect((await proc.cont()).kind).toBe('breakpoint')
      const snap = proc.createSnapshot({ level: 'full' })
      expect(snap.data.maps.some((m) => m.sparse)).toBe(true)
      roundTrip(snap.data, 'python3-full')
    },
  )

  it('a procsnap/1 file of a real process still loads', async () => {
    const proc = await start(fixture('counter'))
    proc.breakAt('bump')
    await proc.cont()
    const snap = proc.createSnapshot({ level: 'writable' })
    const path = join(dir, 'counter-v1.json')
    writeFileSync(path, encodeSnapshotV1(snap.data))
    // procsnap/1 has no `untouched`: those pages load as the zeros they are, unlisted.
    const withoutUntouched = { ...snap.data, maps: snap.data.maps.map(({ untouched: _, ...m }) => m) }
    expect(snap.data.maps.some((m) => m.untouched?.length)).toBe(true)
    expect(comparable(loadSnapshot(path).data)).toEqual(comparable(withoutUntouched))
  })
})

describe('bad procsnap/2 files', () => {
  const good = encodeSnapshot(syntheticData())
  const load = (bytes: Buffer, name = 'bad.procsnap'): SnapshotData => {
    const path = join(dir, name)
    writeFileSync(path, bytes)
    return loadSnapshot(path).data
  }
  const maps = (f: { snapshot: Record<string, unknown> }): Record<string, unknown>[] =>
    f.snapshot.maps as Record<string, unknown>[]
  const runsOf = (f: { snapshot: Record<string, unknown> }, i: number, key = 'content'): unknown[] =>
    (maps(f)[i]?.[key] as { runs: unknown[] }).runs

  it('truncated anywhere: ERR_SNAPSHOT_CORRUPT', () => {
    for (const at of [
      10,
      HEADER_BYTES + 5,
      PAGE_BYTES + 100,
      layoutOf(splitV2(good).header).metaAt + 5,
      good.length - 1,
    ]) {
      expect(
        codeOf(() => load(good.subarray(0, at))),
        `cut at ${at}`,
      ).toBe('ERR_SNAPSHOT_CORRUPT')
      expect(
        codeOf(() => decodeSnapshot(good.subarray(0, at))),
        `cut at ${at}`,
      ).toBe('ERR_SNAPSHOT_CORRUPT')
    }
    expect(() => load(good.subarray(0, good.length - 1))).toThrow(/truncated or damaged/)
  })

  it('a flipped bit in the metadata or a page: ERR_SNAPSHOT_CORRUPT, by its checksum', () => {
    const meta = Buffer.from(good)
    meta[layoutOf(splitV2(good).header).metaAt + 30]! ^= 4
    expect(() => load(meta)).toThrow(/metadata does not match its checksum/)
    const page = Buffer.from(good)
    page[PAGE_BYTES + 3]! ^= 1
    expect(() => load(page)).toThrow(/pages do not match their checksum/)
  })

  it('not ours: ERR_SNAPSHOT_FOREIGN; a newer version: ERR_SNAPSHOT_VERSION; an unknown arch: ERR_SNAPSHOT_ARCH', () => {
    expect(codeOf(() => load(readFileSync('/bin/true')))).toBe('ERR_SNAPSHOT_FOREIGN')
    expect(codeOf(() => load(Buffer.from('PROCSNAQ' + 'x'.repeat(100))))).toBe('ERR_SNAPSHOT_FOREIGN')
    const newer = Buffer.from(good)
    newer.writeUInt32LE(3, 8)
    expect(codeOf(() => load(newer))).toBe('ERR_SNAPSHOT_VERSION')
    expect(() => load(newer)).toThrow(/procsnap\/3, written by a newer procsnap.*Upgrade/)
    expect(codeOf(() => load(editV2(good, (f) => (f.snapshot.arch = 'riscv64'))))).toBe('ERR_SNAPSHOT_ARCH')
  })

  it('metadata that passes its checksum but lies: ERR_SNAPSHOT_CORRUPT naming the path', () => {
    const bad = (change: (f: { format: string; snapshot: Record<string, unknown> }) => void, message: string): void => {
      const bytes = editV2(good, change)
      expect(
        codeOf(() => load(bytes)),
        message,
      ).toBe('ERR_SNAPSHOT_CORRUPT')
      expect(() => load(bytes)).toThrow(message)
    }
    bad((f) => (f.format = 'procsnap/1'), "$.format: expected 'procsnap/2'")
    bad((f) => ((runsOf(f, 1)[1] as number[])[0] = 0), '$.snapshot.maps[1].content.runs[1]: pages 0-0 are out of order')
    bad((f) => runsOf(f, 1).push([4, 1, 0]), "past the map's 4")
    bad((f) => ((runsOf(f, 1)[1] as number[])[2] = 5), 'slot 5 is neither a page already read nor the next one (2)')
    bad((f) => runsOf(f, 4).pop(), 'the file stores 6 pages but its maps list 5')
    bad((f) => runsOf(f, 0).push('x'), '$.snapshot.maps[0].content.runs[1]: expected [page, count, slot]')
    bad((f) => ((runsOf(f, 0)[0] as number[])[3] = 1), 'expected [page, count, slot] or [page, count, slot, 0]')
    bad(
      (f) => ((maps(f)[0]!.content as { size: number }).size = 5),
      '$.snapshot.maps[0].content.size: 5 bytes for a map of 32768',
    )
    bad(
      (f) => ((maps(f)[2]!.sparse as { size: number }).size = 0x2800),
      "neither the map's size nor a multiple of 4096",
    )
    bad(
      (f) => (maps(f)[4]!.untouched = [[4096, 100]]),
      '$.snapshot.maps[4].untouched[0]: [4096, 100] is not an ascending page range',
    )
    bad(
      (f) =>
        (maps(f)[4]!.untouched = [
          [0, 8192],
          [4096, 16384],
        ]),
      'untouched[1]',
    )
    bad((f) => delete f.snapshot.threads, '$.snapshot.threads: expected an array, found nothing')
  })

  it('a hostile header or run list stays bounded: sizes checked before allocation, repeated pages held once', () => {
    const huge = Buffer.from(good)
    huge.writeBigUInt64LE(1n << 40n, 24) // page count
    expect(() => load(huge)).toThrow(/truncated or damaged/)
    huge.writeBigUInt64LE(1n << 62n, 16) // metadata length
    expect(codeOf(() => load(huge))).toBe('ERR_SNAPSHOT_CORRUPT')
    const { data } = splitV2(good)
    // one page listed for 2^40 pages of a 4 PiB map held page by page: refused, not attempted
    const tera = sealV2(
      JSON.stringify({
        format: 'procsnap/2',
        snapshot: {
          ...(JSON.parse(splitV2(good).meta) as { snapshot: Record<string, unknown> }).snapshot,
          maps: [
            {
              start: '0x0',
              end: `0x${(2n ** 52n).toString(16)}`,
              perms: '---p',
              offset: '0x0',
              path: '',
              inode: 0,
              sparse: { size: 2 ** 52, runs: [[0, 2 ** 40, 0, 0]] },
            },
          ],
        },
      }),
      data.subarray(0, PAGE_BYTES),
    )
    expect(() => load(tera)).toThrow(/lists more pages than/)
    // one page repeated over 1 GiB of content: past the dense budget, held as views of one page
    const giga = editV2(good, (f) => {
      f.snapshot.maps = [
        {
          start: '0x0',
          end: '0x40000000',
          perms: 'rw-p',
          offset: '0x0',
          path: '',
          inode: 0,
          content: { size: 2 ** 30, runs: [[0, 2 ** 18, 0, 0]] },
        },
      ]
    })
    const back = load(sealV2(splitV2(giga).meta, data.subarray(0, PAGE_BYTES)))
    expect(back.maps[0]?.sparse?.pages.size).toBe(2 ** 18)
  })
})
