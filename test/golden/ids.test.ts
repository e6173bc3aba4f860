// Process and thread ids differ in every run: a golden writes the process's pid and its threads'
// tids by what they are (<pid>, <tid#2>), in registers and in memory, so two runs write the same text.
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { goldenSections, renderGolden } from '../../src/golden/render.js'
import { fixture, start } from '../helpers.js'

/** The golden of ids stopped in its worker's checkpoint(pid, tid), with the main thread in pthread_join. */
async function atCheckpoint(): Promise<{ text: string; pid: number }> {
  // Not isolated: inside its own PID namespace the program's pid is always 2 (test/process/isolate.test.ts);
  // this is the fallback where namespaces cannot be made, with this machine's pids.
  const proc = await start(fixture('ids'), { isolate: false })
  proc.breakAt('checkpoint')
  const ev = await proc.cont()
  if (ev.kind !== 'breakpoint') throw new Error(`expected the checkpoint, got ${ev.kind}`)
  expect(ev.thread.index).toBe(2)
  const snap = proc.createSnapshot({ level: 'writable' })
  const text = renderGolden(
    { key: 'ids 1', test: 'ids.test.ts' },
    goldenSections(snap.data, snap.modules(), { include: ['regs', 'memory'] }),
  )
  return { text, pid: proc.pid }
}

describe('ids in goldens', () => {
  it('writes the pid and a live thread tid symbolically in memory and registers', async () => {
    const { text } = await atCheckpoint()
    expect(text).toMatch(/\n {2}ids!g_pid +<pid>\n/)
    expect(text).toMatch(/\n {2}ids!g_worker_tid +<tid#2>\n/)
    expect(text).toMatch(/\n {2}ids!g_pid_long +<pid> 00 00 00 00\n/)
    const worker = text.slice(text.indexOf('thread 2 registers:'))
    expect(worker).toMatch(/\n {2}rdi +<pid>\n/)
    expect(worker).toMatch(/\n {2}rsi +<tid#2>\n/)
    // The main thread waits in pthread_join on the worker's tid (futex value): it shows as the thread.
    const main = text.slice(text.indexOf('thread 1 registers:'), text.indexOf('thread 2 registers:'))
    expect(main).toContain('<tid#2>')
  })

  it('two runs, two pids, one text but for flags computed from the ids', async () => {
    const a = await atCheckpoint()
    const b = await atCheckpoint()
    expect(a.pid).not.toBe(b.pid)
    // Flags computed from an id (the parity of a tid the worker compared) still differ now and then:
    // only fixed ids (a PID namespace) make those equal. Everything else is the same text.
    const withoutFlags = (text: string): string => text.replace(/\n {2}eflags +0x[0-9a-f]+/g, '')
    expect(withoutFlags(b.text)).toBe(withoutFlags(a.text))
  })

  it("a snapshot's ownPid is the pid the kernel says the program sees (NSpid), isolated or not", async () => {
    for (const isolate of [true, false]) {
      const proc = await start(fixture('ids'), { isolate })
      proc.breakAt('checkpoint')
      await proc.cont()
      const nspid = /^NSpid:\s+(.*)$/m.exec(readFileSync(`/proc/${proc.pid}/status`, 'latin1'))?.[1] ?? ''
      const inner = Number(nspid.trim().split(/\s+/).at(-1))
      const snap = proc.createSnapshot({ level: 'base' })
      await proc.kill()
      expect(proc.isolation.isolated).toBe(isolate)
      expect(snap.data.ownPid).toBe(inner === proc.pid ? undefined : inner)
      if (isolate) expect(snap.data.ownPid).toBe(2)
    }
  })

  it('isolated, the program sees pid 2: a value equal to the pid outside is a number like any other', async () => {
    const proc = await start(fixture('ids'))
    proc.breakAt('checkpoint')
    await proc.cont()
    const outside = Buffer.alloc(4)
    outside.writeUInt32LE(proc.pid)
    proc.writeMemory('g_worker_tid', outside) // what a constant that happens to equal it looks like
    const snap = proc.createSnapshot({ level: 'writable' })
    await proc.kill()
    expect(snap.data.ownPid).toBe(2)
    const text = renderGolden(
      { key: 'k', test: 't' },
      goldenSections(snap.data, snap.modules(), { include: ['memory'] }),
    )
    expect(text).toMatch(/\n {2}ids!g_pid +02 00 00 00\n/)
    expect(text).toContain(`ids!g_worker_tid`)
    expect(text).not.toContain('<pid>')
    expect(text).not.toContain('<tid#')
  })
})
