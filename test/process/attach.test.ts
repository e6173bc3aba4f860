// attach(): processes started outside procsnap (not our children), programs we did not write,
// every thread stopped, breakpoints and snapshots, detach leaving them to their normal end, refusals.
import { execFileSync, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterEach, describe, expect, it } from 'vitest'
import { attach, launch, livePids, type Process } from '../../src/index.js'
import { killLiveTracees } from '../../src/process/registry.js'
import { useDist } from '../dist.js'
import { fixture, le32, nmSymbol } from '../helpers.js'
import { parentOf, startOutsider, stateOf, tracerOf } from './outsider.js'

const looper = fixture('looper')
// The system's python3 (not a version manager's shim script that execs it later).
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3'

/** Polls until `pid` runs an executable matching `exe` and sleeps in the kernel (state 'S'). */
async function asleepIn(pid: number, exe: RegExp): Promise<void> {
  const until = performance.now() + 5000
  while (!(exe.test(exeOf(pid)) && stateOf(pid) === 'S') && performance.now() < until) await sleep(10)
  expect(exeOf(pid)).toMatch(exe)
}

function exeOf(pid: number): string {
  try {
    return readlinkSync(`/proc/${pid}/exe`)
  } catch {
    return ''
  }
}
const attached: Process[] = []

async function attachTo(pid: number): Promise<Process> {
  const proc = await attach(pid)
  attached.push(proc)
  return proc
}

afterEach(async () => {
  for (const p of attached.splice(0)) await p[Symbol.asyncDispose]()
  expect(livePids()).toEqual([])
})

/** The code of what `run` rejects with. */
async function rejection(run: () => Promise<unknown>): Promise<{ code?: string; message: string }> {
  try {
    await run()
  } catch (error) {
    return error as { code?: string; message: string }
  }
  throw new Error('expected a rejection')
}

describe('attach', () => {
  it('stops a busy process that is not our child, reads a global, snapshots it, and detaches it to its normal end', async () => {
    const o = await startOutsider([looper, 'busy', '{dir}'])
    expect(parentOf(o.pid)).not.toBe(process.pid)
    const proc = await attachTo(o.pid)
    expect(proc.attached).toBe(true)
    expect(proc.lastStop).toBeUndefined()
    expect(proc.isolation).toEqual({ isolated: false, reason: 'attached' })
    expect(proc.stdout).toBe('')
    expect(proc.path).toBe(looper)
    expect(proc.argv).toEqual([looper, 'busy', o.dir])
    expect(tracerOf(o.pid)).toBe(process.pid)
    expect(stateOf(o.pid)).toBe('t')
    expect(le32(proc.readMemory('g_marker', 4))).toBe(4242)
    const exe = proc.modules.find((m) => m.path === looper)
    expect(proc.resolve('g_marker')).toBe((exe?.bias ?? 0n) + nmSymbol(looper, 'g_marker'))
    expect(proc.symbolize(proc.regs.rip)).toMatch(/^looper!churn/)
    const snap = proc.createSnapshot({ level: 'writable' })
    expect(snap.stop?.kind).toBe('attach')
    expect(le32(snap.memory.read('g_marker', 4))).toBe(4242)
    // Stopped: the counter stands still.
    const count = proc.readMemory('g_count', 8)
    await sleep(20)
    expect(proc.readMemory('g_count', 8)).toEqual(count)
    await proc.detach()
    expect(tracerOf(o.pid)).toBe(0)
    expect(livePids()).not.toContain(o.pid)
    expect(() => proc.regs).toThrow(
      expect.objectContaining({ code: 'ERR_PROCESS_ENDED', message: expect.stringContaining('detached') as unknown }),
    )
    await proc.detach() // twice: nothing more to do
    await sleep(30)
    expect(stateOf(o.pid)).toBe('R')
    process.kill(o.pid, 'SIGUSR1')
    expect(await o.waitStatus()).toBe(7)
    expect(o.output()).toBe('count 1\n')
  })

  it('breaks in a library of the attached process; detach at the breakpoint leaves it to finish normally', async () => {
    const o = await startOutsider([looper, 'read', '{dir}'], { fifo: true })
    const proc = await attachTo(o.pid)
    expect(proc.symbolize(proc.regs.rip)).toMatch(/^libc\.so\.6!/)
    const bp = proc.breakAt('libc.so.6!write')
    o.write('hello')
    const ev = await proc.cont()
    expect(ev).toMatchObject({ kind: 'breakpoint', breakpoint: bp })
    // The line it is about to print, in its stdio buffer (rsi = buf, rdx = count).
    const line = proc.readMemory(proc.regs.rsi, Number(proc.regs.rdx))
    expect(Buffer.from(line).toString()).toBe('got hello\n')
    await proc.detach()
    expect(await o.waitStatus()).toBe(0)
    expect(o.output()).toBe('got hello\n')
  })

  it('steps, runs to a location, finishes a function and takes a full snapshot of an attached process', async () => {
    const o = await startOutsider([looper, 'read', '{dir}'], { fifo: true })
    const proc = await attachTo(o.pid)
    // Stopped in read(2), which the kernel restarts at the next resume: one instruction is the whole
    // syscall again (as gdb's stepi, it waits for the data), and it returns what it read.
    const pc = proc.regs.rip
    o.write('full')
    const step = await proc.step()
    expect(step).toMatchObject({ kind: 'step', pc })
    expect(proc.regs.rax).toBe(4n)
    const at = await proc.runTo('libc.so.6!write')
    expect(at).toMatchObject({ kind: 'breakpoint', location: 'libc.so.6!write' })
    const full = proc.createSnapshot({ level: 'full' })
    const text = full.maps.find((m) => m.path === looper && m.perms.includes('x'))
    expect(text?.content?.length).toBe(Number((text?.end ?? 0n) - (text?.start ?? 0n)))
    const back = await proc.finish()
    expect(back.kind === 'step' && back.returnValue).toBe(BigInt('got full\n'.length))
    await proc.detach()
    expect(await o.waitStatus()).toBe(0)
    expect(o.output()).toBe('got full\n')
  })

  it('stops every thread of a multi-threaded process, and its exit code is still its own after detach', async () => {
    const o = await startOutsider([looper, 'threads', '{dir}', '3'])
    const proc = await attachTo(o.pid)
    const tasks = readdirSync(`/proc/${o.pid}/task`)
      .map(Number)
      .sort((a, b) => a - b)
    expect(proc.threads.map((t) => t.tid).sort((a, b) => a - b)).toEqual(tasks)
    expect(proc.threads[0]?.tid).toBe(o.pid)
    for (const tid of tasks) expect(stateOf(`${o.pid}/task/${tid}`)).toBe('t')
    const workers = proc.threads.slice(1).map((t) => proc.symbolize(t.pc))
    expect(workers).toHaveLength(3)
    for (const w of workers) expect(w).toMatch(/^looper!churn/)
    const snap = proc.createSnapshot({ level: 'base' })
    expect(snap.threads).toHaveLength(4)
    await proc.detach()
    for (const tid of tasks) expect(tracerOf(`${o.pid}/task/${tid}`)).toBe(0)
    process.kill(o.pid, 'SIGUSR1')
    expect(await o.waitStatus()).toBe(7)
    expect(o.output()).toBe('joined 3\n')
  })

  it('attaches to programs we did not write: sleep, whose interrupted nanosleep resumes, and python3', async () => {
    const s = await startOutsider(['sleep', '0.6'], { pidFile: false })
    await asleepIn(s.pid, /sleep$/)
    const sleepProc = await attachTo(s.pid)
    expect(sleepProc.threads).toHaveLength(1)
    expect(sleepProc.modules.map((m) => m.name)).toContain('libc.so.6')
    expect(sleepProc.symbolize(sleepProc.regs.rip)).toMatch(/^libc\.so\.6!/)
    await sleepProc.detach()
    // The sleep goes on where it was (restart_syscall) and ends normally, not early with EINTR.
    expect(s.status()).toBeUndefined()
    expect(await s.waitStatus()).toBe(0)

    const py = await startOutsider(
      [
        PYTHON,
        '-c',
        'import sys\nmarker = "procsnap-" + "marker"\ndata = sys.stdin.read()\nprint(len(data), marker)\nsys.exit(5)',
      ],
      { pidFile: false, fifo: true },
    )
    {
      await asleepIn(py.pid, /python/) // started, and waits in its read of stdin
      const proc = await attachTo(py.pid)
      const snap = proc.createSnapshot({ level: 'writable' })
      expect(proc.modules.some((m) => /python/.test(m.name))).toBe(true)
      // The string python3 built at run time is in its heap.
      const heap = snap.maps.filter((m) => m.content && Buffer.from(m.content).includes('procsnap-marker'))
      expect(heap.length).toBeGreaterThan(0)
      await proc.detach()
      py.write('four')
      py.closeInput()
    }
    expect(await py.waitStatus()).toBe(5)
    expect(py.output()).toBe('4 procsnap-marker\n')
  })

  it('gives up an attached process at the end of a test by detaching it, never killing it', async () => {
    const o = await startOutsider([looper, 'busy', '{dir}'])
    {
      const proc = await attach(o.pid)
      proc.breakAt('churn')
    }
    expect(await killLiveTracees()).toBe(1)
    expect(tracerOf(o.pid)).toBe(0)
    await sleep(30)
    expect(stateOf(o.pid)).toBe('R')
    process.kill(o.pid, 'SIGUSR1')
    expect(await o.waitStatus()).toBe(7)
  })

  it('attaches to a process stopped by SIGSTOP, runs it when continued, and leaves it stopped at detach (as gdb)', async () => {
    const o = await startOutsider([looper, 'busy', '{dir}'])
    process.kill(o.pid, 'SIGSTOP')
    const until = performance.now() + 5000
    while (stateOf(o.pid) !== 'T' && performance.now() < until) await sleep(5)
    const proc = await attachTo(o.pid)
    const before = proc.readMemory('g_count', 8)
    await expect(proc.cont({ timeout: 100 })).rejects.toMatchObject({ code: 'ERR_TIMEOUT' })
    expect(proc.readMemory('g_count', 8)).not.toEqual(before) // it ran
    await proc.detach()
    await sleep(20)
    expect(stateOf(o.pid)).toBe('T') // its job-control stop holds
    process.kill(o.pid, 'SIGCONT')
    process.kill(o.pid, 'SIGUSR1')
    expect(await o.waitStatus()).toBe(7)
  })

  it('await using detaches; kill() kills an attached process on request', async () => {
    const o = await startOutsider([looper, 'busy', '{dir}'])
    {
      await using proc = await attach(o.pid)
      expect(proc.threads).toHaveLength(1)
    }
    expect(tracerOf(o.pid)).toBe(0)
    const proc = await attachTo(o.pid)
    expect(await proc.kill()).toEqual({ signal: 'SIGKILL' })
    expect(await o.waitStatus()).toBe(137)
  })

  describe('a tracer that ends without detaching', () => {
    const dist = useDist()
    it('leaves the process running, breakpoints removed (the exit hook detaches it)', async () => {
      const o = await startOutsider([looper, 'read', '{dir}'], { fifo: true })
      {
        const script = `
          import { attach } from './index.js'
          const proc = await attach(${o.pid})
          proc.breakAt('libc.so.6!write')
          console.log('attached')
          process.exit(0)
        `
        const child = spawn(process.execPath, [dist().write(script)], {
          cwd: dist().dir,
          stdio: ['ignore', 'pipe', 'pipe'],
        })
        let out = ''
        child.stdout.on('data', (d: Buffer) => (out += d.toString()))
        let err = ''
        child.stderr.on('data', (d: Buffer) => (err += d.toString()))
        const code = await new Promise<number | null>((resolve) => child.on('exit', resolve))
        expect(err).toBe('')
        expect(out).toBe('attached\n')
        expect(code).toBe(0)
        expect(tracerOf(o.pid)).toBe(0)
        // Its int3 on write is gone: it prints and exits normally.
        o.write('after')
        expect(await o.waitStatus()).toBe(0)
        expect(o.output()).toBe('got after\n')
      }
    })
  })
})

describe('attach refuses', () => {
  it('a pid that is not a process, ours, or one of our threads', async () => {
    const pidMax = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8'))
    expect(await rejection(() => attach(pidMax))).toMatchObject({ code: 'ERR_NO_SUCH_PROCESS' })
    expect(await rejection(() => attach(process.pid))).toMatchObject({
      code: 'ERR_BAD_ARGUMENT',
      message: expect.stringContaining('cannot trace itself') as unknown,
    })
    const ownThread = readdirSync('/proc/self/task')
      .map(Number)
      .find((t) => t !== process.pid)
    if (ownThread !== undefined)
      expect(await rejection(() => attach(ownThread))).toMatchObject({ code: 'ERR_BAD_ARGUMENT' })
    for (const bad of [0, -1, 1.5, Number.NaN, '12' as unknown as number])
      expect(await rejection(() => attach(bad))).toMatchObject({ code: 'ERR_BAD_ARGUMENT' })
    expect(await rejection(() => attach(1, { timeout: -1 }))).toMatchObject({ code: 'ERR_BAD_OPTION' })
  })

  it('a thread rather than its process', async () => {
    const o = await startOutsider([looper, 'threads', '{dir}', '1'])
    const worker =
      readdirSync(`/proc/${o.pid}/task`)
        .map(Number)
        .find((t) => t !== o.pid) ?? -1
    expect(await rejection(() => attach(worker))).toMatchObject({
      code: 'ERR_BAD_ARGUMENT',
      message: expect.stringContaining(`attach(${o.pid})`) as unknown,
    })
  })

  it('a process already traced: by us, and by strace', async () => {
    const o = await startOutsider([looper, 'busy', '{dir}'])
    const proc = await attachTo(o.pid)
    const twice = await rejection(() => attach(o.pid))
    expect(twice).toMatchObject({ code: 'ERR_ALREADY_TRACED' })
    expect(twice.message).toContain('already traced (by gdb, strace, or another procsnap?)')
    expect(twice.message).toContain('this process')
    await proc.detach()

    const strace = spawn('strace', ['-p', String(o.pid), '-o', '/dev/null'], { stdio: 'ignore' })
    try {
      const until = performance.now() + 5000
      while (tracerOf(o.pid) !== strace.pid && performance.now() < until) await sleep(10)
      const error = await rejection(() => attach(o.pid))
      expect(error).toMatchObject({ code: 'ERR_ALREADY_TRACED' })
      expect(error.message).toContain('(strace)')
    } finally {
      strace.kill('SIGTERM')
      await new Promise((resolve) => strace.on('exit', resolve))
    }
    // strace let it go: it finishes normally.
    process.kill(o.pid, 'SIGUSR1')
    expect(await o.waitStatus()).toBe(7)
  })

  it('a zombie, and a process that already ended', async () => {
    // sh starts `true` in the background, then becomes sleep, which never reaps it.
    const o = await startOutsider(['sh', '-c', 'true & exec sleep 5'], { pidFile: false })
    const until = performance.now() + 5000
    let zombie = 0
    while (performance.now() < until) {
      zombie = Number(readFileSync(`/proc/${o.pid}/task/${o.pid}/children`, 'latin1').trim())
      if (zombie > 0 && stateOf(zombie) === 'Z') break
      await sleep(10)
    }
    expect(stateOf(zombie)).toBe('Z')
    expect(await rejection(() => attach(zombie))).toMatchObject({
      code: 'ERR_PROCESS_EXITED',
      message: expect.stringContaining('zombie') as unknown,
    })
    const quick = await startOutsider(['true'], { pidFile: false })
    await quick.waitStatus()
    expect(await rejection(() => attach(quick.pid))).toMatchObject({ code: 'ERR_NO_SUCH_PROCESS' })
  })
})

describe('attach and the processes it forks', () => {
  // dash vforks for each /bin/echo (the child shares the int3s until its exec); bash forks (the child
  // has a copy of them). Each child calls execve, where the breakpoint is.
  it.each(['sh', 'bash'])('%s: its children lose our int3s and run untraced', async (shell) => {
    const o = await startOutsider([shell, '-c', 'read x; for i in 1 2 3; do /bin/echo "$x $i"; done; exit 3'], {
      pidFile: false,
      fifo: true,
    })
    await sleep(50)
    const proc = await attachTo(o.pid)
    const bp = proc.breakAt('libc.so.6!execve')
    o.write('hi\n')
    // The shell itself never calls execve: it runs to its end; its children were let go, clean.
    expect(await proc.cont()).toMatchObject({ kind: 'exited', exitCode: 3 })
    expect(bp.hits).toBe(0)
    expect(await o.waitStatus()).toBe(3)
    expect(o.output()).toBe('hi 1\nhi 2\nhi 3\n')
  })
})

describe('attach, with gdb as the oracle', () => {
  it('reports the registers gdb finds after our detach (a process asleep in the same system call)', async () => {
    const o = await startOutsider(['sleep', '30'], { pidFile: false })
    await asleepIn(o.pid, /sleep$/)
    const proc = await attachTo(o.pid)
    const { rip, rsp } = proc.regs
    await proc.detach()
    await asleepIn(o.pid, /sleep$/) // back in its (restarted) nanosleep
    const out = execFileSync('gdb', ['-nx', '-p', String(o.pid), '-batch', '-ex', 'info registers rip rsp'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    })
    const gdbReg = (name: string): bigint => BigInt(new RegExp(`^${name}\\s+(0x[0-9a-f]+)`, 'm').exec(out)?.[1] ?? '-1')
    expect(gdbReg('rip')).toBe(rip)
    expect(gdbReg('rsp')).toBe(rsp)
    // gdb detached too: sleep goes on.
    expect(stateOf(o.pid)).toBe('S')
  })
})

describe('detach of a launched process', () => {
  it('is refused while procsnap serves it (virtual clock, fixedRandom, namespaces)', async () => {
    await using proc = await launch(looper, { args: ['busy', '/tmp'] })
    await expect(proc.detach()).rejects.toMatchObject({
      code: 'ERR_BAD_ARGUMENT',
      message: expect.stringContaining("{ clock: 'real', fixedRandom: false, isolate: false }") as unknown,
    })
    expect(proc.threads).toHaveLength(1) // still ours
  })

  it('lets it run on untraced, its output still captured; its zombie is reaped by the cleanup', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'procsnap-detach-'))
    try {
      const proc = await launch(looper, { args: ['busy', dir], clock: 'real', fixedRandom: false, isolate: false })
      await proc.runTo('churn')
      await proc.detach()
      expect(tracerOf(proc.pid)).toBe(0)
      expect(livePids()).not.toContain(proc.pid)
      expect(parentOf(proc.pid)).toBe(process.pid)
      process.kill(proc.pid, 'SIGUSR1')
      const until = performance.now() + 5000
      while (stateOf(proc.pid) !== 'Z' && performance.now() < until) await sleep(10)
      expect(stateOf(proc.pid)).toBe('Z')
      await sleep(20) // the pty's last bytes reach the event loop
      expect(proc.stdout).toBe('count 1\n')
      await killLiveTracees()
      expect(stateOf(proc.pid)).toBe('')
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
