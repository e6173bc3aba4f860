// Binaries compiled here with gcc (PIE, non-PIE, static, static-pie, stripped) against readelf.
import { copyFileSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { readElf, type ElfFile } from '../../src/elf/index.js'
import {
  LDSO,
  compileC,
  definedSymbols,
  makeTempDir,
  readelfBuildId,
  readelfSegments,
  readelfSymbols,
  run,
} from './oracle.js'

const SOURCE = `#include <stdio.h>
int counter = 7;
int zeroed[64];
__thread int tls_var = 1;
static int helper(int x) { return x * 2 + zeroed[x & 63]; }
int bump(int x) { counter += x; return helper(counter) + tls_var; }
int main(void) { puts("hi"); return bump(1) == 0; }
`

let dir = ''
const bin: Record<'pie' | 'nopie' | 'static' | 'staticPie' | 'stripped', string> = {
  pie: '',
  nopie: '',
  static: '',
  staticPie: '',
  stripped: '',
}

beforeAll(() => {
  dir = makeTempDir()
  const exported = '-Wl,--export-dynamic-symbol=bump'
  bin.pie = compileC(dir, 'pie', SOURCE, ['-fPIE', '-pie', exported])
  bin.nopie = compileC(dir, 'nopie', SOURCE, ['-fno-PIE', '-no-pie'])
  bin.static = compileC(dir, 'static', SOURCE, ['-static'])
  bin.staticPie = compileC(dir, 'static-pie', SOURCE, ['-static-pie'])
  bin.stripped = join(dir, 'stripped')
  copyFileSync(bin.pie, bin.stripped)
  run('strip', [bin.stripped])
})

afterAll(() => {
  if (dir !== '') rmSync(dir, { recursive: true, force: true })
})

/** Every defined symbol readelf lists (versions stripped) is in `elf.symbols` with the same value and size. */
function expectReadelfSymbols(elf: ElfFile, path: string): void {
  const ours = new Map(elf.symbols.map((s) => [`${s.name}@${s.value}`, s]))
  const expected = [...readelfSymbols(path, '.symtab'), ...readelfSymbols(path, '.dynsym')]
  const missing = definedSymbols(expected).filter((s) => {
    const name = s.name.replace(/@.*$/, '')
    return ours.get(`${name}@${s.value}`)?.size !== s.size
  })
  expect(missing).toEqual([])
}

describe('compiled PIE', () => {
  it('is a dynamically linked PIE with a full symbol table', () => {
    const elf = readElf(bin.pie)
    expect(elf).toMatchObject({ type: 'dyn', isPie: true, isStatic: false, interpreter: LDSO, minLoadVaddr: 0n })
    expect(elf.needed).toEqual(['libc.so.6'])
    expect(elf.buildId).toBe(readelfBuildId(bin.pie))
    expectReadelfSymbols(elf, bin.pie)
  })

  it('finds functions, objects, locals and TLS, but not undefined imports', () => {
    const elf = readElf(bin.pie)
    expect(elf.findSymbol('main')).toMatchObject({ type: 'func', bind: 'global', source: 'symtab' })
    expect(elf.findSymbol('helper')).toMatchObject({ type: 'func', bind: 'local' })
    expect(elf.findSymbol('counter')).toMatchObject({ type: 'object', size: 4n })
    expect(elf.findSymbol('tls_var')).toMatchObject({ type: 'tls', size: 4n })
    expect(elf.findSymbol('bump')?.source).toBe('symtab') // also in .dynsym: deduplicated, symtab preferred
    expect(elf.symbols.filter((s) => s.name === 'bump')).toHaveLength(1)
    expect(elf.findSymbol('puts')).toBeUndefined()
    expect(elf.findSymbol('puts@GLIBC_2.2.5')).toBeUndefined()
    expect(elf.symbols.some((s) => s.type === 'section' || s.type === 'file')).toBe(false)
  })

  it('symbolizes addresses inside functions', () => {
    const elf = readElf(bin.pie)
    const main = elf.findSymbol('main')
    const helper = elf.findSymbol('helper')
    if (main === undefined || helper === undefined) throw new Error('main/helper missing')
    expect(elf.symbolize(main.value + 1n)).toEqual({ symbol: main, offset: 1n })
    expect(elf.symbolize(helper.value)).toEqual({ symbol: helper, offset: 0n })
    expect(elf.symbolize(main.value + main.size - 1n)?.symbol).toBe(main)
    expect(elf.symbolize(elf.entry)?.symbol.name).toBe('_start')
  })

  it('suggests near names', () => {
    const elf = readElf(bin.pie)
    expect(elf.nearNames('bumb')[0]).toBe('bump')
    expect(elf.nearNames('Main')[0]).toBe('main')
    expect(elf.nearNames('count')).toContain('counter')
  })
})

describe('compiled non-PIE', () => {
  it('is ET_EXEC with its link-time base', () => {
    const elf = readElf(bin.nopie)
    expect(elf).toMatchObject({ type: 'exec', isPie: false, isStatic: false, interpreter: LDSO })
    const loads = readelfSegments(bin.nopie).filter((s) => s.type === 'LOAD')
    const lowest = loads.map((s) => s.vaddr & ~(s.align - 1n)).reduce((a, b) => (a < b ? a : b))
    expect(elf.minLoadVaddr).toBe(lowest)
    expect(elf.minLoadVaddr).toBe(0x400000n)
    expectReadelfSymbols(elf, bin.nopie)
  })

  it('maps a data symbol to its bytes in the file, and .bss to no file offset', () => {
    const elf = readElf(bin.nopie)
    const counter = elf.findSymbol('counter')
    const zeroed = elf.findSymbol('zeroed')
    if (counter === undefined || zeroed === undefined) throw new Error('counter/zeroed missing')
    const offset = elf.vaddrToFileOffset(counter.value)
    expect(offset).toBeDefined()
    expect(readFileSync(bin.nopie).readInt32LE(Number(offset))).toBe(7)
    expect(elf.fileOffsetToVaddr(offset ?? 0n)).toBe(counter.value)
    expect(elf.vaddrToFileOffset(zeroed.value)).toBeUndefined()
    expect(elf.symbolize(zeroed.value + 100n)).toEqual({ symbol: zeroed, offset: 100n })
  })
})

describe('compiled static binaries', () => {
  it('-static: no interpreter, no dynamic section', () => {
    const elf = readElf(bin.static)
    expect(elf).toMatchObject({ type: 'exec', isPie: false, isStatic: true, interpreter: undefined, soname: undefined })
    expect(elf.needed).toEqual([])
    expect(elf.findSymbol('main')?.type).toBe('func')
    expect(elf.findSymbol('puts')?.type).toBe('func') // linked in
    expectReadelfSymbols(elf, bin.static)
  })

  it('-static-pie: ET_DYN with DF_1_PIE and PT_DYNAMIC but no interpreter', () => {
    const elf = readElf(bin.staticPie)
    expect(elf).toMatchObject({ type: 'dyn', isPie: true, isStatic: true, interpreter: undefined, minLoadVaddr: 0n })
    expect(elf.segments.some((s) => s.type === 2)).toBe(true)
    expectReadelfSymbols(elf, bin.staticPie)
  })
})

describe('stripped binary', () => {
  it('keeps only .dynsym symbols', () => {
    const elf = readElf(bin.stripped)
    const full = readElf(bin.pie)
    expect(elf.sections.some((s) => s.name === '.symtab')).toBe(false)
    expect(elf.findSymbol('main')).toBeUndefined()
    expect(full.findSymbol('main')).toBeDefined()
    expect(elf.findSymbol('puts')).toBeUndefined()
    expect(elf.findSymbol('bump')).toMatchObject({ source: 'dynsym', value: full.findSymbol('bump')?.value })
    expect(elf.symbols.every((s) => s.source === 'dynsym')).toBe(true)
    expect(elf.buildId).toBe(full.buildId)
    expectReadelfSymbols(elf, bin.stripped)
  })
})
