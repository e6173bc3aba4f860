// Symbols of libc and ld.so against readelf --dyn-syms and nm -D: names, versions, values, sizes, symbolize.
import { describe, expect, it } from 'vitest'
import { readFileSync } from 'node:fs'
import { parseElf, readElf } from '../../src/elf/index.js'
import { LDSO, LIBC, definedSymbols, readelfSymbols, run } from './oracle.js'

describe('libc symbols', () => {
  const elf = readElf(LIBC)
  const dynsym = definedSymbols(readelfSymbols(LIBC, '.dynsym'))
  const funcs = dynsym.filter((s) => s.type === 'FUNC')

  it('finds every FUNC of .dynsym by its versioned name, with the same value and size', () => {
    expect(funcs.length).toBeGreaterThan(2000)
    const wrong = funcs.filter((s) => {
      const found = elf.findSymbol(s.name)
      return found?.value !== s.value || found.size !== s.size
    })
    expect(wrong.map((s) => s.name)).toEqual([])
  })

  it('resolves a plain name to its default (@@) version', () => {
    const defaults = dynsym.filter((s) => s.name.includes('@@'))
    expect(defaults.length).toBeGreaterThan(1000)
    for (const s of defaults) {
      const plain = s.name.slice(0, s.name.indexOf('@'))
      expect(elf.findSymbol(plain)?.value, plain).toBe(s.value)
    }
  })

  it('keeps versions of old and new definitions apart', () => {
    const old = elf.findSymbol('memcpy@GLIBC_2.2.5')
    const current = elf.findSymbol('memcpy')
    expect(old?.version).toBe('GLIBC_2.2.5')
    expect(current?.version).toBe('GLIBC_2.14')
    expect(current?.type).toBe('ifunc')
    expect(old?.value).not.toBe(current?.value)
    expect(elf.findSymbol('memcpy@@GLIBC_2.14')).toBe(current)
  })

  it('holds exactly the defined names nm -D lists', () => {
    const nm = run('nm', ['-D', '--defined-only', LIBC])
      .split('\n')
      .map((line) => line.split(' ')[2])
      .filter((name): name is string => name !== undefined && name !== '')
      .map((name) => name.replace(/@.*$/, ''))
    const ours = new Set(elf.symbols.map((s) => s.name))
    expect(nm.filter((name) => !ours.has(name))).toEqual([])
    expect(elf.symbols.every((s) => s.source === 'dynsym')).toBe(true)
  })

  it('lists only defined symbols, sorted by value', () => {
    expect(elf.symbols.every((s) => s.sectionIndex !== 0 && s.name !== '')).toBe(true)
    expect(elf.symbols.every((s, i, all) => i === 0 || (all[i - 1]?.value ?? 0n) <= s.value)).toBe(true)
    expect(elf.findSymbol('_dl_argv')).toBeUndefined() // an undefined reference to ld.so
  })

  it('symbolizes value + 1 of every function to that function with offset 1', () => {
    for (const s of funcs.filter((f) => f.size > 1n)) {
      const hit = elf.symbolize(s.value + 1n)
      expect(hit?.offset, s.name).toBe(1n)
      expect(hit?.symbol.value, s.name).toBe(s.value)
      expect(hit?.symbol.type === 'func' || hit?.symbol.type === 'ifunc', s.name).toBe(true)
    }
  })

  it('names an address with the friendliest alias and respects symbol ends', () => {
    const puts = elf.findSymbol('puts')
    expect(puts).toBeDefined()
    if (puts === undefined) return
    expect(elf.findSymbol('_IO_puts')?.value).toBe(puts.value)
    expect(elf.symbolize(puts.value)).toEqual({ symbol: puts, offset: 0n })
    expect(elf.symbolize(puts.value + puts.size - 1n)?.symbol).toBe(puts)
    expect(elf.symbolize(puts.value + puts.size)?.symbol).not.toBe(puts)
    expect(elf.symbolize(0n)).toBeUndefined()
  })

  it('suggests near names quickly', () => {
    expect(elf.nearNames('prinf')).toContain('printf')
    expect(elf.nearNames('MALLOC')[0]).toBe('malloc')
    expect(elf.nearNames('pthread_mutex_lok')[0]).toBe('pthread_mutex_lock')
    expect(elf.nearNames('mutex_lock', 20)).toContain('pthread_mutex_lock')
    expect(elf.nearNames('printf', 3)).toHaveLength(3)
    expect(elf.nearNames('zzzzzzzzzzzzzzzzqqq')).toEqual([])
    const start = performance.now()
    for (let i = 0; i < 20; i++) elf.nearNames(`pthread_cond_wai${i}`)
    expect((performance.now() - start) / 20).toBeLessThan(20)
  })
})

describe('ld.so symbols', () => {
  it('finds every defined .dynsym entry', () => {
    const elf = readElf(LDSO)
    const expected = definedSymbols(readelfSymbols(LDSO, '.dynsym'))
    expect(expected.length).toBeGreaterThan(10)
    for (const s of expected) {
      expect(elf.findSymbol(s.name), s.name).toMatchObject({ value: s.value, size: s.size })
    }
  })
})

describe('symbolize of consecutive addresses', () => {
  // symbolize remembers its last answer and the addresses it holds for; answers must not depend on
  // what was asked before. python3's data has a large object covering thousands of smaller symbols.
  it.each([LIBC, '/usr/bin/python3'])('gives %s the same answers in order as one at a time', (path) => {
    const ordered = parseElf(readFileSync(path), path)
    const fresh = parseElf(readFileSync(path), path)
    const points = new Set<bigint>()
    for (const s of ordered.symbols.slice(0, 20_000)) {
      for (const d of [-1n, 0n, 1n, 8n]) points.add(s.value + d)
      if (s.size > 0n) for (const d of [-1n, 0n, 1n]) points.add(s.value + s.size + d)
    }
    const sorted = [...points].filter((p) => p >= 0n).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    const far = (sorted.at(-1) ?? 0n) + 0x1000000n
    const differ = sorted.filter((p) => {
      const a = ordered.symbolize(p)
      fresh.symbolize(far) // forgets the last answer
      const b = fresh.symbolize(p)
      return a?.symbol !== b?.symbol && a?.symbol.name !== b?.symbol.name
    })
    expect(sorted.length).toBeGreaterThan(10_000)
    expect(differ.map((p) => `0x${p.toString(16)}`)).toEqual([])
  })
})
