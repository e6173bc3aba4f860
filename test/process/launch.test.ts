import { describe, expect, it } from 'vitest'
import { fixture, le32, nmSymbol, start } from '../helpers.js'

const VARIANTS = ['counter', 'counter-nopie', 'counter-static', 'counter-static-pie', 'counter-O2']

describe('launch stops at the entry point of every kind of binary', () => {
  for (const name of VARIANTS) {
    it(`${name}: entry point, bump hit twice with the right argument, exit 0`, async () => {
      const path = fixture(name)
      const proc = await start(path, { args: ['2'] })
      const exe = proc.modules.find((m) => m.path === proc.path)
      expect(exe).toBeDefined()
      // The pc at launch is the ELF entry point, relocated.
      expect(proc.regs.rip).toBe((exe?.bias ?? 0n) + (exe?.elf.entry ?? 0n))
      const bp = proc.breakAt('bump')
      // The breakpoint address is the symbol's link-time value (nm) plus the load bias.
      expect(bp.address).toBe((exe?.bias ?? 0n) + nmSymbol(path, 'bump'))
      for (const by of [1n, 2n]) {
        const ev = await proc.cont()
        expect(ev.kind).toBe('breakpoint')
        expect(proc.regs.rdi).toBe(by)
      }
      expect(await proc.wait()).toEqual({ exitCode: 0 })
      expect(proc.stdout).toBe('bump 1 -> 1\nbump 2 -> 3\ntotal 4\n')
    })
  }

  it('a PIE is loaded at 0x555555554000 with ASLR off, at a random base with ASLR on', async () => {
    const a = await start(fixture('counter'))
    const b = await start(fixture('counter'))
    expect(a.modules[0]?.base).toBe(0x555555554000n)
    expect(b.modules[0]?.base).toBe(0x555555554000n)
    expect(a.regs.rsp).toBe(b.regs.rsp)
    const bases = new Set<bigint>()
    for (let i = 0; i < 3; i++) {
      const r = await start(fixture('counter'), { aslr: true })
      bases.add(r.modules[0]?.base ?? 0n)
      await r.kill()
    }
    expect(bases.size).toBeGreaterThan(1)
  })

  it('passes args, env and cwd, and uses a fixed environment by default', async () => {
    // Not isolated: an isolated program sees its cwd at /tmp/procsnap (test/process/isolate.test.ts).
    const proc = await start(fixture('counter'), {
      args: ['1', '--cwd'],
      env: { FOO: 'bar' },
      cwd: '/tmp',
      isolate: false,
    })
    await proc.wait()
    expect(proc.stdout).toBe('bump 1 -> 1\ntotal 1\nFOO=bar\ncwd /tmp\n')
    const env = await start('/usr/bin/env')
    await env.wait()
    expect(env.stdout.trim().split('\n').sort()).toEqual([
      'GLIBC_TUNABLES=glibc.pthread.rseq=0',
      'LANG=C',
      'LC_ALL=C',
      'LD_BIND_NOW=1',
      'PATH=/usr/local/bin:/usr/bin:/bin',
    ])
    const inherited = await start('/usr/bin/env', { inheritEnv: true, env: { PATH: undefined } })
    await inherited.wait()
    expect(inherited.stdout).not.toMatch(/^PATH=/m)
    expect(inherited.stdout).toMatch(/^HOME=/m)
  })

  it('runs programs we did not write: /bin/true, and /usr/bin/sort reading stdin', async () => {
    const t = await start('/bin/true')
    expect(await t.wait()).toEqual({ exitCode: 0 })
    const sort = await start('/usr/bin/sort', { stdin: 'pear\napple\nfig\n' })
    expect(await sort.wait()).toEqual({ exitCode: 0 })
    expect(sort.stdout).toBe('apple\nfig\npear\n')
  })

  it('starts the target with only fds 0, 1 and 2 open', async () => {
    const proc = await start('/bin/ls', { args: ['/proc/self/fd'] })
    await proc.wait()
    // ls itself opens one fd for the directory it lists. On a terminal (stdout is a pty) it prints columns.
    expect(proc.stdout.trim().split(/\s+/).map(Number).sort()).toEqual([0, 1, 2, 3])
  })

  it('stripped binaries still resolve their dynamic symbols, and say why main is missing', async () => {
    const proc = await start(fixture('counter-stripped'), { args: ['1'] })
    expect(() => proc.breakAt('main')).toThrow(/stripped/)
    const bp = proc.breakAt('libc.so.6!puts')
    proc.breakAt('printf')
    const ev = await proc.cont()
    expect(ev.kind).toBe('breakpoint')
    if (ev.kind === 'breakpoint') expect(ev.location).toBe('libc.so.6!printf')
    expect(bp.pending).toBe(false)
    expect(le32(proc.readMemory('counter-stripped+0x0', 4))).toBe(0x464c457f) // \x7fELF
  })
})
