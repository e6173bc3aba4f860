import { readdirSync, readlinkSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { fixture, le32, le64, start } from '../helpers.js'

describe('registers and memory', () => {
  it('aliases read the bits they name and write only those bits', async () => {
    const proc = await start(fixture('counter'), { args: ['1'] })
    await proc.runTo('bump')
    proc.regs.rax = 0x1122334455667788n
    expect(proc.regs.rax).toBe(0x1122334455667788n)
    expect(proc.regs.eax).toBe(0x55667788n)
    expect(proc.regs.ax).toBe(0x7788n)
    expect(proc.regs.al).toBe(0x88n)
    expect(proc.regs.ah).toBe(0x77n)
    proc.regs.ah = 0xffn
    expect(proc.regs.rax).toBe(0x112233445566ff88n)
    proc.regs.eax = 1n // gdb semantics: the upper half stays
    expect(proc.regs.rax).toBe(0x1122334400000001n)
    proc.regs.r8 = 0xaabbccdd11223344n
    expect([proc.regs.r8d, proc.regs.r8w, proc.regs.r8b]).toEqual([0x11223344n, 0x3344n, 0x44n])
    expect(proc.regs.rip).toBe(proc.resolve('bump'))
    expect(Object.keys(proc.regs.toJSON())).toContain('fs_base')
  })

  it('a register write changes what the program computes', async () => {
    const proc = await start(fixture('counter'), { args: ['1'] })
    await proc.runTo('bump')
    proc.regs.edi = 41n // bump(41) instead of bump(1)
    await proc.wait()
    expect(proc.stdout).toBe('bump 1 -> 41\ntotal 41\n')
  })

  it('memory writes change globals, and writes into code keep breakpoints in place', async () => {
    const proc = await start(fixture('counter'), { args: ['2'] })
    const bp = proc.breakAt('bump')
    await proc.cont()
    proc.writeMemory('g_counter', Uint8Array.of(100, 0, 0, 0))
    expect(le32(proc.readMemory('g_counter', 4))).toBe(100)
    expect(Buffer.from(proc.readMemory('g_message', 6)).toString('latin1')).toBe('hello\0')
    // Rewrite the first code byte of bump with itself: the breakpoint must still hit.
    const first = proc.readMemory('bump', 1)
    proc.writeMemory('bump', first)
    expect(proc.readMemory('bump', 1)).toEqual(first)
    await proc.cont()
    expect(bp.hits).toBe(2)
    await proc.wait()
    expect(proc.stdout).toBe('bump 1 -> 101\nbump 2 -> 103\ntotal 204\n')
  })

  it('reads across mappings and from the stack', async () => {
    const proc = await start(fixture('counter'), { args: ['1'] })
    await proc.runTo('bump')
    const ret = le64(proc.readMemory(proc.regs.rsp, 8))
    expect(proc.symbolize(ret).startsWith('counter!main+')).toBe(true)
    const text = proc.maps.find((m) => m.path === proc.path && m.perms.startsWith('r-x'))
    expect(text).toBeDefined()
    if (!text) return
    const span = proc.readMemory(text.end - 8n, 16) // r-x then r-- mapping of the same file
    expect(span.length).toBe(16)
  })

  it('maps agree with /proc/PID/maps and name the modules', async () => {
    const proc = await start(fixture('counter'))
    const names = proc.modules.map((m) => m.name)
    expect(names).toEqual(expect.arrayContaining(['counter', 'libc.so.6', 'ld-linux-x86-64.so.2']))
    for (const m of proc.maps) expect(m.start < m.end).toBe(true)
    expect(proc.maps.some((m) => m.path === '[stack]')).toBe(true)
  })
})

describe('stdio', () => {
  it('feeds stdin and captures stdout and stderr separately', async () => {
    const proc = await start(fixture('echo'), { stdin: 'hello\nworld\n' })
    expect(await proc.wait()).toEqual({ exitCode: 0 })
    expect(proc.stdout).toBe('hello\nworld\n')
    expect(proc.stderr).toBe('done\n')
  })

  it('drains output larger than a pipe while the process runs', async () => {
    const proc = await start(fixture('writer'))
    expect(await proc.wait()).toEqual({ exitCode: 0 })
    expect(proc.stdout.length).toBe(200 * 1024 + 4)
    expect(proc.stdout.endsWith('xend\n')).toBe(true)
  })

  it('feeds stdin larger than a pipe', async () => {
    const input = 'y'.repeat(300_000)
    const proc = await start(fixture('echo'), { stdin: input })
    await proc.wait()
    expect(proc.stdout.length).toBe(300_000)
  })

  it('stdin up to 1 MiB is in its pipe with its end-of-file once launch() returns: this process holds no end of that pipe', async () => {
    const own = (): string[] =>
      readdirSync('/proc/self/fd').flatMap((fd) => {
        try {
          return [readlinkSync(`/proc/self/fd/${fd}`)]
        } catch {
          return [] // the directory's own fd, closed once read
        }
      })
    for (const input of ['', 'hi\n', 'z'.repeat(4096), 'w'.repeat(4097), 'v'.repeat(1 << 20)]) {
      const proc = await start(fixture('echo'), { stdin: input })
      const pipe = readlinkSync(`/proc/${proc.pid}/fd/0`)
      expect(pipe).toMatch(/^pipe:\[\d+\]$/)
      // No event-loop turn since launch: a write end still open here would keep the program waiting for more.
      expect(own()).not.toContain(pipe)
      expect(await proc.wait()).toEqual({ exitCode: 0 })
      expect(proc.stdout).toBe(input)
    }
  })

  it('feeds stdin over 1 MiB through the event loop, intact', async () => {
    const input = `${'a'.repeat(1 << 20)}\nb`
    const proc = await start(fixture('echo'), { stdin: Buffer.from(input) })
    expect(await proc.wait()).toEqual({ exitCode: 0 })
    expect(proc.stdout).toBe(input)
  })

  it('stdout at a stop holds what was written before it', async () => {
    const proc = await start(fixture('counter'), { args: ['3'] })
    proc.breakAt('bump')
    await proc.cont()
    await proc.cont()
    expect(proc.stdout).toBe('bump 1 -> 1\n')
  })

  it('exit codes come back from wait()', async () => {
    const proc = await start(fixture('echo'), { args: ['7'] })
    expect(await proc.wait()).toEqual({ exitCode: 7 })
  })
})
