// proc.interrupt(): a pending cont/runTo/wait ends now with { kind: 'interrupted' }, every thread
// stopped; a thread blocked in a system call resumes it afterwards as it would after gdb's Ctrl-C.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterEach, describe, expect, it } from 'vitest'
import { attach, launch, livePids, type LaunchOptions, type Process, type StopEvent } from '../../src/index.js'
import { fixture, le64, strayChildren } from '../helpers.js'
import { startOutsider, stateOf } from './outsider.js'

const looper = fixture('looper')
const processes: Process[] = []
const dirs: string[] = []

/** launch(), ended after the test (killed) and checked to leave nothing behind. */
async function start(file: string, options?: LaunchOptions): Promise<Process> {
  const proc = await launch(file, options)
  processes.push(proc)
  return proc
}

async function attachTo(pid: number): Promise<Process> {
  const proc = await attach(pid)
  processes.push(proc)
  return proc
}

afterEach(async () => {
  // Launched ones are killed, attached ones detached.
  for (const p of processes.splice(0)) await p[Symbol.asyncDispose]()
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
  expect(livePids()).toEqual([])
  expect(strayChildren()).toEqual([])
})

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'procsnap-interrupt-'))
  dirs.push(d)
  return d
}

/** Interrupts `proc` after `ms` of running `pending`, and returns the event it resolves with. */
async function interruptAfter(proc: Process, pending: Promise<StopEvent>, ms = 30): Promise<StopEvent> {
  await sleep(ms)
  proc.interrupt()
  return pending
}

/** Polls until `pid` sleeps in the kernel (state 'S'). */
async function asleep(pid: number | string): Promise<void> {
  const until = performance.now() + 5000
  while (stateOf(pid) !== 'S' && performance.now() < until) await sleep(5)
  expect(stateOf(pid)).toBe('S')
}

describe('interrupt', () => {
  it('stops a busy loop in the function that loops; it then goes on, is interrupted again, snapshotted and killed', async () => {
    const proc = await start(fixture('forever'))
    const first = await interruptAfter(proc, proc.cont())
    expect(first).toMatchObject({ kind: 'interrupted', thread: { index: 1 } })
    if (first.kind !== 'interrupted') throw new Error('unreachable')
    expect(first.location).toMatch(/^forever!spin/)
    expect(first.pc).toBe(proc.regs.rip)
    expect(proc.lastStop).toBe(first)
    const spins = le64(proc.readMemory('g_spins', 8))
    expect(spins).toBeGreaterThan(0n)
    const snap = proc.createSnapshot({ level: 'writable' })
    expect(snap.stop).toMatchObject({ kind: 'interrupted', location: first.location })
    const second = await interruptAfter(proc, proc.cont())
    expect(second.kind).toBe('interrupted')
    expect(le64(proc.readMemory('g_spins', 8))).toBeGreaterThan(spins)
    expect(await proc.kill()).toEqual({ signal: 'SIGKILL' })
  })

  it('is a no-op while the process is stopped, and leaves nothing for the next operation', async () => {
    const proc = await start(fixture('counter'))
    proc.interrupt()
    expect(proc.lastStop).toBeUndefined()
    const hit = await proc.runTo('bump')
    expect(hit.kind).toBe('breakpoint')
    proc.interrupt()
    expect(proc.lastStop).toBe(hit)
    expect(await proc.cont()).toMatchObject({ kind: 'exited', exitCode: 0 })
    proc.interrupt() // ended: still nothing
  })

  it('leaves the deadline alone: after an interrupt, a cont that runs too long still times out', async () => {
    const proc = await start(fixture('forever'))
    expect((await interruptAfter(proc, proc.cont())).kind).toBe('interrupted')
    await expect(proc.cont({ timeout: 50 })).rejects.toMatchObject({ code: 'ERR_TIMEOUT' })
  })

  it('ends runTo with the interrupt (its temporary breakpoint removed), and makes wait() reject', async () => {
    const dir = tempDir()
    const proc = await start(looper, { args: ['busy', dir] })
    const ev = await interruptAfter(proc, proc.runTo('libc.so.6!printf'))
    expect(ev).toMatchObject({ kind: 'interrupted' })
    expect(ev.kind === 'interrupted' && ev.location).toMatch(/^looper!churn/)
    expect(proc.breakpoints).toEqual([])
    const waiting = proc.wait()
    await sleep(30)
    proc.interrupt()
    await expect(waiting).rejects.toMatchObject({ code: 'ERR_INTERRUPTED' })
    expect(proc.lastStop?.kind).toBe('interrupted')
    // It runs on to its normal end once told to stop looping.
    const ended = proc.wait()
    await sleep(10)
    process.kill(proc.pid, 'SIGUSR1')
    expect(await ended).toEqual({ exitCode: 7 })
    expect(proc.stdout).toBe('count 1\n')
  })

  it('stops every thread of a launched multi-threaded process (serial schedule) and of an attached one (free)', async () => {
    const dir = tempDir()
    const proc = await start(looper, { args: ['threads', dir, '3'] })
    const ev = await interruptAfter(proc, proc.cont(), 100)
    expect(ev.kind).toBe('interrupted')
    expect(proc.threads).toHaveLength(4)
    for (const t of proc.threads) expect(stateOf(`${proc.pid}/task/${t.tid}`)).toBe('t')
    await proc.kill()

    const o = await startOutsider([looper, 'threads', '{dir}', '3'])
    const other = await attachTo(o.pid)
    const ev2 = await interruptAfter(other, other.cont())
    expect(ev2.kind).toBe('interrupted')
    const tids = readdirSync(`/proc/${o.pid}/task`).map(Number)
    expect(other.threads.map((t) => t.tid).sort()).toEqual(tids.sort())
    for (const tid of tids) expect(stateOf(`${o.pid}/task/${tid}`)).toBe('t')
    await other.detach()
    process.kill(o.pid, 'SIGUSR1')
    expect(await o.waitStatus()).toBe(7)
  })

  it('stops a thread blocked in read(2) on a pipe; continued, the read still gets the data written after', async () => {
    const o = await startOutsider([looper, 'read', '{dir}'], { fifo: true })
    const proc = await attachTo(o.pid)
    const pending = proc.cont()
    await asleep(o.pid)
    proc.interrupt()
    const ev = await pending
    expect(ev.kind).toBe('interrupted')
    expect(ev.kind === 'interrupted' && ev.location).toMatch(/^libc\.so\.6!(__)?read/)
    expect(stateOf(o.pid)).toBe('t')
    o.write('data')
    // The read restarts (it is not ended by EINTR: the program would print "read error 4").
    expect(await proc.cont()).toMatchObject({ kind: 'exited', exitCode: 0 })
    expect(await o.waitStatus()).toBe(0)
    expect(o.output()).toBe('got data\n')
  })

  it('leaves an attached process to snapshot, rewind (restore) and detach: it then ends normally', async () => {
    const o = await startOutsider([looper, 'busy', '{dir}'])
    const proc = await attachTo(o.pid)
    const snap = proc.createSnapshot({ level: 'writable' })
    const before = le64(proc.readMemory('g_count', 8))
    expect((await interruptAfter(proc, proc.cont())).kind).toBe('interrupted')
    expect(le64(proc.readMemory('g_count', 8))).toBeGreaterThan(before)
    await proc.restore(snap)
    expect(le64(proc.readMemory('g_count', 8))).toBe(before)
    expect(proc.regs.rip).toBe(snap.threads[0]?.regs.rip)
    await proc.detach()
    process.kill(o.pid, 'SIGUSR1')
    expect(await o.waitStatus()).toBe(7)
  })

  it('detach() during a pending cont interrupts it first, and the process runs on', async () => {
    const o = await startOutsider([looper, 'busy', '{dir}'])
    const proc = await attachTo(o.pid)
    const pending = proc.cont()
    await sleep(20)
    await proc.detach()
    expect((await pending).kind).toBe('interrupted')
    process.kill(o.pid, 'SIGUSR1')
    expect(await o.waitStatus()).toBe(7)
  })
})
