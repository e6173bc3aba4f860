// Compares parseElf/readElf on the system's own binaries with what readelf reports.
import { describe, expect, it } from 'vitest'
import { readElf } from '../../src/elf/index.js'
import {
  FILE_TYPES,
  LDSO,
  LIBC,
  SECTION_TYPES,
  SEGMENT_TYPES,
  flagLetters,
  readelfBuildId,
  readelfDynamic,
  readelfHeader,
  readelfInterpreter,
  readelfSections,
  readelfSegments,
} from './oracle.js'

const FILES = ['/bin/true', '/usr/bin/sort', LIBC, LDSO]

describe.each(FILES)('%s matches readelf', (path) => {
  const elf = readElf(path)

  it('has the same header', () => {
    const h = readelfHeader(path)
    expect(elf.class).toBe(64)
    expect(elf.endian).toBe('little')
    expect(elf.arch).toBe('x86_64')
    expect(elf.machine).toBe(62)
    expect(elf.type).toBe(FILE_TYPES[h.type])
    expect(elf.entry).toBe(h.entry)
    expect(elf.segments).toHaveLength(h.segmentCount)
    expect(elf.sections).toHaveLength(h.sectionCount)
  })

  it('has the same segments', () => {
    const expected = readelfSegments(path)
    expect(expected.length).toBeGreaterThan(0)
    expect(elf.segments.map((s) => ({ ...s, flags: flagLetters(s.flags) }))).toEqual(
      expected.map((s) => ({ ...s, type: SEGMENT_TYPES[s.type] ?? Number(s.type) })),
    )
  })

  it('has the same sections', () => {
    const expected = readelfSections(path)
    expect(expected).toHaveLength(elf.sections.length - 1)
    for (const s of expected) {
      const section = elf.sections[s.index]
      expect(section, s.name).toMatchObject({ name: s.name, addr: s.addr, offset: s.offset, size: s.size })
      const type = SECTION_TYPES[s.type]
      if (type !== undefined) expect(section?.type, s.name).toBe(type)
    }
  })

  it('has the same interpreter, dynamic entries and build-id', () => {
    const dynamic = readelfDynamic(path)
    expect(elf.interpreter).toBe(readelfInterpreter(path))
    expect(elf.needed).toEqual(dynamic.needed)
    expect(elf.soname).toBe(dynamic.soname)
    expect(elf.buildId).toBe(readelfBuildId(path))
    expect(elf.buildId).toMatch(/^[0-9a-f]{40}$/)
    expect(elf.isPie).toBe(elf.type === 'dyn' && (elf.interpreter !== undefined || /\bPIE\b/.test(dynamic.flags1)))
  })

  it('maps vaddr <-> file offset through PT_LOAD', () => {
    for (const s of elf.segments.filter((x) => x.type === 1 && x.filesz > 0n)) {
      expect(elf.vaddrToFileOffset(s.vaddr)).toBe(s.offset)
      expect(elf.vaddrToFileOffset(s.vaddr + s.filesz - 1n)).toBe(s.offset + s.filesz - 1n)
      expect(elf.fileOffsetToVaddr(s.offset + 1n)).toBe(s.vaddr + 1n)
    }
    expect(elf.vaddrToFileOffset(0xffff_ffff_ffff_0000n)).toBeUndefined()
    expect(elf.fileOffsetToVaddr(1n << 40n)).toBeUndefined()
  })
})

describe('kinds of system binaries', () => {
  it('/bin/true is a dynamically linked PIE', () => {
    const elf = readElf('/bin/true')
    expect(elf).toMatchObject({ type: 'dyn', isPie: true, isStatic: false, minLoadVaddr: 0n, soname: undefined })
    expect(elf.interpreter).toBe(LDSO)
    expect(elf.needed).toContain('libc.so.6')
  })

  it('ld.so has no interpreter and no DT_NEEDED, so it counts as static', () => {
    const elf = readElf(LDSO)
    expect(elf).toMatchObject({ type: 'dyn', interpreter: undefined, isPie: false, isStatic: true })
    expect(elf.soname).toBe('ld-linux-x86-64.so.2')
    expect(elf.needed).toEqual([])
  })

  it('libc is a shared object with a soname and the link-time base 0', () => {
    const elf = readElf(LIBC)
    expect(elf).toMatchObject({ type: 'dyn', soname: 'libc.so.6', isStatic: false, minLoadVaddr: 0n })
  })

  it('returns frozen data', () => {
    const elf = readElf('/bin/true')
    expect(Object.isFrozen(elf)).toBe(true)
    expect(Object.isFrozen(elf.segments)).toBe(true)
    expect(Object.isFrozen(elf.symbols[0])).toBe(true)
  })
})
