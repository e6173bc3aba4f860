// ELF32 and big-endian files made with objcopy/ld (no cross compiler needed): headers, sections, symbols vs readelf.
import { rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { readElf } from '../../src/elf/index.js'
import { definedSymbols, makeTempDir, readelfSections, readelfSegments, readelfSymbols, run } from './oracle.js'

let dir = ''
const objects: Record<string, string> = {}
const FORMATS = [
  ['elf32-little', 32, 'little'],
  ['elf32-big', 32, 'big'],
  ['elf64-big', 64, 'big'],
  ['elf32-i386', 32, 'little'],
] as const

beforeAll(() => {
  dir = makeTempDir()
  const payload = join(dir, 'payload.bin')
  writeFileSync(payload, Buffer.alloc(300, 0x90))
  for (const [format] of FORMATS) {
    objects[format] = join(dir, `${format}.o`)
    run('objcopy', [
      '-I',
      'binary',
      '-O',
      format,
      '--add-symbol',
      'entry_fn=.data:0x10,global,function',
      '--add-symbol',
      'table=.data:0x40,global,object',
      '--add-symbol',
      'local_label=.data:0x80,local',
      payload,
      objects[format] ?? '',
    ])
  }
  objects.exec32 = join(dir, 'exec32')
  run('ld', ['-m', 'elf_i386', '-e', 'entry_fn', objects['elf32-i386'] ?? '', '-o', objects.exec32])
})

afterAll(() => {
  if (dir !== '') rmSync(dir, { recursive: true, force: true })
})

describe.each(FORMATS)('%s relocatable', (format, elfClass, endian) => {
  it('has the right class, byte order, sections and symbols', () => {
    const path = objects[format] ?? ''
    const elf = readElf(path)
    expect(elf).toMatchObject({ class: elfClass, endian, type: 'rel', segments: [], interpreter: undefined })
    for (const s of readelfSections(path)) {
      expect(elf.sections[s.index]).toMatchObject({ name: s.name, offset: s.offset, size: s.size })
    }
    const expected = definedSymbols(readelfSymbols(path, '.symtab'))
    expect(expected.length).toBeGreaterThanOrEqual(5)
    for (const s of expected) {
      expect(
        elf.symbols.find((x) => x.name === s.name),
        s.name,
      ).toMatchObject({ value: s.value, size: s.size })
    }
    expect(elf.findSymbol('table')?.value).toBe(0x40n)
    expect(elf.findSymbol('local_label')).toMatchObject({ bind: 'local', value: 0x80n })
    expect(elf.findSymbol('entry_fn')?.bind).toBe('global')
  })
})

describe('ELF32 executable linked with ld -m elf_i386', () => {
  it('matches readelf: i386, entry, segments, symbols, address mapping', () => {
    const path = objects.exec32 ?? ''
    const elf = readElf(path)
    const entryFn = elf.findSymbol('entry_fn')
    expect(elf).toMatchObject({ class: 32, arch: 'i386', machine: 3, type: 'exec', isStatic: true, isPie: false })
    expect(elf.entry).toBe(entryFn?.value)
    const segments = readelfSegments(path)
    expect(elf.segments.map((s) => [s.offset, s.vaddr, s.filesz, s.memsz, s.align])).toEqual(
      segments.map((s) => [s.offset, s.vaddr, s.filesz, s.memsz, s.align]),
    )
    const load = segments.find((s) => s.type === 'LOAD')
    expect(elf.minLoadVaddr).toBe(load?.vaddr)
    expect(elf.symbolize(elf.entry)).toEqual({ symbol: entryFn, offset: 0n })
    expect(elf.symbolize(elf.entry + 3n)).toBeUndefined() // size-0 symbols match only exactly
    expect(elf.fileOffsetToVaddr(elf.vaddrToFileOffset(elf.entry) ?? -1n)).toBe(elf.entry)
  })
})
