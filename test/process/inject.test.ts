// Syscall injection: one system call run inside a stopped thread, with the thread (registers, the
// bytes of its code, its pending signal) as it was afterwards, at every kind of stop.
import { readFileSync, readdirSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import type { Process } from '../../src/index.js'
import { fixture, start } from '../helpers.js'

const SYS = { write: 1, close: 3, getpid: 39, gettid: 186, dup: 32, kill: 62 } as const

/** Every general register of every thread, as the kernel reports them at this stop. */
function allRegisters(proc: Process): Record<string, string>[] {
  return proc.threads.map((t) => Object.fromEntries(Object.entries(t.regs).map(([k, v]) => [k, String(v)])))
}

/** The pid in the innermost PID namespace of `pid`, as the process itself sees it (NSpid's last field). */
function innerPid(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'latin1')
    .split('\n')
    .find((l) => l.startsWith('NSpid:'))
  return Number(line?.trim().split(/\s+/).at(-1))
}

/** A thread's tid in the innermost PID namespace. */
function innerTid(pid: number, tid: number): number {
  const line = readFileSync(`/proc/${pid}/task/${tid}/status`, 'latin1')
    .split('\n')
    .find((l) => l.startsWith('NSpid:'))
  return Number(line?.trim().split(/\s+/).at(-1))
}

/** The bytes of the thread's code around its pc and of the vDSO's text, as they are in memory. */
function codeAround(proc: Process): Uint8Array {
  return proc.readMemory(proc.regs.rip, 16)
}

describe('injectSyscall', () => {
  it.each([{ site: 'vdso' as const }, { site: 'pc' as const }])(
    'getpid at a breakpoint returns the pid the process sees, registers and code unchanged ($site)',
    async ({ site }) => {
      const plain = await start(fixture('counter'), { stdout: 'pipe' })
      await plain.wait()
      const proc = await start(fixture('counter'), { stdout: 'pipe' })
      proc.breakAt('bump')
      await proc.cont()
      const regs = allRegisters(proc)
      const code = codeAround(proc)
      expect(await proc.injectSyscall(SYS.getpid, [], { site })).toBe(BigInt(innerPid(proc.pid)))
      expect(allRegisters(proc)).toEqual(regs)
      expect(codeAround(proc)).toEqual(code)
      // The program goes on as if nothing happened: the breakpoint is hit again, the output is the same.
      expect((await proc.cont()).kind).toBe('breakpoint')
      expect(await proc.wait()).toEqual({ exitCode: 0 })
      expect(proc.stdout).toBe(plain.stdout)
    },
  )

  it('isolated (the default), getpid answers 1 or the namespace pid, not the host pid', async () => {
    const proc = await start(fixture('counter'))
    const got = Number(await proc.injectSyscall(SYS.getpid))
    expect(got).toBe(innerPid(proc.pid))
    if (proc.isolation.isolated) expect(got).toBe(proc.isolation.pid)
    else expect(got).toBe(proc.pid)
  })

  it('write(1, ...) prints into the program output, at the first stop after launch', async () => {
    const proc = await start(fixture('counter'), { stdout: 'pipe' })
    const text = 'injected!\n'
    const bytes = new TextEncoder().encode(text)
    // A scratch buffer below the red zone of the stack: written, used, then put back.
    const at = proc.regs.rsp - 4096n
    const before = proc.readMemory(at, bytes.length)
    proc.writeMemory(at, bytes)
    expect(await proc.injectSyscall(SYS.write, [1n, at, BigInt(bytes.length)])).toBe(BigInt(bytes.length))
    proc.writeMemory(at, before)
    await proc.wait()
    expect(proc.stdout.startsWith(text)).toBe(true)
  })

  it('returns -errno for a failing call, and a dup()ed fd can be closed again (no trace in /proc/PID/fd)', async () => {
    const proc = await start(fixture('counter'))
    proc.breakAt('bump')
    await proc.cont()
    expect(await proc.injectSyscall(SYS.close, [12345n])).toBe(-9n) // EBADF
    const fds = readdirSync(`/proc/${proc.pid}/fd`).sort()
    const fd = await proc.injectSyscall(SYS.dup, [0n])
    expect(fd).toBeGreaterThan(2n)
    expect(readdirSync(`/proc/${proc.pid}/fd`)).toContain(String(fd))
    expect(await proc.injectSyscall(SYS.close, [fd])).toBe(0n)
    expect(readdirSync(`/proc/${proc.pid}/fd`).sort()).toEqual(fds)
  })

  it('works at a breakpoint of a multi-threaded process, in each thread, the others staying stopped', async () => {
    const proc = await start(fixture('threads'), { args: ['3', '50'] })
    proc.breakAt('worker_tick')
    await proc.cont()
    await proc.cont()
    const regs = allRegisters(proc)
    let ran = 0
    for (const t of proc.threads) {
      // A thread the serial schedule switched out at the entry of a syscall of its own is refused, and left as it was.
      const result = await proc.injectSyscall(SYS.gettid, [], { tid: t.tid }).catch((error: unknown) => error)
      if (typeof result === 'bigint') {
        expect(result).toBeGreaterThan(0n)
        ran++
      } else
        expect(result).toMatchObject({ code: 'ERR_INJECT_FAILED', message: expect.stringMatching(/entry/) as unknown })
      for (const other of proc.threads) {
        const stat = readFileSync(`/proc/${proc.pid}/task/${other.tid}/stat`, 'latin1')
        expect(stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3)).toBe('t')
      }
    }
    expect(ran).toBeGreaterThanOrEqual(1)
    expect(allRegisters(proc)).toEqual(regs)
    // By default the thread of the stop runs it (it reported a breakpoint: it can).
    expect(await proc.injectSyscall(SYS.gettid)).toBe(BigInt(innerTid(proc.pid, proc.thread.tid)))
    await proc.wait()
    expect(proc.exit?.exitCode).toBe(0)
  })

  it('at a signal stop, the pending signal and its siginfo are delivered afterwards as they were', async () => {
    const proc = await start(fixture('segfault'))
    const stop = await proc.cont()
    expect(stop.kind).toBe('signal')
    const regs = allRegisters(proc)
    expect(await proc.injectSyscall(SYS.getpid)).toBeGreaterThan(0n)
    expect(allRegisters(proc)).toEqual(regs)
    const again = await proc.cont()
    expect(again).toMatchObject({ kind: 'killed', signal: 'SIGSEGV' })
  })

  it('a signal sent to the thread during the call is not lost: it arrives when the thread runs', async () => {
    const proc = await start(fixture('counter'))
    proc.breakAt('bump')
    await proc.cont()
    // kill(own pid, SIGUSR1) from inside: the signal arrives during the injected step, is kept, and
    // ends the process (default action) once it runs on.
    const self = await proc.injectSyscall(SYS.getpid)
    expect(await proc.injectSyscall(SYS.kill, [self, 10n])).toBe(0n)
    expect(proc.regs.rip).toBe(proc.resolve('bump'))
    const next = await proc.cont()
    expect(next).toMatchObject({ kind: 'signal', signal: 'SIGUSR1' })
    expect(await proc.cont()).toMatchObject({ kind: 'killed', signal: 'SIGUSR1' })
  })

  it('a signal pending before the call is kept for the program, not delivered into the injected call', async () => {
    const proc = await start(fixture('counter'))
    proc.breakAt('bump')
    await proc.cont()
    // Pending while the thread is stopped: it is dequeued as soon as the injected step starts.
    process.kill(proc.pid, 'SIGUSR1')
    const regs = allRegisters(proc)
    expect(await proc.injectSyscall(SYS.getpid)).toBe(BigInt(innerPid(proc.pid)))
    expect(allRegisters(proc)).toEqual(regs)
    expect(await proc.cont()).toMatchObject({ kind: 'signal', signal: 'SIGUSR1' })
    expect(await proc.cont()).toMatchObject({ kind: 'killed', signal: 'SIGUSR1' })
  })

  it('works in a program we did not write, stopped at launch (sleep) and interrupted in its sleep', async () => {
    const proc = await start('/usr/bin/sleep', { args: ['1'], clock: 'real' })
    expect(await proc.injectSyscall(SYS.getpid)).toBe(BigInt(innerPid(proc.pid)))
    // Interrupted inside clock_nanosleep: the kernel will restart the sleep when the thread runs on.
    await expect(proc.cont({ timeout: 300 })).rejects.toMatchObject({ code: 'ERR_TIMEOUT' })
    const regs = allRegisters(proc)
    expect(BigInt.asIntN(64, BigInt(regs[0]?.rax ?? '0'))).toBeLessThan(-511n) // -ERESTART_*
    expect(await proc.injectSyscall(SYS.getpid)).toBe(BigInt(innerPid(proc.pid)))
    expect(allRegisters(proc)).toEqual(regs)
    // The sleep is restarted, not cut short by an EINTR: sleep exits 0.
    expect(await proc.wait()).toEqual({ exitCode: 0 })
  })

  it('works in python3 at launch', async () => {
    const proc = await start('/usr/bin/python3', { args: ['-c', 'print(6*7)'], stdout: 'pipe' })
    expect(await proc.injectSyscall(SYS.getpid)).toBe(BigInt(innerPid(proc.pid)))
    await proc.wait()
    expect(proc.stdout.trim()).toBe('42')
  })
})
