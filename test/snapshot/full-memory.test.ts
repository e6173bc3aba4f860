// A 'full' snapshot holds every byte a live read of the stopped process can read, page for page,
// and says why for the rest; it stays small and bounded with gigabytes of PROT_NONE reservations.
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { loadSnapshot, MemoryError, type MapState, type Process, type Snapshot } from '../../src/index.js'
import { fixture, start } from '../helpers.js'

const dir = mkdtempSync(join(tmpdir(), 'procsnap-full-memory-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const PAGE = 4096
const MiB = 1 << 20
/** Maps up to this size are compared byte for byte; larger ones at their ends and around what the snapshot holds. */
const WHOLE = 16 * MiB

/** A file shorter than a page: noaccess maps 3 pages of it, 2 of them past its end. */
function smallFile(): string {
  const path = join(dir, 'small.txt')
  writeFileSync(path, 'eleven char')
  return path
}

async function atReady(extra = false): Promise<Process> {
  const proc = await start(fixture('noaccess'), { args: extra ? [smallFile(), 'extra'] : [smallFile()] })
  proc.breakAt('ready')
  const stop = await proc.cont()
  expect(stop.kind).toBe('breakpoint')
  expect(proc.threads.length).toBe(4)
  return proc
}

function attempt(read: () => Uint8Array): Uint8Array | MemoryError {
  try {
    return read()
  } catch (error) {
    if (error instanceof MemoryError) return error
    throw error
  }
}

/** Windows [from, to) of a map to compare: all of a small one; the ends of a big one, and the pages the snapshot holds. */
function windowsOf(m: MapState): Array<[number, number]> {
  const size = Number(m.end - m.start)
  if (size <= WHOLE) return [[0, size]]
  const held = [...(m.sparse?.pages.keys() ?? [])].map((p): [number, number] => [p, p + PAGE])
  return [[0, MiB], ...held, [size - MiB, size]]
}

/**
 * The contract: where a live read of the stopped process succeeds, the snapshot's read succeeds with
 * the same bytes; where it fails, the snapshot's read fails too and the map says why. Compared MiB by
 * MiB, and page by page wherever the live read fails.
 */
function expectHoldsWhatLiveReads(snap: Snapshot, proc: Process): { pages: number; unreadable: Set<string> } {
  let pages = 0
  const unreadable = new Set<string>()
  for (const m of snap.maps) {
    const where = `${m.start.toString(16)}-${m.end.toString(16)} ${m.perms} ${m.path}`
    if (m.perms[0] !== 'r' && m.perms[3] === 's') {
      // the one deliberate gap: a read through ptrace would allocate the untouched pages of shared memory
      expect(m.unreadable, where).toMatch(/^not read: a shared map the process cannot read/)
      continue
    }
    for (const [from, to] of windowsOf(m)) {
      for (let at = from; at < to; at += MiB) {
        const address = m.start + BigInt(at)
        const length = Math.min(MiB, to - at)
        const live = attempt(() => proc.readMemory(address, length))
        if (live instanceof Uint8Array) {
          const held = attempt(() => snap.memory.read(address, length))
          expect(held instanceof Uint8Array && Buffer.from(held).equals(Buffer.from(live)), `${where} +${at}`).toBe(
            true,
          )
          pages += Math.ceil(length / PAGE)
          continue
        }
        for (let page = at; page < at + length; page += PAGE) {
          const pageAddress = m.start + BigInt(page)
          const livePage = attempt(() => proc.readMemory(pageAddress, PAGE))
          const heldPage = attempt(() => snap.memory.read(pageAddress, PAGE))
          if (livePage instanceof Uint8Array) {
            expect(heldPage, `${where} +${page}`).toEqual(livePage)
            pages++
          } else {
            expect(m.unreadable, `${where}: why the live read fails (${livePage.message})`).toBeDefined()
            expect(heldPage, where).toBeInstanceOf(MemoryError)
            expect((heldPage as MemoryError).code).toBe('ERR_MEMORY_ACCESS')
            expect((heldPage as MemoryError).message).toContain(m.unreadable)
            unreadable.add(m.unreadable ?? '')
          }
        }
      }
    }
  }
  return { pages, unreadable }
}

describe("a 'full' snapshot", () => {
  it('holds what a live read gets, map by map, of a process with guard pages, reservations and hidden data', async () => {
    const proc = await atReady()
    const snap = proc.createSnapshot({ level: 'full' })
    const { unreadable } = expectHoldsWhatLiveReads(snap, proc)
    const guards = snap.maps.filter((m) => m.perms === '---p' && m.end - m.start === BigInt(PAGE))
    expect(guards.length).toBeGreaterThanOrEqual(3) // one below each worker's stack
    for (const g of guards) {
      expect(g.unreadable).toBeUndefined()
      expect(snap.memory.read(g.start, PAGE)).toEqual(new Uint8Array(PAGE))
    }
    // data the process hid with mprotect(PROT_NONE) is held, and found
    const hidden = snap.memory.read('g_hidden', 8)
    const address = Buffer.from(hidden).readBigUInt64LE(0)
    expect(snap.memory.find('hidden by PROT_NONE')).toEqual([address + BigInt(PAGE) + 16n])
    expect(snap.maps.find((m) => m.start === address)?.perms).toBe('---p')
    // past a file's end: the page in the file is held, the rest says why
    const small = snap.maps.filter((m) => m.path === join(dir, 'small.txt'))
    expect(small.map((m) => m.perms).sort()).toEqual(['---p', 'r--p'])
    for (const m of small) {
      expect(Buffer.from(snap.memory.read(m.start, 11)).toString()).toBe('eleven char')
      expect(m.unreadable).toBe(
        'from +0x1000 on, past the end of its file (11 bytes): the process would get SIGBUS, ptrace gets EIO',
      )
    }
    expect(unreadable).toEqual(
      new Set(
        [
          '[vvar] is kernel data that ptrace cannot read',
          '[vvar_vclock] is kernel data that ptrace cannot read',
          '[vsyscall] is execute-only (vsyscall=xonly): neither the process nor ptrace can read it',
          'from +0x1000 on, past the end of its file (11 bytes): the process would get SIGBUS, ptrace gets EIO',
        ].filter((reason) => snap.maps.some((m) => m.unreadable === reason)),
      ),
    )
    // the shared PROT_NONE page is not read: the live read that would succeed allocates it in the process
    const shared = snap.maps.find((m) => m.perms === '---s')
    expect(shared?.unreadable).toMatch(/whose untouched pages a read through ptrace would allocate/)
    expect(() => snap.memory.read(shared?.start ?? 0n, 1)).toThrow(
      expect.objectContaining({ code: 'ERR_MEMORY_ACCESS' }),
    )
  })

  it('is bounded with 16 GiB and 3 x 64 MiB of PROT_NONE reservations: untouched pages are neither read nor kept', async () => {
    const proc = await atReady()
    const before = process.memoryUsage().arrayBuffers
    const snap = proc.createSnapshot({ level: 'full' })
    const grown = process.memoryUsage().arrayBuffers - before
    const reservations = snap.maps.filter((m) => m.perms === '---p' && m.end - m.start >= 60n * BigInt(MiB))
    expect(reservations.map((m) => m.end - m.start).sort()).toEqual(
      expect.arrayContaining([16n << 30n]), // the fixture's, beside malloc's per-thread arenas
    )
    expect(reservations.length).toBe(4)
    for (const m of reservations) {
      expect(m.sparse?.size).toBe(Number(m.end - m.start))
      expect(m.sparse?.pages.size).toBe(0)
      expect(snap.memory.read(m.end - 8n, 8)).toEqual(new Uint8Array(8))
    }
    // what the capture kept: the readable maps (8 MiB per thread stack, libc...), not the reservations
    const readable = snap.maps.reduce((n, m) => n + (m.content?.length ?? 0), 0)
    expect(grown).toBeLessThan(readable + 32 * MiB)
    const path = join(dir, 'noaccess.json')
    snap.save(path)
    expect(statSync(path).size).toBeLessThan(4 * MiB)
    const back = loadSnapshot(path)
    expect(back.maps.find((m) => m.end - m.start === 16n << 30n)?.sparse?.pages.size).toBe(0)
    expect(back.memory.find('hidden by PROT_NONE')).toEqual(snap.memory.find('hidden by PROT_NONE'))
    expect(back.diff(snap).isEmpty).toBe(true)
  })

  it('diffs maps held page by page: bytes written into PROT_NONE memory are each one change', async () => {
    const proc = await atReady()
    const before = proc.createSnapshot({ level: 'full' })
    const reserved = Buffer.from(proc.readMemory('g_reserved', 8)).readBigUInt64LE(0)
    const hidden = Buffer.from(proc.readMemory('g_hidden', 8)).readBigUInt64LE(0)
    const deep = reserved + (5n << 30n) + 0x123n // a page of the 16 GiB reservation, never touched
    proc.writeMemory(deep, Uint8Array.of(1, 2, 3))
    proc.writeMemory(hidden + BigInt(PAGE) + 16n, new TextEncoder().encode('HIDDEN'))
    const after = proc.createSnapshot({ level: 'full' })
    expect(after.memory.read(deep - 1n, 5)).toEqual(Uint8Array.of(0, 1, 2, 3, 0))
    const d = before.diff(after)
    expect(d.maps).toEqual([])
    expect(d.memory.map((c) => [c.addressAfter, [...c.before], [...c.after]])).toEqual([
      [deep, [0, 0, 0], [1, 2, 3]],
      [hidden + BigInt(PAGE) + 16n, [...Buffer.from('hidden')], [...Buffer.from('HIDDEN')]],
    ])
    expect(d.memory[0]?.mapOffset).toBe((5n << 30n) + 0x123n)
  })

  it('of a multi-threaded fixture at a breakpoint in a worker holds what a live read gets', async () => {
    const proc = await start(fixture('threads'), { args: ['3', '1000'] })
    proc.breakAt('worker_tick')
    await proc.cont()
    const snap = proc.createSnapshot({ level: 'full' })
    const { pages } = expectHoldsWhatLiveReads(snap, proc)
    expect(pages).toBeGreaterThan(1000)
    expect(snap.maps.some((m) => m.perms === '---p' && m.sparse?.size === Number(m.end - m.start))).toBe(true)
  })

  it.skipIf(!existsSync('/usr/bin/python3'))(
    'of python3 with 3 threads (their stacks, guard pages and malloc arenas) holds what a live read gets',
    async () => {
      const script = [
        'import os, threading',
        'ready = threading.Barrier(4)',
        'done = threading.Event()',
        'def work():',
        '    blocks = [bytearray(100000) for _ in range(4)]',
        '    ready.wait()',
        '    done.wait()',
        'threads = [threading.Thread(target=work) for _ in range(3)]',
        'for t in threads: t.start()',
        'ready.wait()',
        'os.getppid()',
        'done.set()',
        'for t in threads: t.join()',
      ].join('\n')
      const proc = await start('/usr/bin/python3', { args: ['-c', script] })
      proc.breakAt('libc.so.6!getppid')
      const stop = await proc.cont()
      expect(stop.kind).toBe('breakpoint')
      expect(proc.threads.length).toBe(4)
      const snap = proc.createSnapshot({ level: 'full' })
      expectHoldsWhatLiveReads(snap, proc)
      const arenas = snap.maps.filter((m) => m.perms === '---p' && m.end - m.start > 32n * BigInt(MiB))
      expect(arenas.length).toBeGreaterThanOrEqual(3)
    },
  )

  it.skipIf(!existsSync('/usr/bin/bash'))('of bash at write() holds what a live read gets', async () => {
    const proc = await start('/usr/bin/bash', { args: ['-c', 'echo hi'] })
    proc.breakAt('libc.so.6!write')
    expect((await proc.cont()).kind).toBe('breakpoint')
    const snap = proc.createSnapshot({ level: 'full' })
    const { pages } = expectHoldsWhatLiveReads(snap, proc)
    expect(pages).toBeGreaterThan(100)
  })
})

describe("a 'writable' snapshot", () => {
  it('leaves out guard pages and reservations (not writable) without calling them unreadable', async () => {
    const proc = await atReady()
    const snap = proc.createSnapshot({ level: 'writable' })
    const none = snap.maps.filter((m) => m.perms.startsWith('---'))
    expect(none.length).toBeGreaterThan(5)
    for (const m of none) {
      expect(m.sparse).toBeUndefined()
      expect(m.unreadable).toBeUndefined()
    }
    const guard = none[0]
    expect(() => snap.memory.read(guard?.start ?? 0n, 1)).toThrow(expect.objectContaining({ code: 'ERR_NOT_CAPTURED' }))
    expect(() => snap.memory.read(guard?.start ?? 0n, 1)).toThrow("{ level: 'full' }")
  })
})
