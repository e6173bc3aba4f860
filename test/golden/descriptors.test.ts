// node keeps fstat() of fds 0-2 in its .bss (node::stdio): the pty's number, device and times are
// the machine's and the moment's. A golden writes those words by name, so it reads the same in
// every run; a saved snapshot keeps what identifies each descriptor.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { goldenSections, renderGolden } from '../../src/golden/render.js'
import { statImageWords } from '../../src/golden/stat-images.js'
import { launch, loadSnapshot, type ProcessSnapshot } from '../../src/index.js'

const dir = mkdtempSync(join(tmpdir(), 'procsnap-descriptors-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

async function nodeAtExit(): Promise<ProcessSnapshot> {
  const proc = await launch(process.execPath, { args: ['-e', 'console.log(6 * 7)'] })
  await proc.runTo('libc.so.6!exit', { timeout: 30_000 })
  const snap = proc.createSnapshot({ level: 'writable' })
  await proc.kill()
  return snap
}

const memory = (snap: ProcessSnapshot): string =>
  renderGolden({ key: 'k', test: 't' }, goldenSections(snap.data, snap.modules(), { include: ['memory'] }))

describe('stat images of terminals, pipes and devices in goldens', () => {
  it("node's copy of fstat(1) is written by name, and two runs a second apart write one text", async () => {
    const first = await nodeAtExit()
    await new Promise((resolve) => setTimeout(resolve, 1100))
    const second = await nodeAtExit()
    const stdout = first.fds.find((f) => f.fd === 1)
    expect(stdout?.target).toMatch(/^\/dev\/pts\/\d+$/)
    expect(stdout?.stat?.rdev).toBeGreaterThan(0n)
    const text = memory(first)
    for (const word of [
      'fd1.st_ino',
      'fd1.st_rdev',
      'fd1.st_uid',
      'fd1.st_mtime',
      'fd1.st_ctime.ns',
      'fd2.st_ino',
      'fd0.st_gid',
    ])
      expect(text).toContain(`<${word}>`)
    expect(memory(second)).toBe(text)
  }, 60_000)

  it("a file's descriptor has no identity (its inode is the project's file); a pipe's and /dev/null's have", async () => {
    const proc = await launch('bash', { args: ['-c', 'exec 3</etc/passwd; exit 0'], stdin: 'x' })
    await proc.runTo('libc.so.6!exit')
    const snap = proc.createSnapshot()
    await proc.kill()
    const fd = (n: number): (typeof snap.fds)[number] | undefined => snap.fds.find((f) => f.fd === n)
    expect(fd(3)?.target).toBe('/etc/passwd')
    expect(fd(3)?.stat).toBeUndefined()
    expect(fd(0)?.target).toMatch(/^pipe:/)
    expect(fd(0)?.stat?.mode).toBe(0o010600)
  })

  it("save and load keep each descriptor's identity", async () => {
    const snap = await nodeAtExit()
    const file = join(dir, 'node.json')
    snap.save(file)
    const back = loadSnapshot(file)
    expect(back.fds).toEqual(snap.fds)
    expect(memory(back as ProcessSnapshot)).toBe(memory(snap))
  }, 60_000)
})

it('indexes 100,000 descriptors of one inode in linear time (a loaded snapshot may list that many)', () => {
  const fds = Array.from({ length: 100_000 }, (_, fd) => ({
    fd,
    target: '/dev/null',
    flags: 0,
    offset: 0n,
    stat: { dev: 5n, ino: 3n, mode: 0o20666, rdev: 0x103n },
  }))
  const t0 = performance.now()
  expect(statImageWords(0x1000n, Buffer.alloc(4096), fds).size).toBe(0)
  expect(performance.now() - t0).toBeLessThan(2000)
})
