// proc.saveSnapshot(path): a snapshot written straight from the stopped process, its large maps read
// a chunk at a time and never copied whole. The oracle is createSnapshot(options).save(path) at the
// same stop: the same file but for the snapshot's id and time.
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { loadSnapshot, type Process } from '../../src/index.js'
import { codeOf, fixture, start } from '../helpers.js'
import { splitV2 } from './v2-file.js'

const dir = mkdtempSync(join(tmpdir(), 'procsnap-dump-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const SLOW = { timeout: 60_000 }
const MiB = 1 << 20

/** A file's metadata (without the snapshot's id and time) and its stored pages. */
function parts(path: string): { meta: unknown; pages: Buffer; pageCount: number } {
  const { header, meta, data } = splitV2(readFileSync(path))
  const json = JSON.parse(meta) as { snapshot: Record<string, unknown> }
  delete json.snapshot.snapshotId
  delete json.snapshot.createdAt
  return { meta: json, pages: data, pageCount: header.pageCount }
}

/** Dumps the stopped process and saves a capture of the same stop; expects the same file but for id and time. */
function expectDumpIsTheSave(proc: Process, level: 'writable' | 'full', name: string): string {
  const dumped = join(dir, `${name}.dump.procsnap`)
  const saved = join(dir, `${name}.save.procsnap`)
  proc.saveSnapshot(dumped, { level })
  proc.createSnapshot({ level, incremental: false }).save(saved)
  const a = parts(dumped)
  const b = parts(saved)
  expect(a.meta).toEqual(b.meta)
  expect(a.pageCount).toBe(b.pageCount)
  expect(a.pages.equals(b.pages)).toBe(true)
  expect(loadSnapshot(dumped).diff(loadSnapshot(saved)).memory).toEqual([])
  return dumped
}

async function pagefill(mib: number, kind: string): Promise<Process> {
  const proc = await start(fixture('pagefill'), { args: [String(mib), kind] })
  proc.breakAt('ready')
  expect((await proc.cont({ timeout: 60_000 })).kind).toBe('breakpoint')
  return proc
}

describe('proc.saveSnapshot', SLOW, () => {
  it.each(['distinct', 'repeated', 'random'])(
    'writes what createSnapshot().save() writes at the same stop: 40 MiB of %s pages',
    async (kind) => {
      const proc = await pagefill(40, kind)
      const file = expectDumpIsTheSave(proc, 'full', kind)
      // the 40 MiB map is held, and reads what the process holds
      const snap = loadSnapshot(file)
      const big = snap.maps.find((m) => m.end - m.start === BigInt(40 * MiB))!
      expect(big).toBeDefined()
      const at = big.start + BigInt(17 * MiB + 123)
      expect(snap.memory.read(at, 64)).toEqual(proc.readMemory(at, 64))
      // the process goes on as before
      expect((await proc.cont()).kind).toBe('exited')
    },
  )

  it('shows the original bytes under breakpoints in a large map (libc text)', async () => {
    const proc = await pagefill(1, 'distinct')
    proc.breakAt('libc.so.6!getpid')
    const address = proc.resolve('libc.so.6!getpid')
    const text = proc.maps.find((m) => address >= m.start && address < m.end)!
    expect(Number(text.end - text.start)).toBeGreaterThanOrEqual(MiB) // read live, not copied
    const file = expectDumpIsTheSave(proc, 'full', 'breakpoint')
    const held = loadSnapshot(file).memory.read(address, 8)
    expect(held).toEqual(proc.readMemory(address, 8))
    expect(held[0]).not.toBe(0xcc)
  })

  it('copies a large map that cannot be read whole (a file mapped past its end), as a capture does', async () => {
    const small = join(dir, 'small.txt')
    writeFileSync(small, 'eleven char')
    const proc = await start(fixture('pastend'), { args: [small] })
    proc.breakAt('ready')
    await proc.cont()
    const file = expectDumpIsTheSave(proc, 'full', 'pastend')
    const map = loadSnapshot(file).maps.find((m) => m.path === small)!
    expect(Number(map.end - map.start)).toBe(2 * MiB)
    expect(map.unreadable).toMatch(/^from \+0x1000 on, past the end of its file/)
    expect(Buffer.from(loadSnapshot(file).memory.read(map.start, 11)).toString()).toBe('eleven char')
  })

  it('writes what a save writes for a process with 4 threads, guard pages, a 16 GiB reservation and hidden data', async () => {
    const small = join(dir, 'eleven.txt')
    writeFileSync(small, 'eleven char')
    const proc = await start(fixture('noaccess'), { args: [small] })
    proc.breakAt('ready')
    await proc.cont()
    expect(proc.threads.length).toBe(4)
    expectDumpIsTheSave(proc, 'full', 'noaccess')
  })

  it('dumps python3 with a 24 MiB bytearray (writable), which loads, holds it and diffs empty against a capture', async () => {
    const code = ['import os', 'b = bytearray(b"procsnap" * (3 << 20))', 'b[5 << 20] = 0x41', 'os.getppid()'].join('\n')
    const proc = await start('/usr/bin/python3', { args: ['-c', code] })
    proc.breakAt('libc.so.6!getppid')
    expect((await proc.cont({ timeout: 60_000 })).kind).toBe('breakpoint')
    const file = expectDumpIsTheSave(proc, 'writable', 'python3')
    const snap = loadSnapshot(file)
    expect(snap.memory.find(Buffer.from('procsnapArocsnap', 'latin1'))).toHaveLength(1)
    expect((await proc.cont({ timeout: 60_000 })).kind).toBe('exited')
  })

  it('refuses bad options and states, typed, and leaves no file behind', async () => {
    const proc = await pagefill(1, 'repeated')
    const path = join(dir, 'bad', 'x.procsnap')
    expect(codeOf(() => proc.saveSnapshot(path, { level: 'huge' as 'full' }))).toBe('ERR_BAD_OPTION')
    expect(codeOf(() => proc.saveSnapshot(path, { incremental: false } as object))).toBe('ERR_BAD_OPTION')
    expect(existsSync(path)).toBe(false)
    // a file where the directory should be: the write fails, and no temporary file is left
    writeFileSync(join(dir, 'placeholder'), '')
    const blocked = join(dir, 'placeholder', 'x.procsnap')
    expect(codeOf(() => proc.saveSnapshot(blocked, { level: 'full' }))).toBe('ERR_FILE_UNWRITABLE')
    expect(codeOf(() => proc.createSnapshot().save(blocked))).toBe('ERR_FILE_UNWRITABLE')
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([])
    expect((await proc.cont()).kind).toBe('exited')
    expect(codeOf(() => proc.saveSnapshot(join(dir, 'late.procsnap')))).toBe('ERR_PROCESS_ENDED')
  })
})
