// Hostile files: special files are refused before a byte is read, sizes are checked before reading,
// and atomic writes go through an exclusive temporary file that a planted link cannot redirect.
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { FileError } from '../../src/errors.js'
import { readRegularFile, readRegularHead } from '../../src/files/read.js'
import { memorySink, writeFileAtomically, writeFileStreaming, type ByteSink } from '../../src/files/write.js'
import { caughtProcsnapError } from '../helpers.js'

const dir = mkdtempSync(join(tmpdir(), 'procsnap-files-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const how = { what: 'test file', maxBytes: 1 << 20 }

describe('readRegularFile', () => {
  it('reads a regular file and says undefined for a missing one', () => {
    writeFileSync(join(dir, 'a'), 'hello')
    expect(readRegularFile(join(dir, 'a'), how)?.toString()).toBe('hello')
    expect(readRegularFile(join(dir, 'missing'), how)).toBeUndefined()
    expect(readRegularFile(join(dir, 'a', 'under-a-file'), how)).toBeUndefined()
  })

  it.each([
    ['/dev/zero', 'a character device'],
    ['/proc', 'a directory'],
  ])('refuses %s (%s) at once', (path, kind) => {
    const t0 = performance.now()
    const error = caughtProcsnapError(() => readRegularFile(path, how))
    expect(error.code).toBe('ERR_NOT_A_FILE')
    expect(error.message).toContain(kind)
    expect(performance.now() - t0).toBeLessThan(1000)
  })

  it('refuses a FIFO without hanging, and a symlink to /dev/zero', () => {
    const fifo = join(dir, 'fifo')
    execFileSync('mkfifo', [fifo])
    expect(caughtProcsnapError(() => readRegularFile(fifo, how)).message).toContain('a FIFO')
    symlinkSync('/dev/zero', join(dir, 'zero-link'))
    expect(caughtProcsnapError(() => readRegularFile(join(dir, 'zero-link'), how)).code).toBe('ERR_NOT_A_FILE')
  })

  it('refuses a link with noFollow, and a file larger than its kind may be', () => {
    writeFileSync(join(dir, 'big'), Buffer.alloc(2 << 20))
    symlinkSync(join(dir, 'big'), join(dir, 'big-link'))
    expect(caughtProcsnapError(() => readRegularFile(join(dir, 'big'), how)).code).toBe('ERR_FILE_TOO_LARGE')
    expect(
      caughtProcsnapError(() => readRegularFile(join(dir, 'big-link'), { ...how, maxBytes: 4 << 20, noFollow: true }))
        .code,
    ).toBe('ERR_NOT_A_FILE')
  })

  it('reads only what fstat declares: /proc files that say 0 bytes give 0 bytes', () => {
    expect(readRegularFile('/proc/self/pagemap', how)?.length).toBe(0)
  })
})

describe('writeFileAtomically', () => {
  it('writes through a temporary file that leaves nothing behind, replacing a planted link instead of following it', () => {
    const sub = join(dir, 'w')
    mkdirSync(sub)
    writeFileSync(join(dir, 'victim'), 'keep')
    symlinkSync(join(dir, 'victim'), join(sub, 'out.snap'))
    writeFileAtomically(join(sub, 'out.snap'), 'new')
    expect(readFileSync(join(dir, 'victim'), 'utf8')).toBe('keep')
    expect(readFileSync(join(sub, 'out.snap'), 'utf8')).toBe('new')
    expect(readdirSync(sub)).toEqual(['out.snap'])
  })
})

describe('writeFileStreaming', () => {
  it('writes small and large pieces in order, and leaves the target untouched and no temporary file when producing fails', () => {
    const sub = join(dir, 's')
    const target = join(sub, 'out.snap')
    const big = Buffer.alloc(3 << 20, 7)
    const pieces = [Buffer.from('head'), big, Buffer.from('mid'), Buffer.alloc(1 << 20, 9), Buffer.from('tail')]
    writeFileStreaming(target, (out) => pieces.forEach((p) => out.write(p)))
    expect(readFileSync(target).equals(Buffer.concat(pieces))).toBe(true)
    expect(() =>
      writeFileStreaming(target, (out) => {
        out.write(big)
        throw new Error('capture failed')
      }),
    ).toThrow('capture failed')
    expect(readFileSync(target).equals(Buffer.concat(pieces))).toBe(true)
    expect(readdirSync(sub)).toEqual(['out.snap'])
  })

  it("says ERR_FILE_UNWRITABLE, with the path and the step, when the system refuses the write; a producer's own error passes unchanged", () => {
    writeFileSync(join(dir, 'plain'), '')
    const target = join(dir, 'plain', 'sub', 'out.snap') // a file where a directory should be: ENOTDIR
    const error = caughtProcsnapError(() => writeFileStreaming(target, (out) => out.write(Buffer.from('x'))))
    expect(error).toBeInstanceOf(FileError)
    expect(error.code).toBe('ERR_FILE_UNWRITABLE')
    expect((error as FileError).path).toBe(target)
    expect(error.message).toMatch(/creating its directory failed \(ENOTDIR\)/)
    expect(caughtProcsnapError(() => writeFileAtomically(target, 'text')).code).toBe('ERR_FILE_UNWRITABLE')
    // a ProcsnapError thrown while producing is the caller's, not the file system's
    const own = new FileError('ERR_FILE_UNREADABLE', 'elsewhere', 'not this write')
    expect(() =>
      writeFileStreaming(join(dir, 'ok.snap'), () => {
        throw own
      }),
    ).toThrow(own)
  })

  it('patches bytes already written, whether on disk, still staged, or across both; the same in memory; never past the end', () => {
    const produce = (out: ByteSink): void => {
      out.write(Buffer.alloc(40, 1)) // staged, then flushed by the large piece
      out.write(Buffer.alloc(2 << 20, 2)) // written straight
      out.write(Buffer.alloc(100, 3)) // staged until the end
      out.patch(36, Buffer.from('CRC!')) // on disk
      out.patch((2 << 20) + 37, Buffer.from('across')) // 3 bytes on disk, 3 staged
      out.patch((2 << 20) + 40 + 96, Buffer.from('END!')) // the stage's last bytes
      expect(() => out.patch((2 << 20) + 40 + 97, Buffer.from('END!'))).toThrow(RangeError)
    }
    const expected = Buffer.concat([Buffer.alloc(40, 1), Buffer.alloc(2 << 20, 2), Buffer.alloc(100, 3)])
    expected.write('CRC!', 36)
    expected.write('across', (2 << 20) + 37)
    expected.write('END!', (2 << 20) + 40 + 96)
    const target = join(dir, 'patched.bin')
    writeFileStreaming(target, produce)
    expect(readFileSync(target).equals(expected)).toBe(true)
    const inMemory = memorySink()
    produce({ write: (b) => inMemory.write(b), patch: (at, b) => inMemory.patch(at, b) })
    expect(inMemory.bytes().equals(expected)).toBe(true)
  })
})

describe('readRegularFile checkHead, readRegularHead', () => {
  it('checkHead sees the first bytes before the size is checked and before the rest is read', () => {
    writeFileSync(join(dir, 'head'), Buffer.concat([Buffer.from('HEAD'), Buffer.alloc(2 << 20)]))
    const seen: string[] = []
    const refuse = (head: Buffer): void => {
      seen.push(head.toString('latin1', 0, 4))
      throw new FileError('ERR_NOT_A_FILE', 'head', 'not ours')
    }
    expect(caughtProcsnapError(() => readRegularFile(join(dir, 'head'), { ...how, checkHead: refuse })).message).toBe(
      'not ours',
    )
    expect(seen).toEqual(['HEAD'])
    const tooLarge = (size: number): string => `${size} is too many`
    expect(caughtProcsnapError(() => readRegularFile(join(dir, 'head'), { ...how, tooLarge })).message).toBe(
      `${4 + (2 << 20)} is too many`,
    )
  })

  it('readRegularHead reads only a prefix, of regular files only', () => {
    expect(readRegularHead(join(dir, 'head'), how, 4)?.toString()).toBe('HEAD')
    expect(readRegularHead(join(dir, 'missing'), how, 4)).toBeUndefined()
    expect(caughtProcsnapError(() => readRegularHead('/dev/zero', how, 4)).code).toBe('ERR_NOT_A_FILE')
  })
})
