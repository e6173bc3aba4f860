// readElf's cache: one parse per unchanged file, a fresh parse after the file changes or the cache is cleared.
import { execFileSync } from 'node:child_process'
import {
  closeSync,
  copyFileSync,
  openSync,
  rmSync,
  truncateSync,
  utimesSync,
  writeFileSync,
  writeSync,
  readFileSync,
  readdirSync,
} from 'node:fs'
import { dirname, join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  DEFAULT_ELF_CACHE_BYTES,
  MAX_ELF_BYTES,
  MAX_NAMED_ELF_BYTES,
  elfCacheStats,
  estimateElfBytes,
  readElfMatching,
  setElfCacheBytes,
} from '../../src/elf/cache.js'
import { clearElfCache, readElf } from '../../src/elf/index.js'
import { caughtProcsnapError, fixture } from '../helpers.js'
import { LIBC, makeTempDir } from './oracle.js'

let dir = ''

beforeAll(() => {
  dir = makeTempDir()
})

afterAll(() => {
  if (dir !== '') rmSync(dir, { recursive: true, force: true })
})

describe('readElf cache', () => {
  it('returns the same object for an unchanged file', () => {
    expect(readElf('/bin/true')).toBe(readElf('/bin/true'))
  })

  it('parses again after the file is rewritten', () => {
    const path = join(dir, 'prog')
    copyFileSync('/bin/true', path)
    utimesSync(path, 1_000_000, 1_000_000)
    const first = readElf(path)
    expect(readElf(path)).toBe(first)

    writeFileSync(path, readFileSync('/usr/bin/sort'))
    utimesSync(path, 2_000_000, 2_000_000)
    const second = readElf(path)
    expect(second).not.toBe(first)
    expect(second.buildId).not.toBe(first.buildId)

    utimesSync(path, 3_000_000, 3_000_000) // same bytes, new mtime: parsed again
    expect(readElf(path)).not.toBe(second)
  })

  it('clearElfCache forgets parsed files', () => {
    const first = readElf('/bin/true')
    clearElfCache()
    const second = readElf('/bin/true')
    expect(second).not.toBe(first)
    expect(second.buildId).toBe(first.buildId)
  })

  it('parses libc fast enough to matter', () => {
    clearElfCache()
    const start = performance.now()
    const libc = readElf(LIBC)
    const parseMs = performance.now() - start
    const funcs = libc.symbols.filter((s) => s.type === 'func' && s.size > 1n)
    const t0 = performance.now()
    for (let i = 0; i < 10_000; i++) libc.symbolize((funcs[i % funcs.length]?.value ?? 0n) + 1n)
    const symbolizeMs = performance.now() - t0
    expect(parseMs).toBeLessThan(500)
    expect(symbolizeMs).toBeLessThan(500)
  })
})

/** The 16 libraries of the manylibs fixture (fixtures/c/manylibs.sh), and its program. */
function manyLibsFiles(): string[] {
  const dir = dirname(fixture('manylibs-16/main'))
  const libs = readdirSync(dir)
    .filter((n) => n.endsWith('.so'))
    .sort()
  expect(libs).toHaveLength(16)
  return [...libs.map((n) => join(dir, n)), join(dir, 'main')]
}

describe('readElf cache bound (estimated bytes, not a count of files)', () => {
  afterAll(() => setElfCacheBytes(DEFAULT_ELF_CACHE_BYTES))

  it('parses each file once: reading the same files again parses none, however many there are', () => {
    clearElfCache()
    const files = [...manyLibsFiles(), LIBC, '/bin/true', '/usr/bin/sort']
    const before = elfCacheStats()
    const first = files.map((f) => readElf(f))
    const afterFirst = elfCacheStats()
    expect(afterFirst.parses - before.parses).toBe(files.length)
    const second = files.map((f) => readElf(f))
    const afterSecond = elfCacheStats()
    expect(afterSecond.parses).toBe(afterFirst.parses)
    expect(afterSecond.hits - afterFirst.hits).toBe(files.length)
    second.forEach((elf, i) => expect(elf).toBe(first[i]))
    expect(afterSecond).toMatchObject({ entries: files.length, evictions: before.evictions })
    expect(afterSecond.cost).toBe(first.reduce((sum, elf) => sum + estimateElfBytes(elf), 0))
  })

  it('with more files than the bound holds, drops the least recently used and stays within it', () => {
    clearElfCache()
    const files = manyLibsFiles()
    const sizes = files.map((f) => estimateElfBytes(readElf(f)))
    const bound = sizes.slice(-4).reduce((a, b) => a + b, 0) // room for the last four files read
    clearElfCache()
    setElfCacheBytes(bound)
    const before = elfCacheStats()
    for (const f of files) {
      readElf(f)
      expect(elfCacheStats().cost).toBeLessThanOrEqual(bound)
    }
    const after = elfCacheStats()
    expect(after.entries).toBe(4)
    expect(after.evictions - before.evictions).toBe(files.length - 4)
    // The newest four are still there; the oldest is parsed again.
    const parses = after.parses
    for (const f of files.slice(-4)) readElf(f)
    expect(elfCacheStats().parses).toBe(parses)
    readElf(files[0] ?? '')
    expect(elfCacheStats().parses).toBe(parses + 1)
    expect(elfCacheStats().cost).toBeLessThanOrEqual(bound)
  })

  it('keeps one file larger than the whole bound, alone', () => {
    clearElfCache()
    setElfCacheBytes(1)
    const libc = readElf(LIBC)
    expect(elfCacheStats()).toMatchObject({ entries: 1, cost: estimateElfBytes(libc) })
    expect(readElf(LIBC)).toBe(libc)
    readElf('/bin/true')
    expect(elfCacheStats().entries).toBe(1)
    expect(readElf(LIBC)).not.toBe(libc) // dropped for the newer one, parsed again
  })

  it('lowering the bound drops entries at once', () => {
    setElfCacheBytes(DEFAULT_ELF_CACHE_BYTES)
    clearElfCache()
    for (const f of manyLibsFiles()) readElf(f)
    expect(elfCacheStats().entries).toBe(17)
    setElfCacheBytes(40_000)
    expect(elfCacheStats().cost).toBeLessThanOrEqual(40_000)
    expect(elfCacheStats().entries).toBeLessThan(17)
  })
})

describe('readElf on files that are no binary (paths from a snapshot file may name anything)', () => {
  it('reads the header first: /proc/self/pagemap and a 1.5 GB non-ELF file cost 64 bytes, /dev/zero and a FIFO nothing', () => {
    const big = join(dir, 'big.bin')
    const fd = openSync(big, 'w')
    writeSync(fd, Buffer.from([1]), 0, 1, 1.5e9) // sparse
    closeSync(fd)
    const fifo = join(dir, 'fifo')
    execFileSync('mkfifo', [fifo])
    for (const path of ['/proc/self/pagemap', big, '/dev/zero', fifo]) {
      const t0 = performance.now()
      expect(caughtProcsnapError(() => readElf(path)).code, path).toBe('ERR_NOT_ELF')
      expect(performance.now() - t0, path).toBeLessThan(1000)
    }
  })

  it("refuses an ELF file over MAX_ELF_BYTES (2 GiB), or over the limit given (a snapshot's 512 MiB), before reading it", () => {
    const big = join(dir, 'big.so')
    const fd = openSync(big, 'w')
    writeSync(fd, readFileSync('/bin/true').subarray(0, 64), 0, 64, 0)
    writeSync(fd, Buffer.from([1]), 0, 1, MAX_ELF_BYTES + 1)
    closeSync(fd)
    const error = caughtProcsnapError(() => readElf(big))
    expect(error.code).toBe('ERR_FILE_TOO_LARGE')
    expect(error.message).toMatch(/more than the 2147483647 procsnap reads here/)
    truncateSync(big, MAX_NAMED_ELF_BYTES + 1)
    expect(caughtProcsnapError(() => readElfMatching(big, undefined, MAX_NAMED_ELF_BYTES)).code).toBe(
      'ERR_FILE_TOO_LARGE',
    )
  })

  it('readElfMatching: undefined for another build-id, without parsing the symbols', () => {
    const path = join(dir, 'true-copy')
    copyFileSync('/bin/true', path)
    const elf = readElf('/bin/true')
    clearElfCache()
    expect(readElfMatching(path, 'ab'.repeat(20))).toBeUndefined()
    expect(readElfMatching(path, elf.buildId)?.buildId).toBe(elf.buildId)
    expect(readElfMatching(path, 'ab'.repeat(20))).toBeUndefined() // from the cache too
  })
})
