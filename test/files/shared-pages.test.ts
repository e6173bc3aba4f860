// Page work shared with a helper thread: the helper's crc32s and reads equal the caller's own, the
// helper surely runs (it is made to go first), its absence or end changes no result, and snapshot
// files of real processes load the same, and are refused the same when damaged, with it or without.
import { randomFillSync } from 'node:crypto'
import { closeSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { crc32 } from 'node:zlib'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { loadSnapshot } from '../../src/index.js'
import {
  SHARED_MIN_BYTES,
  allocateShared,
  crcPages,
  readPagesShared,
  setSharedPages,
  sharedPagesHelped,
} from '../../src/files/shared-pages.js'
import { useCrcKernel } from '../../src/native/crc32-pages.js'
import { saveSnapshotData } from '../../src/snapshot/format-file.js'
import { layoutOf } from '../../src/snapshot/format-v2.js'
import { codeOf, fixture, start } from '../helpers.js'
import { splitV2 } from '../snapshot/v2-file.js'

const PAGE = 4096
const MiB = 1 << 20
const dir = mkdtempSync(join(tmpdir(), 'procsnap-shared-'))
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true })
  await setSharedPages('on')
})
afterEach(async () => {
  await setSharedPages('on')
  useCrcKernel(true)
})

function randomPages(bytes: number, shared: boolean): Uint8Array {
  const out = shared ? allocateShared(bytes) : new Uint8Array(bytes)
  for (let at = 0; at < bytes; at += 1 << 16) randomFillSync(out, at, Math.min(1 << 16, bytes - at))
  return out
}

function crcsOneByOne(bytes: Uint8Array): number[] {
  const out: number[] = []
  for (let at = 0; at < bytes.length; at += PAGE) out.push(crc32(bytes.subarray(at, at + PAGE)))
  return out
}

/** Open descriptors of this process: a job must leave none behind. */
function openFds(): number {
  return readdirSync('/proc/self/fd').length
}

describe('crc32s and reads shared with the helper thread', () => {
  it('large shared buffers are shared out; the helper (going first) gives the same crc32s as one by one', async () => {
    expect(allocateShared(SHARED_MIN_BYTES).buffer).toBeInstanceOf(SharedArrayBuffer)
    expect(allocateShared(SHARED_MIN_BYTES - PAGE).buffer).toBeInstanceOf(ArrayBuffer)
    const bytes = randomPages(24 * MiB + 3 * PAGE, true) // not a whole number of chunks
    const expected = crcsOneByOne(bytes)
    expect([...crcPages(bytes)]).toEqual(expected) // by the CRC kernel, where it runs: alone
    useCrcKernel(false) // zlib's crc32: shared with the helper
    await setSharedPages('helper-first')
    const before = sharedPagesHelped()
    expect([...crcPages(bytes)]).toEqual(expected)
    expect(sharedPagesHelped()).toBeGreaterThan(before)
    await setSharedPages('off')
    expect([...crcPages(bytes)]).toEqual(expected)
    await setSharedPages('on')
    expect([...crcPages(bytes)]).toEqual(expected)
    // small or ordinary buffers: the caller alone, same result
    const plain = randomPages(9 * MiB, false)
    expect([...crcPages(plain)]).toEqual(crcsOneByOne(plain))
    expect(() => crcPages(bytes.subarray(0, 100))).toThrow(RangeError)
  })

  it('reads a file into a shared buffer with its crc32s; a short file is left to the caller; no descriptor leaks', async () => {
    const content = randomPages(20 * MiB, false)
    const path = join(dir, 'pages.bin')
    writeFileSync(path, content)
    const fd = openSync(path, 'r')
    try {
      const fdsBefore = openFds()
      await setSharedPages('helper-first')
      const helped = sharedPagesHelped()
      const into = allocateShared(16 * MiB)
      const crcs = new Uint32Array(new SharedArrayBuffer((into.length / PAGE) * 4))
      expect(readPagesShared(fd, into, 2 * MiB, crcs)).toBe(true)
      expect(Buffer.from(into).equals(content.subarray(2 * MiB, 18 * MiB))).toBe(true)
      expect([...crcs]).toEqual(crcsOneByOne(into))
      expect(sharedPagesHelped()).toBeGreaterThan(helped)
      // past the end of the file: not complete, and the caller reads alone to say why
      expect(readPagesShared(fd, allocateShared(16 * MiB), 8 * MiB, undefined)).toBe(false)
      // not shared, or crc32s that are not: the caller's job
      expect(readPagesShared(fd, new Uint8Array(16 * MiB), 0, undefined)).toBe(false)
      expect(readPagesShared(fd, into, 0, new Uint32Array(into.length / PAGE))).toBe(false)
      await new Promise((resolve) => setTimeout(resolve, 100)) // the helper closes its descriptors when done
      expect(openFds()).toBe(fdsBefore)
    } finally {
      closeSync(fd)
    }
  })

  it('the helper stopped between jobs: the next job starts another, results the same', async () => {
    const bytes = randomPages(12 * MiB, true)
    const expected = crcsOneByOne(bytes)
    useCrcKernel(false)
    await setSharedPages('helper-first')
    expect([...crcPages(bytes)]).toEqual(expected)
    await setSharedPages('off') // terminates it
    await setSharedPages('helper-first')
    const helped = sharedPagesHelped()
    expect([...crcPages(bytes)]).toEqual(expected)
    expect(sharedPagesHelped()).toBeGreaterThan(helped)
  })
})

describe('tracee memory read by two threads', () => {
  it('a full capture of pagefill reads the same bytes with the helper (through /proc/PID/mem) as without', async () => {
    const proc = await start(fixture('pagefill'), { args: ['24', 'random'] })
    try {
      proc.breakAt('ready')
      await proc.cont()
      await setSharedPages('helper-first')
      const helped = sharedPagesHelped()
      const shared = proc.createSnapshot({ level: 'full', incremental: false })
      expect(sharedPagesHelped()).toBeGreaterThan(helped)
      await setSharedPages('off')
      const alone = proc.createSnapshot({ level: 'full', incremental: false })
      const big = (m: { start: bigint; end: bigint }): boolean => m.end - m.start === 24n * BigInt(MiB)
      const a = shared.data.maps.find(big)?.content
      const b = alone.data.maps.find(big)?.content
      expect(a && b && a.length === 24 * MiB && Buffer.from(a).equals(b)).toBe(true)
      expect(shared.diff(alone).isEmpty).toBe(true)
    } finally {
      await proc.kill()
    }
  }, 60_000)

  it('a large read of PROT_NONE memory reads as a debugger reads it, helper or not (its pread may succeed where process_vm_readv fails)', async () => {
    const proc = await start(fixture('noaccess'), { args: ['/etc/hostname'] })
    try {
      proc.breakAt('ready')
      expect((await proc.cont()).kind).toBe('breakpoint')
      const reserved = Buffer.from(proc.readMemory('g_reserved', 8)).readBigUInt64LE()
      const read = (): Uint8Array => proc.readMemoryInto(reserved + 4096n, allocateShared(16 * MiB))
      await setSharedPages('helper-first')
      const shared = read()
      await setSharedPages('off')
      const alone = read()
      expect(Buffer.from(shared).equals(alone)).toBe(true)
      expect(shared.every((b) => b === 0)).toBe(true)
    } finally {
      await proc.kill()
    }
  }, 60_000)
})

describe('snapshot files of a real process, with the helper and without', () => {
  it('pagefill 32 MiB of random pages saves the same bytes and loads equal; a flipped bit deep in a page is refused', async () => {
    const proc = await start(fixture('pagefill'), { args: ['32', 'random'] })
    proc.breakAt('ready')
    await proc.cont()
    const snap = proc.createSnapshot({ level: 'full' })
    await proc.kill()
    const big = snap.data.maps.find((m) => m.end - m.start === 32n * BigInt(MiB))
    expect(big?.content?.buffer).toBeInstanceOf(SharedArrayBuffer)
    const withHelper = join(dir, 'with.procsnap')
    const without = join(dir, 'without.procsnap')
    await setSharedPages('helper-first')
    saveSnapshotData(withHelper, snap.data)
    await setSharedPages('off')
    saveSnapshotData(without, snap.data)
    const file = readFileSync(withHelper)
    expect(file.equals(readFileSync(without))).toBe(true)
    for (const mode of ['helper-first', 'off'] as const) {
      await setSharedPages(mode)
      const back = loadSnapshot(withHelper).data.maps.find((m) => m.start === big?.start)
      expect(back?.content && big?.content && Buffer.from(back.content).equals(big.content), mode).toBe(true)
      const damaged = Buffer.from(file)
      const { pagesAt, metaAt } = layoutOf(splitV2(file).header)
      damaged[pagesAt + Math.floor((metaAt - pagesAt) / 2) + 1234]! ^= 0x10 // in a stored page
      const path = join(dir, `damaged-${mode}.procsnap`)
      writeFileSync(path, damaged)
      expect(
        codeOf(() => loadSnapshot(path)),
        mode,
      ).toBe('ERR_SNAPSHOT_CORRUPT')
      writeFileSync(path, damaged.subarray(0, damaged.length - PAGE))
      expect(
        codeOf(() => loadSnapshot(path)),
        mode,
      ).toBe('ERR_SNAPSHOT_CORRUPT')
    }
  }, 60_000)
})
