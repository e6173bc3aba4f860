// Missing, non-ELF, truncated and corrupted files fail with BinaryError codes, never with a RangeError.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { BinaryError } from '../../src/errors.js'
import { parseElf, readElf, readElfHeader } from '../../src/elf/index.js'
import { makeTempDir } from './oracle.js'

let dir = ''
const trueBytes = readFileSync('/bin/true')

beforeAll(() => {
  dir = makeTempDir()
})

afterAll(() => {
  if (dir !== '') rmSync(dir, { recursive: true, force: true })
})

function caught(fn: () => unknown): unknown {
  try {
    fn()
  } catch (error) {
    return error
  }
  return undefined
}

function expectBinaryError(fn: () => unknown, code: string, message?: RegExp): BinaryError {
  const error = caught(fn)
  expect(error).toBeInstanceOf(BinaryError)
  const e = error as BinaryError
  expect(e.code).toBe(code)
  if (message !== undefined) expect(e.message).toMatch(message)
  return e
}

describe('file errors', () => {
  it('a missing path is ERR_FILE_NOT_FOUND', () => {
    const path = join(dir, 'no-such-file')
    const e = expectBinaryError(() => readElf(path), 'ERR_FILE_NOT_FOUND', /does not exist/)
    expect(e.path).toBe(path)
    expectBinaryError(() => readElfHeader(path), 'ERR_FILE_NOT_FOUND')
    expectBinaryError(() => readElf('/bin/true/x'), 'ERR_FILE_NOT_FOUND')
  })

  it('a text file is ERR_NOT_ELF', () => {
    const path = join(dir, 'script.sh')
    writeFileSync(path, '#!/bin/sh\necho hello\n')
    expectBinaryError(() => readElf(path), 'ERR_NOT_ELF', /not an ELF file/)
    expectBinaryError(() => readElfHeader(path), 'ERR_NOT_ELF')
    expectBinaryError(() => parseElf(new Uint8Array(0), 'empty'), 'ERR_NOT_ELF')
  })

  it('a directory is ERR_NOT_ELF', () => {
    const path = join(dir, 'a-directory')
    mkdirSync(path)
    expectBinaryError(() => readElf(path), 'ERR_NOT_ELF')
    expectBinaryError(() => readElfHeader(path), 'ERR_NOT_ELF')
  })
})

describe('truncated files', () => {
  it('the first 100 bytes of /bin/true: the program headers are cut', () => {
    const path = join(dir, 'true-100')
    writeFileSync(path, trueBytes.subarray(0, 100))
    expectBinaryError(
      () => readElf(path),
      'ERR_ELF_CORRUPT',
      /program header table .* past the end of the file \(100 bytes\)/,
    )
    expect(readElfHeader(path)).toMatchObject({ class: 64, arch: 'x86_64', type: 'dyn' })
  })

  it('the first 2000 bytes of /bin/true: the section headers are missing', () => {
    const path = join(dir, 'true-2000')
    writeFileSync(path, trueBytes.subarray(0, 2000))
    expectBinaryError(() => readElf(path), 'ERR_ELF_CORRUPT', /past the end of the file \(2000 bytes\)/)
  })

  it('a header cut short is ERR_ELF_CORRUPT for both readers', () => {
    const path = join(dir, 'true-40')
    writeFileSync(path, trueBytes.subarray(0, 40))
    expectBinaryError(() => readElf(path), 'ERR_ELF_CORRUPT', /header needs 64 bytes/)
    expectBinaryError(() => readElfHeader(path), 'ERR_ELF_CORRUPT')
    expectBinaryError(() => parseElf(trueBytes.subarray(0, 10), 'ten'), 'ERR_ELF_CORRUPT', /identification/)
  })

  it('every prefix of /bin/true fails cleanly', () => {
    for (let length = 0; length < trueBytes.length; length += 61) {
      const error = caught(() => parseElf(trueBytes.subarray(0, length), `prefix-${length}`))
      expect(error, `prefix of ${length} bytes`).toBeInstanceOf(BinaryError)
      expect((error as BinaryError).code).toBe(length < 4 ? 'ERR_NOT_ELF' : 'ERR_ELF_CORRUPT')
    }
  })
})

describe('corrupted files', () => {
  it('an unknown class or byte order is ERR_ELF_CORRUPT', () => {
    const bytes = Uint8Array.from(trueBytes)
    bytes[4] = 3
    expectBinaryError(() => parseElf(bytes, 'bad-class'), 'ERR_ELF_CORRUPT', /ELF class 3/)
    bytes[4] = 2
    bytes[5] = 0
    expectBinaryError(() => parseElf(bytes, 'bad-data'), 'ERR_ELF_CORRUPT', /data encoding 0/)
  })

  it('a section name string table index out of range is ERR_ELF_CORRUPT', () => {
    const bytes = Uint8Array.from(trueBytes)
    new DataView(bytes.buffer).setUint16(0x3e, 999, true)
    expectBinaryError(() => parseElf(bytes, 'bad-shstrndx'), 'ERR_ELF_CORRUPT', /e_shstrndx 999/)
  })

  it('random byte damage in the headers and tables parses or fails with a BinaryError', () => {
    let seed = 12345
    const random = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff
      return seed % n
    }
    const elf = parseElf(trueBytes, '/bin/true')
    const dynsym = elf.sections.find((s) => s.name === '.dynsym')
    const regions = [
      [0, 64 + 13 * 56],
      [Number(dynsym?.offset ?? 0n), Number((dynsym?.offset ?? 0n) + (dynsym?.size ?? 0n))],
      [trueBytes.length - 64 * elf.sections.length, trueBytes.length],
    ] as const
    for (let round = 0; round < 1500; round++) {
      const bytes = Uint8Array.from(trueBytes)
      for (let k = 0; k < 4; k++) {
        const [start, end] = regions[random(regions.length)] ?? [0, 64]
        bytes[start + random(end - start)] = random(256)
      }
      const error = caught(() => {
        const damaged = parseElf(bytes, `fuzz-${round}`)
        damaged.findSymbol('main')
        damaged.symbolize(elf.entry)
        damaged.nearNames('mian')
      })
      if (error !== undefined) expect(error, `round ${round}`).toBeInstanceOf(BinaryError)
    }
  })
})
