import { closeSync, openSync, readSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import type { Process } from '../../src/index.js'
import { caughtProcsnapError, fixture, le32, nmSymbol, start } from '../helpers.js'

/** The byte at an address as the kernel has it (int3 included), read through /proc/PID/mem: not through procsnap. */
function rawByte(proc: Process, address: bigint): number {
  const fd = openSync(`/proc/${proc.pid}/mem`, 'r')
  try {
    const buf = Buffer.alloc(1)
    readSync(fd, buf, 0, 1, address)
    return buf[0] ?? -1
  } finally {
    closeSync(fd)
  }
}

const thrown = caughtProcsnapError

describe('breakpoints', () => {
  it('never show their int3 in memory reads, and restore the code when removed', async () => {
    const path = fixture('counter')
    const proc = await start(path, { args: ['3'] })
    const before = proc.readMemory('bump', 16)
    const bp = proc.breakAt('bump')
    expect(proc.readMemory('bump', 16)).toEqual(before)
    // A read that starts before the breakpoint and ends after it, and one of the single byte.
    expect(proc.readMemory('bump+0', 1)).toEqual(before.subarray(0, 1))
    await proc.cont()
    expect(proc.readMemory(proc.regs.rip - 4n, 8).subarray(4)).toEqual(before.subarray(0, 4))
    bp.remove()
    expect(proc.breakpoints).toEqual([])
    expect(proc.readMemory('bump', 16)).toEqual(before)
    expect(await proc.cont()).toEqual({ kind: 'exited', exitCode: 0 })
    expect(bp.hits).toBe(1)
  })

  it('can be disabled and enabled; hit counts follow', async () => {
    const proc = await start(fixture('counter'), { args: ['5'] })
    const bp = proc.breakAt('bump')
    await proc.cont()
    bp.disable()
    const compute = proc.breakAt('compute')
    const ev = await proc.cont()
    expect(ev.kind === 'breakpoint' && ev.breakpoint).toBe(compute)
    expect(bp.hits).toBe(1)
    expect(le32(proc.readMemory('g_counter', 4))).toBe(15)
    bp.enable()
    expect((await proc.cont()).kind).toBe('exited')
  })

  it('setting `enabled` arms and disarms the int3, as enable() and disable() do', async () => {
    const proc = await start(fixture('counter'), { args: ['3'] })
    const bp = proc.breakAt('bump')
    const at = proc.resolve('bump')
    expect(rawByte(proc, at)).toBe(0xcc)
    bp.disable()
    expect(rawByte(proc, at)).not.toBe(0xcc)
    bp.enabled = true
    expect(bp.enabled).toBe(true)
    expect(rawByte(proc, at)).toBe(0xcc)
    const ev = await proc.cont()
    expect(ev.kind === 'breakpoint' && ev.breakpoint).toBe(bp)
    bp.enabled = false
    expect(bp.enabled).toBe(false)
    expect(rawByte(proc, at)).not.toBe(0xcc)
    expect(await proc.cont()).toEqual({ kind: 'exited', exitCode: 0 })
    expect(bp.hits).toBe(1)
    // Not a boolean: a typed error, and the state is unchanged.
    const err = thrown(() => {
      ;(bp as { enabled: unknown }).enabled = 'yes'
    })
    expect(err.code).toBe('ERR_BAD_VALUE')
    expect(err.message).toMatch(/Breakpoint\.enabled is true or false/)
    expect(bp.enabled).toBe(false)
  })

  it('the other fields are read-only: a write throws ERR_READ_ONLY and changes nothing', async () => {
    const proc = await start(fixture('counter'), { args: ['2'] })
    const bp = proc.breakAt('bump')
    await proc.cont()
    const before = { ...bp }
    expect(before).toMatchObject({ hits: 1, pending: false, removed: false, enabled: true, location: 'bump' })
    const writable = bp as unknown as Record<string, unknown>
    for (const [field, value] of [
      ['hits', 0],
      ['address', 0x1000n],
      ['pending', true],
      ['removed', true],
      ['description', 'elsewhere'],
      ['id', 99],
      ['location', 'compute'],
    ] as const) {
      const err = thrown(() => {
        writable[field] = value
      })
      expect(err.code).toBe('ERR_READ_ONLY')
      expect(err.message).toContain(`Breakpoint.${field} is kept by procsnap`)
    }
    expect({ ...bp }).toEqual(before)
    expect(rawByte(proc, proc.resolve('bump'))).toBe(0xcc)
    await proc.cont()
    expect(bp.hits).toBe(2)
  })

  it('two breakpoints at one address share the site and both count', async () => {
    const proc = await start(fixture('counter'), { args: ['2'] })
    const a = proc.breakAt('bump')
    const b = proc.breakAt(`counter+0x${nmSymbol(fixture('counter'), 'bump').toString(16)}`)
    expect(b.address).toBe(a.address)
    await proc.cont()
    expect([a.hits, b.hits]).toEqual([1, 1])
    a.remove()
    await proc.cont()
    expect([a.hits, b.hits]).toEqual([1, 2])
  })

  it('symbol+offset, module!symbol and absolute bigint locations', async () => {
    const proc = await start(fixture('counter'), { args: ['1'] })
    const bump = proc.resolve('bump')
    expect(proc.resolve('bump+4')).toBe(bump + 4n)
    expect(proc.resolve('counter!bump+0x4')).toBe(bump + 4n)
    expect(proc.symbolize(bump + 4n)).toBe('counter!bump+0x4')
    const bp = proc.breakAt(bump + 4n)
    const ev = await proc.cont()
    expect(ev.kind === 'breakpoint' && ev.pc).toBe(bump + 4n)
    expect(ev.kind === 'breakpoint' && ev.location).toBe('counter!bump+0x4')
    expect(bp.hits).toBe(1)
  })

  it('break on libc.so.6!write in a program we did not write (sort)', async () => {
    const proc = await start('/usr/bin/sort', { stdin: 'b\na\n' })
    const bp = proc.breakAt('libc.so.6!write')
    const ev = await proc.cont()
    expect(ev.kind).toBe('breakpoint')
    if (ev.kind !== 'breakpoint') return
    expect(ev.location).toBe('libc.so.6!write')
    expect(proc.regs.rdi).toBe(1n) // fd
    const len = Number(proc.regs.rdx)
    // stdout is a terminal (a pty): glibc writes each line as it ends.
    expect(Buffer.from(proc.readMemory(proc.regs.rsi, len)).toString()).toBe('a\n')
    expect(proc.stdout).toBe('') // not written yet
    await proc.cont()
    expect(Buffer.from(proc.readMemory(proc.regs.rsi, Number(proc.regs.rdx))).toString()).toBe('b\n')
    expect(proc.stdout).toBe('a\n')
    bp.remove()
    expect(await proc.wait()).toEqual({ exitCode: 0 })
    expect(proc.stdout).toBe('a\nb\n')
  })

  it('a breakpoint in a library loaded later with dlopen stays pending, then hits', async () => {
    const proc = await start(fixture('dlopen'), { args: [fixture('libplugin.so')] })
    const bp = proc.breakAt('libplugin.so!plugin_fn')
    expect(bp.pending).toBe(true)
    expect(bp.address).toBeUndefined()
    const ev = await proc.cont()
    expect(ev.kind).toBe('breakpoint')
    if (ev.kind !== 'breakpoint') return
    expect(ev.breakpoint).toBe(bp)
    expect(bp.pending).toBe(false)
    expect(ev.location).toBe('libplugin.so!plugin_fn')
    expect(proc.regs.edi).toBe(20n)
    const fin = await proc.finish()
    expect(fin.kind === 'step' && fin.returnValue).toBe(41n)
    expect(await proc.wait()).toEqual({ exitCode: 0 })
    expect(proc.stdout).toBe('plugin 41\n')
  })

  it('after an exec (bash -c ending in a command execs it), a libc breakpoint arms again in the new program and runTo reaches it', async () => {
    const proc = await start('bash', { args: ['-c', 'x=1; date -u +%Y'] })
    const bp = proc.breakAt('libc.so.6!exit')
    const first = await proc.cont()
    expect(first.kind === 'breakpoint' && first.breakpoint).toBe(bp)
    // the exit of date, not of bash: its own libc is mapped and read back
    expect(proc.createSnapshot().exe).toMatch(/\/date$/)
    expect(await proc.wait()).toEqual({ exitCode: 0 })
    const again = await start('bash', { args: ['-c', 'x=1; date -u +%Y'] })
    const ev = await again.runTo('libc.so.6!exit')
    expect(ev.kind === 'breakpoint' && ev.location).toBe('libc.so.6!exit')
    expect(again.readMemory('libc.so.6!exit', 1)).not.toEqual(Uint8Array.of(0xcc))
    await again.kill()
  })
})

describe('a pending breakpoint that never resolves says so', () => {
  it('a typo of libc in a program we did not write (cat): the exit event names it, what loaded, and the fix', async () => {
    const proc = await start('/bin/cat', { stdin: 'hello\n' })
    const bp = proc.breakAt('libcc!write')
    expect(bp.pending).toBe(true)
    const end = await proc.cont()
    expect(end.kind).toBe('exited')
    if (end.kind !== 'exited') return
    expect(end.exitCode).toBe(0)
    expect(end.warnings).toHaveLength(1)
    const [warning] = end.warnings ?? []
    expect(warning).toMatch(
      new RegExp(
        `^Breakpoint ${bp.id} at 'libcc!write' stayed pending: no library named 'libcc' is loaded, and the program needs none by that name`,
      ),
    )
    expect(warning).toMatch(/\(loaded in this run: cat, libc\.so\.6, ld-linux-x86-64\.so\.2\)/)
    expect(warning).toMatch(/Did you mean 'libc!write'\?$/)
    expect(bp.pending).toBe(true) // still, after the end
    expect(proc.stdout).toBe('hello\n')
  })

  it('runTo’s ERR_PROCESS_EXITED and a cont that times out list the pending breakpoints', async () => {
    const proc = await start(fixture('counter'), { args: ['0'] })
    proc.breakAt('libcc!write')
    const err = await proc.runTo('bump').then(
      () => undefined,
      (error: unknown) => error as { code?: string; message: string },
    )
    expect(err?.code).toBe('ERR_PROCESS_EXITED')
    expect(err?.message).toMatch(/exited with code 0 before reaching counter!bump/)
    expect(err?.message).toMatch(
      /\nBreakpoint \d+ at 'libcc!write' stayed pending: no library named 'libcc'.*Did you mean 'libc!write'\?/,
    )

    const sleeper = await start(fixture('sleeper'))
    sleeper.breakAt('libcc!nanosleep')
    const timeout = await sleeper.cont({ timeout: 200 }).then(
      () => undefined,
      (error: unknown) => error as { code?: string; message: string },
    )
    expect(timeout?.code).toBe('ERR_TIMEOUT')
    expect(timeout?.message).toMatch(
      /\nBreakpoint \d+ at 'libcc!nanosleep' is still pending: no library named 'libcc' is loaded/,
    )
  })

  it('a library that loads without the symbol: the warning says so, with the near name', async () => {
    const proc = await start(fixture('dlopen'), { args: [fixture('libplugin.so')] })
    const typo = proc.breakAt('libplugin.so!plugin_fm')
    const wrongLib = proc.breakAt('libplugim!plugin_fn')
    const end = await proc.cont()
    expect(end.kind === 'exited' && end.warnings).toEqual([
      `Breakpoint ${typo.id} at 'libplugin.so!plugin_fm' stayed pending: No symbol 'plugin_fm' ` +
        `in module 'libplugin.so'. Did you mean 'libplugin.so!plugin_fn'? Use 'module!symbol' for ` +
        `a library symbol, 'module+0xoffset', or an absolute bigint address.`,
      // dlclose'd before the end: still listed among the libraries this run loaded.
      `Breakpoint ${wrongLib.id} at 'libplugim!plugin_fn' stayed pending: no library named ` +
        `'libplugim' is loaded, and the program needs none by that name: only a dlopen() of one ` +
        `would arm it (loaded in this run: dlopen, libc.so.6, ld-linux-x86-64.so.2, libplugin.so). ` +
        `Did you mean 'libplugin!plugin_fn'?`,
    ])
  })

  it('a static program loads no library: the warning says so and points at its own symbol', async () => {
    const proc = await start(fixture('counter-static'), { args: ['1'] })
    proc.breakAt('libc!write')
    const end = await proc.cont()
    expect(end.kind === 'exited' && end.warnings?.[0]).toMatch(
      /stayed pending: the program is statically linked: it loads no library, so no 'libc' will come\. Did you mean 'write'\?$/,
    )
  })

  it('no warning once it resolved, when it was removed or disabled, or when kill() ended the process', async () => {
    const resolved = await start(fixture('dlopen'), { args: [fixture('libplugin.so')] })
    resolved.breakAt('libplugin.so!plugin_fn')
    expect((await resolved.cont()).kind).toBe('breakpoint')
    expect(await resolved.cont()).toEqual({ kind: 'exited', exitCode: 0 })

    const quiet = await start(fixture('counter'), { args: ['1'] })
    quiet.breakAt('libcc!write').remove()
    quiet.breakAt('libcc!read').disable()
    expect(await quiet.cont()).toEqual({ kind: 'exited', exitCode: 0 })

    const killed = await start(fixture('forever'))
    killed.breakAt('libcc!write')
    const pending = killed.cont()
    await killed.kill()
    expect(await pending).toEqual({ kind: 'killed', signal: 'SIGKILL' })
  })
})

describe('stepping over a breakpoint by emulation', () => {
  async function stops(emulateStepOver: boolean): Promise<Record<string, bigint>[]> {
    const proc = await start(fixture('recursion'), { args: ['4'], emulateStepOver })
    proc.breakAt('fact') // push %rbp: emulated
    proc.breakAt('fact+1') // mov %rsp,%rbp: emulated
    proc.breakAt('fact+4') // sub $0x20,%rsp: single-stepped
    const seen: Record<string, bigint>[] = []
    for (let ev = await proc.cont(); ev.kind === 'breakpoint'; ev = await proc.cont()) {
      seen.push({ ...proc.regs.toJSON(), stackTop: Buffer.from(proc.readMemory(proc.regs.rsp, 8)).readBigUInt64LE(0) })
    }
    expect(proc.stdout).toBe('fact(4) = 24\n')
    return seen
  }

  it('leaves every register and the stack exactly as single-stepping does', async () => {
    const emulated = await stops(true)
    const stepped = await stops(false)
    expect(emulated.length).toBe(12) // 4 calls x 3 breakpoints
    expect(emulated).toEqual(stepped)
  })
})
