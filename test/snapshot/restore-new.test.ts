// restore(snapshot): a new process of the snapshot's program, in the snapshot's state. Qiling's
// partial execution (stop before a sleep, save, restore elsewhere, start after the sleep) and the
// refusals: another executable, a missing file, a 'base' snapshot, threads, ASLR.
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { loadSnapshot, restore, type Process } from '../../src/index.js'
import { fixture, rejectsWithCode, start, track } from '../helpers.js'

const dir = (): string => mkdtempSync(join(tmpdir(), 'procsnap-restore-new-'))

async function restored(...args: Parameters<typeof restore>): Promise<Process> {
  return track(await restore(...args))
}

describe('restore(snapshot) into a new process', () => {
  it("runs Qiling's scenario: stop before a long sleep, save, restore in a new process, start after the sleep", async () => {
    const original = await start(fixture('qiling'), { args: ['5'] })
    await original.runTo('before_sleep_label')
    const file = join(dir(), 'before-sleep.snap')
    original.saveSnapshot(file, { level: 'writable' })
    const snapshot = loadSnapshot(file)
    const gValue = new DataView(snapshot.memory.read('g_value', 4).buffer).getInt32(0, true)
    expect(gValue).toBe(5 * 2016) // compute(5): 5 * (0 + 1 + ... + 63)
    await original.kill() // the original is gone: the new process owes it nothing
    const q = await restored(snapshot)
    expect(q.pid).not.toBe(original.pid)
    expect(q.regs.rip).toBe(snapshot.regs.rip)
    q.jump('after_sleep_label')
    const ev = await q.runTo('before_print')
    expect(ev.kind).toBe('breakpoint')
    expect(q.regs.rdi).toBe(BigInt(gValue * 2 + 1))
    expect(await q.wait()).toEqual({ exitCode: 0 })
    expect(q.stdout).toBe(`value ${gValue * 2 + 1}\n`)
  })

  it('continues a program from a saved round after the original was killed: the rest of its output and its exit code', async () => {
    const data = join(dir(), 'data.txt')
    writeFileSync(data, 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGH')
    const plain = await start(fixture('rounds'), { args: [data, '4'] })
    await plain.wait()
    const original = await start(fixture('rounds'), { args: [data, '4'] })
    original.breakAt('round_start')
    await original.cont()
    await original.cont() // round_start(1): fd 3 has read 8 bytes, round 0's fd 4 is open, the heap has grown
    const file = join(dir(), 'round1.snap')
    original.createSnapshot({ level: 'writable' }).save(file)
    const printed = original.stdout
    await original.kill()
    const q = await restored(loadSnapshot(file))
    expect(await q.wait()).toEqual(plain.exit)
    expect(printed + q.stdout).toBe(plain.stdout)
  })

  it('restores python3 (a program we did not write) from a full snapshot, with the libraries it loaded at run time', async () => {
    const script =
      'import os, hashlib\nfor i in range(3):\n    x = [bytearray(200000 + i) for _ in range(20)]\n' +
      '    os.write(1, b"line %d %s\\n" % (i, hashlib.sha1(b"%d" % i * 1000).hexdigest()[:8].encode()))\n'
    const original = await start('/usr/bin/python3', { args: ['-c', script] })
    original.breakAt('libc.so.6!write')
    await original.cont()
    await original.cont() // the second line's write: hashlib and libcrypto were dlopen'ed since the entry point
    const full = original.createSnapshot({ level: 'full' })
    const writable = original.createSnapshot({ level: 'writable' })
    original.breakpoints.forEach((b) => b.remove())
    await original.wait()
    const lines = original.stdout.split('\n')
    // libcrypto's RELRO pages (relocated, then read-only) are only in a 'full' snapshot.
    const refused = await rejectsWithCode(restore(writable), 'ERR_RESTORE_LEVEL')
    expect(refused.message).toContain('libcrypto')
    const q = await restored(full)
    // Every register is the snapshot's, the vector ones too (python's memcpy and hashing use them).
    const regs = full.diff(q.createSnapshot({ level: 'base' })).regs
    expect(regs, regs.map((r) => r.name).join(', ')).toEqual([])
    // (python3 at a write holds vector state: some xmm register is non-zero, whichever memcpy this CPU chose)
    expect(Object.entries(full.regs).some(([name, value]) => name.startsWith('xmm') && value !== 0n)).toBe(true)
    expect(await q.wait()).toEqual({ exitCode: 0 })
    expect(q.stdout).toBe(`${lines.slice(1).join('\n')}`)
  })

  it('refuses another executable, a missing file, a base snapshot, threads and ASLR, with typed errors', async () => {
    const proc = await start(fixture('qiling'), { args: ['2'] })
    await proc.runTo('before_sleep_label')
    const s = proc.createSnapshot({ level: 'writable' })
    const other = await rejectsWithCode(restore(s, { exe: fixture('counter') }), 'ERR_RESTORE_FILE')
    expect(other.message).toContain('build-id')
    await rejectsWithCode(restore(proc.createSnapshot({ level: 'base' })), 'ERR_RESTORE_LEVEL')
    // A copy of the program, snapshotted and then removed: the file the snapshot maps is gone.
    const copy = join(dir(), 'qiling-copy')
    copyFileSync(fixture('qiling'), copy)
    const moved = await start(copy, { args: ['2'] })
    await moved.runTo('before_sleep_label')
    const fromCopy = moved.createSnapshot({ level: 'writable' })
    await moved.kill()
    rmSync(copy)
    const missing = await rejectsWithCode(restore(fromCopy), 'ERR_RESTORE_FILE')
    expect(missing.message).toContain('not there')
    const threaded = await start(fixture('threads'))
    threaded.breakAt('worker')
    await threaded.cont()
    await rejectsWithCode(restore(threaded.createSnapshot({ level: 'writable' })), 'ERR_RESTORE_THREADS')
    const randomized = await start(fixture('qiling'), { args: ['2'], aslr: true })
    await randomized.runTo('before_sleep_label')
    await rejectsWithCode(restore(randomized.createSnapshot({ level: 'writable' })), 'ERR_RESTORE_PROCESS')
    // None of the refusals left a process behind, and the original still runs.
    proc.jump('after_sleep_label')
    expect(await proc.wait()).toEqual({ exitCode: 0 })
  })
})
