// proc.restore(snapshot): a live process rewound to a snapshot of itself runs on exactly as it did
// the first time: the same output, and a snapshot at the same later stop equal to the first run's.
import { execFileSync } from 'node:child_process'
import { closeSync, mkdtempSync, openSync, writeFileSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { loadSnapshot, type Process } from '../../src/index.js'
import { fixture, rejectsWithCode, start } from '../helpers.js'

const DATA = 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ'

function dataFile(): string {
  const path = join(mkdtempSync(join(tmpdir(), 'procsnap-restore-')), 'data.txt')
  writeFileSync(path, DATA)
  return path
}

/** rounds, stopped at round_start(r) with both round breakpoints armed. */
async function roundsAt(r: number, rounds = 4): Promise<Process> {
  const proc = await start(fixture('rounds'), { args: [dataFile(), String(rounds)] })
  proc.breakAt('round_start')
  proc.breakAt('round_end')
  for (let i = 0; i <= r; i++) {
    await proc.cont() // round_start(i)
    if (i < r) await proc.cont() // round_end(i)
  }
  return proc
}

/** Runs to the next stop; returns the output printed meanwhile. */
async function runNext(proc: Process): Promise<string> {
  const before = proc.stdout.length
  const ev = await proc.cont()
  expect(ev.kind).toBe('breakpoint')
  return proc.stdout.slice(before)
}

describe('proc.restore', () => {
  it('rewinds a round twice: the third run equals the first byte for byte (same output, empty diff)', async () => {
    const proc = await roundsAt(1)
    const s = proc.createSnapshot({ level: 'writable' })
    const firstLine = await runNext(proc)
    expect(firstLine).toBe('round 1 read ijklmnop sum 1255270259644035336\n')
    const firstEnd = proc.createSnapshot({ level: 'writable' })
    await proc.cont() // round_start(2): the heap grew, a map was added, the offset moved, an fd closed and one opened
    await proc.cont() // round_end(2)
    for (let k = 0; k < 2; k++) {
      const report = await proc.restore(s)
      expect(report.threads).toEqual([proc.pid])
      expect(report.layout.some((l) => l.startsWith('brk '))).toBe(true)
      expect(report.layout.some((l) => l.startsWith('munmap '))).toBe(true)
      expect(report.notRestored).toEqual([])
      expect(proc.regs.rip).toBe(s.regs.rip)
      expect(await runNext(proc)).toBe(firstLine)
      const again = proc.createSnapshot({ level: 'writable' })
      const diff = firstEnd.diff(again)
      expect(diff.isEmpty, diff.toString()).toBe(true)
      await proc.cont() // on into round 2 before the next rewind
    }
  })

  it('restores a snapshot saved to a file and loaded back as well as the one in memory', async () => {
    const proc = await roundsAt(0)
    const path = join(mkdtempSync(join(tmpdir(), 'procsnap-restore-')), 'round0.snap')
    proc.createSnapshot({ level: 'writable' }).save(path)
    const firstLine = await runNext(proc)
    const firstEnd = proc.createSnapshot({ level: 'writable' })
    await proc.cont()
    const loaded = loadSnapshot(path)
    expect(loaded.data.answers?.random).toBeDefined() // fixedRandom's stream position travels in the file
    const report = await proc.restore(loaded)
    expect(report.notRestored).toEqual([])
    expect(await runNext(proc)).toBe(firstLine)
    const diff = firstEnd.diff(proc.createSnapshot({ level: 'writable' }))
    expect(diff.isEmpty, diff.toString()).toBe(true)
  })

  it('puts file descriptors back: an offset moved, an fd closed since reopened, one opened since closed', async () => {
    const proc = await roundsAt(1)
    const s = proc.createSnapshot({ level: 'writable' })
    await proc.cont() // round_end(1): fd 4 (round 0's) closed, fd 5 opened, fd 3 read 8 bytes further
    const report = await proc.restore(s)
    const byFd = new Map(report.fds.map((f) => [f.fd, f.action]))
    expect(byFd.get(3)).toBe('seeked')
    expect(byFd.get(4)).toBe('reopened')
    expect(byFd.get(5)).toBe('closed')
    expect(byFd.get(0)).toBe('unchanged')
    const now = proc.createSnapshot({ level: 'base' }).fds
    expect(now.map((f) => [f.fd, f.offset])).toEqual(s.fds.map((f) => [f.fd, f.offset]))
  })

  it('runs on to the end after a rewind, with the output and exit code of a run that was never rewound', async () => {
    const file = dataFile()
    const plain = await start(fixture('rounds'), { args: [file, '4'] })
    await plain.wait()
    const proc = await start(fixture('rounds'), { args: [file, '4'] })
    proc.breakAt('round_start')
    await proc.cont() // round_start(0)
    const s = proc.createSnapshot({ level: 'writable' })
    proc.breakpoints.forEach((b) => b.remove())
    proc.breakAt('round_end')
    await proc.cont()
    await proc.cont()
    await proc.cont() // round_end(2)
    const before = proc.stdout.length
    await proc.restore(s)
    proc.breakpoints.forEach((b) => b.remove())
    expect(await proc.wait()).toEqual(plain.exit)
    expect(proc.stdout.slice(before)).toBe(plain.stdout)
  })

  it('rewinds python3 (a program we did not write) across its allocations, freed arenas and output', async () => {
    const script =
      'import os\nfor i in range(4):\n    x = [bytearray(200000 + i) for _ in range(20)]\n' +
      '    os.write(1, b"line %d %d\\n" % (i, sum(len(b) for b in x)))\n'
    const proc = await start('/usr/bin/python3', { args: ['-c', script] })
    proc.breakAt('libc.so.6!write')
    await proc.cont()
    const s = proc.createSnapshot({ level: 'writable' })
    const first = await runNext(proc)
    const firstStop = proc.createSnapshot({ level: 'writable' })
    await proc.cont()
    const report = await proc.restore(s)
    expect(report.layout.length).toBeGreaterThan(0)
    expect(await runNext(proc)).toBe(first)
    const diff = firstStop.diff(proc.createSnapshot({ level: 'writable' }))
    expect(diff.isEmpty, diff.toString()).toBe(true)
    proc.breakpoints.forEach((b) => b.remove())
    expect(await proc.wait()).toEqual({ exitCode: 0 })
    expect(proc.stdout).toBe(
      'line 0 4000000\nline 1 4000020\nline 0 4000000\nline 1 4000020\nline 2 4000040\nline 3 4000060\n',
    )
  })

  it('ends the threads started since a single-thread snapshot, and the program then runs as if they never were', async () => {
    const plain = await start(fixture('threads'), { args: ['3', '50'] })
    await plain.wait()
    const proc = await start(fixture('threads'), { args: ['3', '50'] })
    await proc.runTo('main')
    const s = proc.createSnapshot({ level: 'writable' })
    proc.breakAt('worker_tick')
    for (let i = 0; i < 10; i++) await proc.cont()
    expect(proc.threads.length).toBe(4)
    const workers = proc.threads.slice(1).map((t) => t.tid)
    const report = await proc.restore(s)
    expect(report.threadsEnded).toEqual(workers)
    expect(proc.threads.map((t) => t.tid)).toEqual([proc.pid])
    expect(proc.maps.length).toBe(s.maps.length) // the workers' stacks are gone with them
    proc.breakpoints.forEach((b) => b.remove())
    expect(await proc.wait()).toEqual(plain.exit)
    expect(proc.stdout).toBe(plain.stdout)
  })

  it('rewinds every thread of a multi-threaded process (serial schedule): the same later stop compares equal', async () => {
    const proc = await start(fixture('threads'), { args: ['3', '50'] })
    proc.breakAt('worker_tick')
    for (let i = 0; i < 20; i++) await proc.cont()
    const s = proc.createSnapshot({ level: 'writable' })
    expect(s.threads.length).toBe(4)
    for (let i = 0; i < 15; i++) await proc.cont()
    const first = proc.createSnapshot({ level: 'writable' })
    for (let i = 0; i < 5; i++) await proc.cont()
    const report = await proc.restore(s)
    expect(report.threads).toEqual(s.threads.map((t) => t.tid))
    expect(report.threadsEnded).toEqual([])
    expect(proc.thread.index).toBe(s.data.current)
    for (let i = 0; i < 15; i++) await proc.cont()
    const diff = first.diff(proc.createSnapshot({ level: 'writable' }))
    expect(diff.isEmpty, diff.toString()).toBe(true)
    // Once the workers have ended, the snapshot's threads cannot come back.
    proc.breakpoints.forEach((b) => b.remove())
    await proc.runTo('libc.so.6!exit')
    const gone = await rejectsWithCode(proc.restore(s), 'ERR_RESTORE_THREADS')
    expect(gone.message).toContain(String(s.threads[1]?.tid))
  })

  it('rewinds a thread interrupted in a blocking read: the read starts again and waits for new data (python3, a fifo)', async () => {
    const fifo = join(mkdtempSync(join(tmpdir(), 'procsnap-restore-')), 'in')
    execFileSync('mkfifo', [fifo])
    const input = openSync(fifo, 'r+') // read and write: opening a fifo so never blocks
    try {
      const script = `import os\nf = os.open(${JSON.stringify(fifo)}, os.O_RDONLY)\nfor _ in range(3):\n    os.write(1, b"got %s\\n" % os.read(f, 5))\n`
      const proc = await start('/usr/bin/python3', { args: ['-c', script] })
      const pending = proc.cont()
      await new Promise((resolve) => setTimeout(resolve, 300)) // it blocks in read(2)
      proc.interrupt()
      expect((await pending).kind).toBe('interrupted')
      expect(proc.symbolize(proc.regs.rip)).toMatch(/^libc\.so\.6!read/)
      const s = proc.createSnapshot({ level: 'writable' })
      proc.breakAt('libc.so.6!write')
      writeSync(input, 'hello')
      await proc.cont()
      const written = (): string => Buffer.from(proc.readMemory(proc.regs.rsi, Number(proc.regs.rdx))).toString()
      expect(written()).toBe('got hello\n')
      await proc.restore(s)
      expect(proc.symbolize(proc.regs.rip)).toMatch(/^libc\.so\.6!read/) // back in read(2), to restart it
      const again = proc.cont()
      await new Promise((resolve) => setTimeout(resolve, 100))
      writeSync(input, 'world')
      expect((await again).kind).toBe('breakpoint')
      expect(written()).toBe('got world\n') // the restored read took the new data: 'hello' is gone from the pipe
    } finally {
      closeSync(input)
    }
  })

  it("writes back a 'full' snapshot's page that process_vm_readv refuses (execute-only), with the others", async () => {
    // python3 keeps an execute-only page ('--xp': no VM_READ, so only /proc/PID/mem reads it) and
    // writes a new word into it each round; the restore reads it apart from the batch and writes it back.
    const script =
      'import ctypes, mmap, os\nlibc = ctypes.CDLL(None)\n' +
      'libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]\n' +
      'm = mmap.mmap(-1, 8192, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)\n' +
      'addr = ctypes.addressof(ctypes.c_char.from_buffer(m))\n' +
      'for i in range(3):\n    libc.mprotect(addr, 8192, 3)\n    m[0:6] = b"round%d" % i\n' +
      '    libc.mprotect(addr, 8192, 4)\n    x = [bytearray(b"q" * 100000) for _ in range(3)]\n' +
      '    os.write(1, b"%x %d\\n" % (addr, i))\n'
    const proc = await start('/usr/bin/python3', { args: ['-c', script] })
    proc.breakAt('libc.so.6!write')
    await proc.cont()
    const s = proc.createSnapshot({ level: 'full' })
    const first = await runNext(proc)
    const page = BigInt(`0x${first.split(' ')[0] ?? ''}`)
    expect(s.data.maps.find((m) => m.start === page)?.perms).toBe('--xp')
    const firstStop = proc.createSnapshot({ level: 'full' })
    expect(Buffer.from(proc.readMemory(page, 6)).toString()).toBe('round1')
    const report = await proc.restore(s)
    expect(report.notRestored).toEqual([])
    expect(Buffer.from(proc.readMemory(page, 6)).toString()).toBe('round0')
    expect(await runNext(proc)).toBe(first)
    const diff = firstStop.diff(proc.createSnapshot({ level: 'full' }))
    expect(diff.isEmpty, diff.toString()).toBe(true)
  })

  it('leaves no stale page to the next incremental snapshot of a tracked process (python3, 40 MiB)', async () => {
    // The first capture reads 40 MiB or more: writes are tracked from then on, and the next capture
    // would share what the tracker says was not written. A restore writes and drops pages behind it.
    const script =
      'import os\nbig = bytearray(40 << 20)\nfor i in range(3):\n' +
      '    x = [bytearray(b"z" * 300000) for _ in range(4)]\n    os.write(1, b"%d\\n" % i)\n'
    const proc = await start('/usr/bin/python3', { args: ['-c', script] })
    proc.breakAt('libc.so.6!write')
    await proc.cont()
    const s = proc.createSnapshot({ level: 'writable' })
    await proc.cont()
    await proc.cont()
    await proc.restore(s)
    const incremental = proc.createSnapshot({ level: 'writable' })
    const whole = proc.createSnapshot({ level: 'writable', incremental: false })
    const diff = whole.diff(incremental)
    expect(diff.isEmpty, diff.toString()).toBe(true)
    expect(s.diff(whole).memory).toEqual([])
  })

  it('compares only the pages written since when writes are tracked (python3, 40 MiB), and rewinds them all', async () => {
    // A capture of 32 MiB or more starts write tracking: a restore then reads what the run wrote since
    // the process last held the snapshot's bytes (64 pages of the bytearray a round, and the
    // interpreter's own), not the 40 MiB.
    const script =
      'import os\nbig = bytearray(b"x" * (40 << 20))\nfor i in range(6):\n' +
      '    for k in range(64):\n        big[(k * 97 + i) * 4096] = 65 + i\n' +
      '    os.write(1, b"%d %d\\n" % (i, sum(big[(k * 97 + i) * 4096] for k in range(64))))\n'
    const rewind = async (incremental: boolean): Promise<number[]> => {
      const proc = await start('/usr/bin/python3', { args: ['-c', script] })
      proc.breakAt('libc.so.6!write')
      await proc.cont()
      const s = proc.createSnapshot({ level: 'writable', incremental })
      const first = await runNext(proc)
      const firstStop = proc.createSnapshot({ level: 'writable', incremental: false })
      const compared: number[] = []
      for (let round = 0; round < 3; round++) {
        await proc.cont()
        compared.push((await proc.restore(s)).pagesCompared)
        expect(await runNext(proc)).toBe(first)
      }
      const diff = firstStop.diff(proc.createSnapshot({ level: 'writable', incremental: false }))
      expect(diff.isEmpty, diff.toString()).toBe(true)
      await proc.kill()
      return compared
    }
    const [afterCapture, ...afterRestore] = await rewind(true)
    const untracked = await rewind(false)
    for (const n of untracked) expect(n).toBeGreaterThan(10_000) // the 40 MiB, page by page
    // firstStop's capture reset the tracker since s: the first restore compares all, and makes s its base
    expect(afterCapture).toBeGreaterThan(10_000)
    for (const n of afterRestore) expect(n).toBeLessThan(2_000)
  })

  it('refuses what it cannot restore, with typed errors, and leaves the process usable', async () => {
    const proc = await roundsAt(0)
    const other = await roundsAt(0)
    await rejectsWithCode(proc.restore(proc.createSnapshot({ level: 'base' })), 'ERR_RESTORE_LEVEL')
    const foreign = await rejectsWithCode(
      proc.restore(other.createSnapshot({ level: 'writable' })),
      'ERR_RESTORE_PROCESS',
    )
    expect(foreign.message).toContain(String(other.pid))
    const threadSnapshot = proc.thread.createSnapshot({ level: 'writable' })
    await rejectsWithCode(proc.restore(threadSnapshot), 'ERR_BAD_ARGUMENT')
    const s = proc.createSnapshot({ level: 'writable' })
    const pending = proc.cont()
    await rejectsWithCode(proc.restore(s), 'ERR_PROCESS_RUNNING')
    await pending
    await proc.kill()
    await rejectsWithCode(proc.restore(s), 'ERR_PROCESS_ENDED')
    expect(await runNext(other)).toContain('round 0 read abcdefgh')
  })
})
