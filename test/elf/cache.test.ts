// readElf's cache: one parse per unchanged file, a fresh parse after the file changes or the cache is cleared.
import { copyFileSync, rmSync, utimesSync, writeFileSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { clearElfCache, readElf } from '../../src/elf/index.js'
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
