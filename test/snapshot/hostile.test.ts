// Hostile snapshot files (issue 11): whatever a file declares, loading and using it ends in a result
// or a ProcsnapError with a code, within a second, in bounded memory. Maps that name special or huge
// files, zlib bombs, gigabytes declared by a few megabytes, special files given to loadSnapshot.
import { execFileSync } from 'node:child_process'
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadSnapshot, type Snapshot } from '../../src/index.js'
import { encodeSnapshot } from '../../src/snapshot/format.js'
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
