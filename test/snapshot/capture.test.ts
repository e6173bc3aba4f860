// Snapshots of real processes agree with what the live process reports, before and after save/load.
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import {
  loadSnapshot,
  parseElf,
  ProcessSnapshot,
  ThreadSnapshot,
  type Process,
  type Snapshot,
} from '../../src/index.js'
import { fixture, le32, nmSymbol, start } from '../helpers.js'

const dir = mkdtempSync(join(tmpdir(), 'procsnap-capture-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

async function atBump(args = ['3'], hits = 1): Promise<Process> {
  // Not isolated: these tests compare paths and the cwd with the fixture's real ones.
  const proc = await start(fixture('counter'), { args, isolate: false })
  proc.breakAt('bump')
  for (let i = 0; i < hits; i++) await proc.cont()
  return proc
}

/** Everything a snapshot holds agrees with the live process it was taken from. */
function expectMatchesLive(snap: Snapshot, proc: Process): void {
  const live = proc.regs.toJSON()
  for (const [name, value] of Object.entries(live)) expect(snap.regs[name], name).toBe(value)
  expect(snap.regs.eax).toBe(proc.regs.rax & 0xffffffffn)
  expect(snap.maps.map((m) => [m.start, m.end, m.perms, m.offset, m.path])).toEqual(
    proc.maps.map((m) => [m.start, m.end, m.perms, m.offset, m.path]),
  )
  for (const m of snap.maps) {
    if (!m.content) continue
    expect(m.content.length).toBe(Number(m.end - m.start))
    expect(
      Buffer.from(m.content).equals(Buffer.from(proc.readMemory(m.start, m.content.length))),
      `${m.path} ${m.perms}`,
    ).toBe(true)
  }
  expect(snap.threads.map((t) => t.tid)).toEqual(proc.threads.map((t) => t.tid))
}

describe('createSnapshot', () => {
  it('at a breakpoint holds the stop, every register, map and writable byte, and the backtrace', async () => {
    const proc = await atBump()
    const snap = proc.createSnapshot({ level: 'writable', name: 'first bump' })
    expect(snap).toBeInstanceOf(ProcessSnapshot)
    expect(snap.kind).toBe('process')
    expect(snap.level).toBe('writable')
    expect(snap.name).toBe('first bump')
    expect(snap.arch).toBe('x86_64')
    expect(snap.pid).toBe(proc.pid)
    expect(snap.aslrEnabled).toBe(false)
    expect(snap.exe).toBe(fixture('counter'))
    expect(snap.argv).toEqual([fixture('counter'), '3'])
    expect(snap.cwd).toBe(process.cwd())
    expect(snap.stop).toMatchObject({
      kind: 'breakpoint',
      thread: 1,
      location: 'counter!bump',
      pc: proc.resolve('bump'),
    })
    expectMatchesLive(snap, proc)
    // writable maps hold contents; read-only ones do not at this level
    expect(snap.maps.filter((m) => m.perms[1] === 'w' && m.perms[0] === 'r').every((m) => m.content)).toBe(true)
    expect(snap.maps.filter((m) => m.perms[1] !== 'w').every((m) => !m.content)).toBe(true)
    expect(snap.memory.read('g_counter', 4)).toEqual(proc.readMemory('g_counter', 4))
    expect(snap.memory.read('g_message', 6)).toEqual(new TextEncoder().encode('hello\0'))
    expect(snap.symbolize(proc.resolve('bump') + 4n)).toBe('counter!bump+0x4')
    expect(snap.backtrace().map((f) => f.symbol)).toEqual([
      'bump',
      'main',
      ...snap
        .backtrace()
        .slice(2)
        .map((f) => f.symbol),
    ])
    expect(snap.backtrace()[0]?.location).toBe('counter!bump')
    expect(snap.backtrace().some((f) => f.module === 'libc.so.6')).toBe(true)
  })

  it('at a SIGSEGV holds the signal, its code and the fault address; at launch, the entry point', async () => {
    const proc = await start(fixture('segfault'))
    const atLaunch = proc.createSnapshot()
    expect(atLaunch.stop).toMatchObject({
      kind: 'launch',
      thread: 1,
      location: 'segfault!_start',
      pc: proc.resolve('_start'),
    })
    await proc.cont()
    const snap = proc.createSnapshot()
    // SEGV_MAPERR (1) at address 0, in crash(), called from main
    expect(snap.stop).toMatchObject({
      kind: 'signal',
      signal: 'SIGSEGV',
      signo: 11,
      code: 1,
      faultAddress: 0n,
      thread: 1,
    })
    expect(snap.stop?.location).toMatch(/^segfault!crash\+0x[0-9a-f]+$/)
    expect(
      snap
        .backtrace()
        .map((f) => f.symbol)
        .slice(0, 2),
    ).toEqual(['crash', 'main'])
  })

  it('captures fds, auxv, cwd and the CPU register features', async () => {
    const proc = await atBump()
    const snap = proc.createSnapshot()
    expect(snap.fds.map((f) => f.fd).slice(0, 3)).toEqual([0, 1, 2])
    expect(snap.fds[1]?.target).toMatch(/^\/dev\/pts\/\d+$/) // stdout and stderr: a pty each, by default
    expect(snap.fds[2]?.target).toMatch(/^\/dev\/pts\/\d+$/)
    expect(snap.fds[2]?.target).not.toBe(snap.fds[1]?.target)
    const entry = snap.auxv.find((a) => a.name === 'AT_ENTRY')
    expect(entry?.value).toBe(proc.resolve('_start'))
    expect(snap.auxv.find((a) => a.name === 'AT_PAGESZ')?.value).toBe(4096n)
    expect(snap.cpu.arch).toBe('x86_64')
    expect(snap.cpu.components).toEqual(expect.arrayContaining(['x87', 'sse']))
    expect(typeof snap.regs.xmm0).toBe('bigint')
    expect(typeof snap.regs.st0).toBe('bigint')
    expect(snap.regs.fs_base).toBe(proc.regs.fs_base)
  })

  it('levels: base holds no memory, full holds every readable map; what cannot be read is recorded', async () => {
    const proc = await atBump()
    const base = proc.createSnapshot()
    expect(base.level).toBe('base')
    expect(base.maps.every((m) => !m.content && !m.unreadable)).toBe(true)
    expect(() => base.memory.read('g_counter', 4)).toThrow(expect.objectContaining({ code: 'ERR_NOT_CAPTURED' }))
    expect(() => base.memory.read('g_counter', 4)).toThrow("level: 'writable'")
    const writable = proc.createSnapshot({ level: 'writable' })
    expect(() => writable.memory.read('bump', 4)).toThrow(expect.objectContaining({ code: 'ERR_NOT_CAPTURED' }))
    expect(() => writable.memory.read('bump', 4)).toThrow("level: 'full'")
    const full = proc.createSnapshot({ level: 'full' })
    expectMatchesLive(full, proc)
    expect(full.memory.read('bump', 4)).toEqual(proc.readMemory('bump', 4))
    // breakpoint bytes never appear: bump's first byte is the original, not int3
    expect(full.memory.read('bump', 1)[0]).not.toBe(0xcc)
    // ...and the file agrees (the text segment of this PIE has file offset = link-time address)
    const at = Number(nmSymbol(fixture('counter'), 'bump'))
    expect(full.memory.read('bump', 8)).toEqual(new Uint8Array(readFileSync(fixture('counter')).subarray(at, at + 8)))
    for (const m of full.maps) {
      if (m.path.startsWith('[vvar')) expect(m.unreadable).toMatch(/ptrace cannot read/)
      else if (m.path === '[vsyscall]' && m.perms[0] !== 'r') expect(m.unreadable).toMatch(/execute-only/)
      else if (m.perms[0] !== 'r')
        expect(m.sparse, m.path).toBeDefined() // read as a debugger reads it
      else expect(m.content, m.path).toBeDefined()
    }
    const vsyscall = full.maps.find((m) => m.path === '[vsyscall]')
    if (vsyscall)
      expect(() => full.memory.read(vsyscall.start, 8)).toThrow(expect.objectContaining({ code: 'ERR_MEMORY_ACCESS' }))
    expect(() => full.memory.read(0x10n, 4)).toThrow(expect.objectContaining({ code: 'ERR_ADDRESS_UNMAPPED' }))
  })

  it('reads across adjacent maps and finds byte patterns', async () => {
    const proc = await atBump()
    const full = proc.createSnapshot({ level: 'full' })
    const exeMaps = full.maps.filter((m) => m.path === fixture('counter'))
    const [first, second] = exeMaps
    if (!first || !second || first.end !== second.start) throw new Error('expected adjacent maps of the executable')
    const across = full.memory.read(first.end - 8n, 16)
    expect(across).toEqual(proc.readMemory(first.end - 8n, 16))
    const hits = full.memory.find('hello')
    expect(hits).toContain(proc.resolve('g_message'))
    expect(full.memory.find(new Uint8Array([0x7f, 0x45, 0x4c, 0x46]))).toContain(first.start)
  })

  it('a thread snapshot holds one thread and keeps its kind through save and load', async () => {
    const proc = await start(fixture('threads'), { args: ['3', '2'] })
    proc.breakAt('worker_tick')
    await proc.cont()
    const ps = proc.createSnapshot()
    expect(ps.threads.length).toBe(proc.threads.length)
    expect(ps.threads.map((t) => t.index)).toEqual(proc.threads.map((t) => t.index))
    for (const t of ps.threads) expect(t.regs.rip).toBe(proc.threads.find((x) => x.tid === t.tid)?.pc)
    const stopped = proc.thread
    const ts = stopped.createSnapshot({ level: 'writable' })
    expect(ts).toBeInstanceOf(ThreadSnapshot)
    expect(ts.threads.map((t) => t.tid)).toEqual([stopped.tid])
    expect(ts.backtrace()[0]?.symbol).toBe('worker_tick')
    // start_thread and clone3 follow, in libc: its .dynsym does not name them, gdb needs libc's debug file.
    const bt = ts.backtrace()
    expect(bt.map((f) => f.symbol).slice(0, 2)).toEqual(['worker_tick', 'worker'])
    expect(bt.slice(2).map((f) => f.module)).toEqual(['libc.so.6', 'libc.so.6'])
    const path = join(dir, 'thread.json')
    ts.save(path)
    const back = loadSnapshot(path)
    expect(back).toBeInstanceOf(ThreadSnapshot)
    expect(back.regs).toEqual(ts.regs)
    expect(back.diff(ts).isEmpty).toBe(true)
  })

  it('survives save and load: the same registers, maps, bytes and backtrace', async () => {
    const proc = await atBump(['3'], 2)
    const snap = proc.createSnapshot({ level: 'full' })
    const path = join(dir, 'full.json')
    snap.save(path)
    // pages stored once, zero pages not at all (raw since procsnap/2): a full snapshot of a small C program (libc included) is a few MB
    expect(statSync(path).size).toBeLessThan(4 << 20)
    const writablePath = join(dir, 'writable.json')
    proc.createSnapshot({ level: 'writable' }).save(writablePath)
    expect(statSync(writablePath).size).toBeLessThan(128 << 10)
    const back = loadSnapshot(path)
    expect(back).toBeInstanceOf(ProcessSnapshot)
    expectMatchesLive(back, proc)
    expect(back.stop).toEqual(snap.stop)
    expect(back.backtrace()).toEqual(snap.backtrace())
    expect(back.fds).toEqual(snap.fds)
    expect(back.auxv).toEqual(snap.auxv)
    expect(back.cpu).toEqual(snap.cpu)
    expect(back.snapshotId).toBe(snap.snapshotId)
    expect(le32(back.memory.read('g_counter', 4))).toBe(1)
    expect(back.symbolize(proc.resolve('bump'))).toBe('counter!bump')
    expect(snap.diff(back).isEmpty).toBe(true)
  })
})

describe('backtraces in snapshots', () => {
  it('unwind -O2 code without frame pointers, and a base snapshot keeps them after save and load', async () => {
    const proc = await start(fixture('deep-O2'), { args: ['3'] })
    proc.breakAt('leaf')
    await proc.cont()
    const snap = proc.createSnapshot()
    expect(snap.level).toBe('base')
    const symbols = snap.backtrace().map((f) => f.symbol)
    expect(symbols.slice(0, 8)).toEqual(['leaf', 'level3', 'level2', 'level1', 'descend', 'descend', 'descend', 'main'])
    expect(
      snap
        .backtrace()
        .slice(1, 8)
        .every((f) => f.via === 'cfi'),
    ).toBe(true)
    expect(snap.backtrace()[1]?.location).toMatch(/^deep-O2!level3\+0x[0-9a-f]+$/)
    const path = join(dir, 'deep.json')
    snap.save(path)
    expect(loadSnapshot(path).backtrace()).toEqual(snap.backtrace())
  })
})

describe('backtraces through the vDSO', () => {
  it("unwind date (a program we did not write) from inside the vDSO's clock_gettime, by the vDSO's own CFI", async () => {
    // clock: 'real': the vDSO as the kernel made it (the virtual clock rewrites its clock functions)
    const proc = await start('/bin/date', { clock: 'real' })
    const vdso = proc.maps.find((m) => m.path === '[vdso]')
    if (!vdso) throw new Error('no [vdso]')
    const image = parseElf(proc.readMemory(vdso.start, Number(vdso.end - vdso.start)), '[vdso]')
    const entry = image.findSymbol('__vdso_clock_gettime')?.value
    if (entry === undefined) throw new Error('no __vdso_clock_gettime')
    proc.breakAt(vdso.start - image.minLoadVaddr + entry)
    expect((await proc.cont()).kind).toBe('breakpoint')
    const frames = proc.createSnapshot().backtrace()
    expect(frames[0]?.location).toMatch(/^\[vdso\]!(__vdso_)?clock_gettime$/)
    expect(frames[1]?.module).toBe('libc.so.6')
    expect(frames.slice(1).every((f) => f.via === 'cfi')).toBe(true)
    expect(frames.at(-1)?.module).toBe('date') // stripped: date+0x..., down to its _start
    expect(frames.length).toBeGreaterThanOrEqual(4)
  })
})

describe('diff', () => {
  it('between two stops of the counter names exactly the changed globals and registers', async () => {
    // From the second stop on: before it, printf has not yet allocated stdout's buffer (a new [heap]).
    const proc = await atBump(['3'], 2)
    const a = proc.createSnapshot({ level: 'writable' })
    await proc.cont()
    const b = proc.createSnapshot({ level: 'writable' })
    const d = a.diff(b)
    expect(d.isEmpty).toBe(false)
    const globals = d.memory.filter((m) => m.identity.startsWith(fixture('counter'))).map((m) => m.location)
    expect(globals).toEqual(['counter!g_counter', 'counter!g_total'])
    const counter = d.memory.find((m) => m.location === 'counter!g_counter')
    expect(counter?.before).toEqual(new Uint8Array([1]))
    expect(counter?.after).toEqual(new Uint8Array([3]))
    expect(counter?.addressAfter).toBe(proc.resolve('g_counter'))
    expect(d.regs.map((r) => r.name)).toContain('rdi')
    expect(d.regs.find((r) => r.name === 'rdi')).toMatchObject({ thread: 1, before: 2n, after: 3n })
    expect(d.regs.map((r) => r.name)).not.toContain('rip') // the same breakpoint
    expect(d.maps).toEqual([])
    expect(d.threads).toEqual([])
    expect(d.backtrace).toEqual([])
    expect(d.toString()).toContain('counter!g_counter')
  })

  it('of snapshots of different levels compares at the lower one and says so', async () => {
    const proc = await atBump()
    const full = proc.createSnapshot({ level: 'full' })
    const base = proc.createSnapshot()
    const d = full.diff(base)
    expect(d.level).toBe('base')
    expect(d.levelNote).toBe('a is full, b is base: compared at base')
    expect(d.memory).toEqual([])
    expect(d.isEmpty).toBe(true)
  })

  /** Snapshots of the same stop (second bump) in two runs. */
  async function twoRuns(options: {
    aslr: boolean
    fixedRandom?: boolean
  }): Promise<{ a: Snapshot; b: Snapshot; starts: bigint[] }> {
    const snaps: Snapshot[] = []
    const starts: bigint[] = []
    for (let run = 0; run < 2; run++) {
      const proc = await start(fixture('counter'), { args: ['3'], ...options })
      proc.breakAt('bump')
      await proc.cont()
      await proc.cont()
      snaps.push(proc.createSnapshot({ level: 'writable' }))
      starts.push(proc.resolve('bump'))
      await proc.kill()
    }
    const [a, b] = snaps as [Snapshot, Snapshot]
    return { a, b, starts }
  }

  it('of the same stop in two runs is empty (aslr off)', async () => {
    const { a, b, starts } = await twoRuns({ aslr: false })
    expect(starts[0]).toBe(starts[1])
    const d = a.diff(b)
    expect(d.memory.map((m) => m.location)).toEqual([])
    expect(d.isEmpty).toBe(true)
  })

  it("of the same stop in two runs without fixedRandom shows the runtime's randomness", async () => {
    const { a, b } = await twoRuns({ aslr: false, fixedRandom: false })
    const d = a.diff(b)
    expect(d.isEmpty).toBe(false)
    // malloc's tcache key (getrandom) lives in libc's .bss, the stack canary in the thread's TLS block.
    expect(d.memory.some((m) => m.identity.startsWith('anon#1@libc.so.6'))).toBe(true)
    expect(d.regs).toEqual([])
  })

  it('of the same stop in two runs is empty with ASLR on too: pointers that moved with their map are equal', async () => {
    const { a, b, starts } = await twoRuns({ aslr: true })
    expect(starts[0]).not.toBe(starts[1])
    const d = a.diff(b)
    expect(d.memory.map((m) => m.location)).toEqual([])
    expect(d.isEmpty).toBe(true)
  })

  it("under ASLR without fixedRandom shows the loader's old addresses in uninitialized stack", async () => {
    // fixedRandom zeroes the dead stack at the entry point; without it, main's 4 KiB cwd buffer
    // holds fragments of the loader's stack addresses, different in every run.
    const { a, b } = await twoRuns({ aslr: true, fixedRandom: false })
    const d = a.diff(b)
    expect(d.memory.some((m) => m.identity === '[stack]' && m.addressAfter >= (b.regs.rsp ?? 0n))).toBe(true)
  })

  it('refuses snapshots of different architectures', async () => {
    const proc = await atBump()
    const a = proc.createSnapshot()
    const foreign = loadSnapshot(new URL('fixtures/aarch64-counter.procsnap.json', import.meta.url).pathname)
    expect(() => a.diff(foreign)).toThrow(expect.objectContaining({ code: 'ERR_SNAPSHOT_MISMATCH' }))
  })
})

it('nm agrees with the snapshot on where g_counter is', async () => {
  const proc = await atBump()
  const snap = proc.createSnapshot({ level: 'writable' })
  const exe = snap.maps.find((m) => m.path === fixture('counter') && m.offset === 0n)
  expect(snap.memory.resolve('g_counter')).toBe((exe?.start ?? 0n) + nmSymbol(fixture('counter'), 'g_counter'))
})
