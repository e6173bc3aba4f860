// The ELF header alone: fabricated headers for other classes, byte orders and machines, and readElfHeader on real files.
import { describe, expect, it } from 'vitest'
import { parseElf, parseElfHeader, readElfHeader } from '../../src/elf/index.js'
import { FILE_TYPES, LIBC, readelfHeader } from './oracle.js'

/** A minimal ELF header with no program or section headers. */
function fabricateHeader(opts: {
  is64: boolean
  little: boolean
  machine: number
  type: number
  entry: bigint
}): Uint8Array {
  const bytes = new Uint8Array(opts.is64 ? 64 : 52)
  const view = new DataView(bytes.buffer)
  bytes.set([0x7f, 0x45, 0x4c, 0x46, opts.is64 ? 2 : 1, opts.little ? 1 : 2, 1])
  view.setUint16(0x10, opts.type, opts.little)
  view.setUint16(0x12, opts.machine, opts.little)
  view.setUint32(0x14, 1, opts.little)
  if (opts.is64) {
    view.setBigUint64(0x18, opts.entry, opts.little)
    view.setUint16(0x34, 64, opts.little)
  } else {
    view.setUint32(0x18, Number(opts.entry), opts.little)
    view.setUint16(0x28, 52, opts.little)
  }
  return bytes
}

describe('fabricated headers', () => {
  it('an aarch64 executable', () => {
    const bytes = fabricateHeader({ is64: true, little: true, machine: 183, type: 2, entry: 0x4005d0n })
    expect(parseElfHeader(bytes, 'aarch64')).toEqual({
      class: 64,
      endian: 'little',
      machine: 183,
      arch: 'aarch64',
      type: 'exec',
      entry: 0x4005d0n,
    })
    const elf = parseElf(bytes, 'aarch64')
    expect(elf).toMatchObject({
      arch: 'aarch64',
      sections: [],
      segments: [],
      symbols: [],
      isStatic: true,
      minLoadVaddr: 0n,
    })
    expect(elf.findSymbol('main')).toBeUndefined()
    expect(elf.symbolize(0x4005d0n)).toBeUndefined()
  })

  it('a big-endian 64-bit entry above 2^53 stays exact', () => {
    const entry = 0xffff_ffff_8000_1234n
    const bytes = fabricateHeader({ is64: true, little: false, machine: 243, type: 3, entry })
    expect(parseElfHeader(bytes, 'riscv')).toMatchObject({ endian: 'big', arch: 'riscv64', type: 'dyn', entry })
  })

  it('32-bit headers, both byte orders', () => {
    const le = fabricateHeader({ is64: false, little: true, machine: 3, type: 2, entry: 0x8049000n })
    expect(parseElfHeader(le, 'i386')).toEqual({
      class: 32,
      endian: 'little',
      machine: 3,
      arch: 'i386',
      type: 'exec',
      entry: 0x8049000n,
    })
    const be = fabricateHeader({ is64: false, little: false, machine: 40, type: 4, entry: 0x10074n })
    expect(parseElfHeader(be, 'arm-be')).toEqual({
      class: 32,
      endian: 'big',
      machine: 40,
      arch: 'arm',
      type: 'core',
      entry: 0x10074n,
    })
    expect(parseElf(be, 'arm-be')).toMatchObject({ class: 32, endian: 'big', arch: 'arm' })
  })

  it('unknown machines and types', () => {
    const riscv32 = fabricateHeader({ is64: false, little: true, machine: 243, type: 0xfe00, entry: 0n })
    expect(parseElfHeader(riscv32, 'rv32')).toMatchObject({ arch: 'unknown', type: 'other', machine: 243 })
    const mips = fabricateHeader({ is64: true, little: false, machine: 8, type: 1, entry: 0n })
    expect(parseElfHeader(mips, 'mips')).toMatchObject({ arch: 'unknown', type: 'rel', machine: 8 })
  })
})

describe('readElfHeader', () => {
  it.each(['/bin/true', '/usr/bin/sort', LIBC])('%s matches readelf -h', (path) => {
    const expected = readelfHeader(path)
    expect(readElfHeader(path)).toEqual({
      class: 64,
      endian: 'little',
      machine: 62,
      arch: 'x86_64',
      type: FILE_TYPES[expected.type],
      entry: expected.entry,
    })
  })
})
