// Hostile snapshot files (issue 11): whatever a file declares, loading and using it ends in a result
// or a ProcsnapError with a code, within a second, in bounded memory. Maps that name special or huge
// files, zlib bombs, gigabytes declared by a few megabytes, special files given to loadSnapshot.
import { execFileSync } from 'node:child_process'
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { deflateRawSync } from 'node:zlib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadSnapshot, type Snapshot } from '../../src/index.js'
import { encodeSnapshotV1 as encodeSnapshot } from '../../src/snapshot/format.js'
import type { SnapshotDiffData } from '../../src/snapshot/model.js'
import { renderDiff } from '../../src/snapshot/pprint.js'
import { caughtProcsnapError, fixture, start } from '../helpers.js'
import { exercise, measured } from './exercise.js'

const dir = mkdtempSync(join(tmpdir(), 'procsnap-hostile-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

interface SnapshotFile {
  format: string
  snapshot: { maps: Array<Record<string, unknown>> } & Record<string, unknown>
  pages: Record<string, string>
}

let original: Snapshot
let bytes: Buffer

beforeAll(async () => {
  const proc = await start(fixture('counter'))
  proc.breakAt('bump')
  await proc.cont()
  original = proc.createSnapshot({ level: 'writable' })
  bytes = encodeSnapshot(original.data)
  await proc.kill()
})

/** The real snapshot's file, changed by `change`, saved; its path. */
function edited(name: string, change: (file: SnapshotFile) => void): string {
  const file = JSON.parse(bytes.toString()) as SnapshotFile
  change(file)
  const path = join(dir, name)
  writeFileSync(path, JSON.stringify(file))
  return path
}

const MB = 1 << 20

describe('maps naming files that are no ELF file of the snapshot', () => {
  const libc = (file: SnapshotFile): Array<Record<string, unknown>> =>
    file.snapshot.maps.filter((m) => String(m.path).includes('libc.so'))

  const targets: Array<[string, () => string]> = [
    ['/proc/self/pagemap (a file of 2^47 / 512 bytes that declares 0)', () => '/proc/self/pagemap'],
    ['/dev/zero', () => '/dev/zero'],
    [
      'a FIFO',
      () => {
        const fifo = join(dir, 'fifo')
        execFileSync('mkfifo', [fifo])
        return fifo
      },
    ],
    ['a directory', () => dir],
    [
      'a 1.5 GB file that starts as an ELF file',
      () => {
        const big = join(dir, 'big.so')
        const fd = openSync(big, 'w')
        writeSync(fd, readFileSync(fixture('counter')).subarray(0, 64), 0, 64, 0)
        writeSync(fd, Buffer.from([1]), 0, 1, 1.5e9) // sparse: costs no disk
        closeSync(fd)
        return big
      },
    ],
  ]

  for (const [what, target] of targets)
    it(`${what}: read only as far as its first bytes; the module is unsymbolized and every reader works`, () => {
      const path = target()
      const file = edited('special.json', (f) => libc(f).forEach((m) => (m.path = path)))
      const { ms, peakGrowth } = measured(() => exercise(loadSnapshot(file), original))
      expect(ms).toBeLessThan(1000)
      expect(peakGrowth).toBeLessThan(64 * MB)
      const snap = loadSnapshot(file)
      const base = snap.modules().find((m) => m.path === path)
      expect(base?.elf).toBeUndefined()
      if (base) expect(snap.symbolize(base.start + 0x10n)).toMatch(/\+0x10$/)
    })

  it('the executable with another build-id than the snapshot records: unsymbolized, never an error', () => {
    const file = edited('rebuilt.json', (f) => {
      for (const m of f.snapshot.maps)
        if (m.buildId !== undefined && m.path === original.exe) m.buildId = 'ab'.repeat(20)
    })
    const snap = loadSnapshot(file)
    const bump = original.memory.resolve('bump')
    expect(original.symbolize(bump)).toBe('counter!bump')
    expect(snap.symbolize(bump)).toMatch(/^counter\+0x[0-9a-f]+$/)
    exercise(snap, original)
    expect(caughtProcsnapError(() => snap.memory.resolve('bump')).code).toBe('ERR_SYMBOL_NOT_FOUND')
  })
})

describe('pages', () => {
  it('a zlib bomb (a page that inflates to 256 MiB) is refused without being inflated: ERR_SNAPSHOT_CORRUPT naming the page', () => {
    const bomb = deflateRawSync(Buffer.alloc(256 * MB), { level: 9 }).toString('base64')
    let hash = ''
    const file = edited('bomb.json', (f) => {
      hash = Object.keys(f.pages)[0] ?? ''
      f.pages[hash] = bomb
    })
    const { value: error, ms, peakGrowth } = measured(() => caughtProcsnapError(() => loadSnapshot(file)))
    expect(error.code).toBe('ERR_SNAPSHOT_CORRUPT')
    expect(error.message).toContain(`page ${hash.slice(0, 12)}… inflates to more than`)
    expect(ms).toBeLessThan(1000)
    expect(peakGrowth).toBeLessThan(32 * MB)
  })
})

describe('declared sizes', () => {
  /** `count` maps of `size` bytes above the process's maps, every page listed as `page` (null: zeros). */
  const withMaps = (name: string, count: number, size: number, page: (f: SnapshotFile) => string | null): string =>
    edited(name, (f) => {
      const listed = page(f)
      for (let i = 0; i < count; i++) {
        const start = 0x100000000000n + BigInt(i) * 0x100000000n
        f.snapshot.maps.push({
          start: `0x${start.toString(16)}`,
          end: `0x${(start + BigInt(size)).toString(16)}`,
          perms: 'rw-p',
          offset: '0x0',
          path: '',
          inode: 0,
          content: { size, pages: new Array<string | null>(Math.ceil(size / 4096)).fill(listed) },
        })
      }
      f.snapshot.maps.sort((a, b) => (BigInt(String(a.start)) < BigInt(String(b.start)) ? -1 : 1))
    })

  it('8 maps of 2 GiB of zero pages (a 21 MB file) load in well under a second and cost what the file stores', () => {
    const file = withMaps('zeros.json', 8, 2 ** 31, () => null)
    const { value: snap, ms, peakGrowth } = measured(() => loadSnapshot(file))
    expect(ms).toBeLessThan(1000)
    expect(peakGrowth).toBeLessThan(256 * MB)
    const last = snap.maps.find((m) => m.start === 0x100000000000n + 7n * 0x100000000n)
    expect(last && last.end - last.start).toBe(2n ** 31n)
    expect([...snap.memory.read(0x100000000000n + 2n ** 31n - 8n, 8)]).toEqual([0, 0, 0, 0, 0, 0, 0, 0])
    expect(snap.memory.find('procsnap')).toEqual(original.memory.find('procsnap'))
    // held page by page in memory, written back as the same content page lists
    expect(encodeSnapshot(snap.data).equals(readFileSync(file))).toBe(true)
    exercise(snap, original)
  })

  it('one data page listed for every page of a 1 GiB map (a 17 MB file) is held once, not a gigabyte', () => {
    const file = withMaps('repeated.json', 1, 2 ** 30, (f) => Object.keys(f.pages)[0] ?? null)
    const { value: snap, ms, peakGrowth } = measured(() => loadSnapshot(file))
    expect(ms).toBeLessThan(1000)
    expect(peakGrowth).toBeLessThan(256 * MB)
    const page = snap.memory.read(0x100000000000n, 4096)
    expect(Buffer.from(snap.memory.read(0x100000000000n + 2n ** 30n - 4096n, 4096)).equals(page)).toBe(true)
    expect(encodeSnapshot(snap.data).equals(readFileSync(file))).toBe(true)
  })

  it('a content of 2^33 bytes of zeros (a 10 MB file) loads page by page: no buffer of 8 GiB, no RangeError', () => {
    const file = withMaps('huge.json', 1, 2 ** 33, () => null)
    const { value: snap, ms, peakGrowth } = measured(() => loadSnapshot(file))
    expect(ms).toBeLessThan(1000)
    expect(peakGrowth).toBeLessThan(256 * MB)
    expect([...snap.memory.read(0x100000000000n + 2n ** 33n - 4n, 4)]).toEqual([0, 0, 0, 0])
    expect(encodeSnapshot(snap.data).equals(readFileSync(file))).toBe(true)
  })

  it('a size that does not match the map, or a page list of another length: ERR_SNAPSHOT_CORRUPT before anything is allocated', () => {
    const wrongSize = edited('wrong-size.json', (f) => {
      const m = f.snapshot.maps.find((x) => x.content !== undefined)
      if (m) (m.content as { size: number }).size = 2 ** 33
    })
    expect(caughtProcsnapError(() => loadSnapshot(wrongSize)).message).toMatch(
      /content\.size: 8589934592 bytes for a map of/,
    )
    const longList = edited('long-list.json', (f) => {
      const m = f.snapshot.maps.find((x) => x.content !== undefined)
      if (m) (m.content as { pages: unknown[] }).pages.push(null)
    })
    expect(caughtProcsnapError(() => loadSnapshot(longList)).message).toMatch(/pages listed for \d+ bytes/)
  })

  it('a hex value of a million digits: ERR_SNAPSHOT_CORRUPT, not a million-digit bigint', () => {
    const file = edited('long-hex.json', (f) => {
      const first = f.snapshot.maps[0]
      if (first) first.start = `0x${'f'.repeat(1e6)}`
    })
    expect(caughtProcsnapError(() => loadSnapshot(file)).message).toMatch(/longer than any value a snapshot holds/)
  })
})

describe('nesting', () => {
  it('4 million nested arrays (an 8 MB file): ERR_SNAPSHOT_CORRUPT in milliseconds, not seconds of JSON.parse', () => {
    const path = join(dir, 'deep.json')
    const depth = 4_000_000
    writeFileSync(
      path,
      `{"format":"procsnap/1","extra":${'['.repeat(depth)}${']'.repeat(depth)},` + bytes.toString().slice(1),
    )
    const { value: error, ms } = measured(() => caughtProcsnapError(() => loadSnapshot(path)))
    expect(error.code).toBe('ERR_SNAPSHOT_CORRUPT')
    expect(error.message).toMatch(/nested deeper than 64 levels/)
    expect(ms).toBeLessThan(300)
  })

  it('brackets inside strings, escaped quotes included, are not nesting', () => {
    const path = edited('brackets.json', (f) => (f.snapshot.name = `${'['.repeat(1000)}\\"${'{'.repeat(1000)}`))
    expect(loadSnapshot(path).name).toBe(`${'['.repeat(1000)}\\"${'{'.repeat(1000)}`)
  })
})

describe('registers', () => {
  it("registers named 'constructor', '__proto__', 'toString' stay data, and diffs both ways compare only registers both sides hold", () => {
    const file = edited('regs.json', (f) => {
      const threads = f.snapshot.threads as Array<{ regs: Record<string, string> }>
      if (threads[0])
        threads[0].regs = JSON.parse(
          '{"constructor": "0x1", "__proto__": "0x2", "toString": "0x3", "rip": "0x4"}',
        ) as Record<string, string>
    })
    const snap = loadSnapshot(file)
    expect(Object.keys(snap.data.threads[0]?.regs ?? {})).toEqual(['constructor', '__proto__', 'toString', 'rip'])
    expect(snap.diff(original).regs.map((c) => c.name)).toEqual(['rip'])
    expect(original.diff(snap).regs.map((c) => c.name)).toEqual(['rip'])
    exercise(snap, original)
  })
})

describe('counts', () => {
  it('a diff of 140k registers, maps and frames prints: no call spreads 140k arguments (the stack holds about 120k)', () => {
    const n = 140_000
    const map = original.maps[0]
    const frames = Array.from({ length: n }, (_, i) => ({ pc: 1n, offset: 0n, location: `f${i}`, via: 'fp' as const }))
    const d: SnapshotDiffData = {
      level: 'base',
      regs: Array.from({ length: n }, (_, i) => ({ thread: 1, name: `r${i}`, before: 1n, after: 2n })),
      maps: Array.from({ length: n }, (_, i) => ({
        kind: 'added' as const,
        identity: `anon#${i}`,
        after: map,
        fields: [],
      })),
      memory: [],
      threads: [],
      backtrace: [{ thread: 1, before: frames, after: [] }],
      isEmpty: false,
    }
    const { value: text, ms } = measured(() => renderDiff(d, 'x86_64', { color: false }))
    expect(text.split('\n').length).toBeGreaterThan(3 * n)
    expect(ms).toBeLessThan(3000)
  })
})

describe('special files given to loadSnapshot', () => {
  it('/dev/zero, a FIFO, a directory: ERR_SNAPSHOT_CORRUPT at once, saying it is not a regular file', () => {
    const fifo = join(dir, 'snap-fifo')
    execFileSync('mkfifo', [fifo])
    const folder = join(dir, 'snap-dir')
    mkdirSync(folder)
    for (const path of ['/dev/zero', fifo, folder]) {
      const { value: error, ms } = measured(() => caughtProcsnapError(() => loadSnapshot(path)))
      expect(error.code, path).toBe('ERR_SNAPSHOT_CORRUPT')
      expect(error.message, path).toMatch(/not a regular file/)
      expect(ms, path).toBeLessThan(1000)
    }
  })
})
