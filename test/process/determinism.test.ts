// What makes two runs of the same program comparable: fixed AT_RANDOM (stack canary, pointer guard),
// the ASLR flag, and the stop a process remembers.
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { fixture, le64, start } from '../helpers.js'

const AT_RANDOM = 25n

function atRandom(pid: number): bigint {
  const auxv = readFileSync(`/proc/${pid}/auxv`)
  for (let i = 0; i + 16 <= auxv.length; i += 16) {
    if (auxv.readBigUInt64LE(i) === AT_RANDOM) return auxv.readBigUInt64LE(i + 8)
  }
  throw new Error('no AT_RANDOM')
}

/** The stack canary glibc derived from AT_RANDOM, at fs:0x28. */
async function canaryAtBump(fixedRandom: boolean): Promise<bigint> {
  const proc = await start(fixture('counter'), { args: ['1'], fixedRandom })
  proc.breakAt('bump')
  await proc.cont()
  return le64(proc.readMemory(proc.regs.fs_base + 0x28n, 8))
}

describe('fixedRandom', () => {
  it('puts the fixed pattern at AT_RANDOM before the program runs', async () => {
    const proc = await start(fixture('counter'), { args: ['1'] })
    expect(Buffer.from(proc.readMemory(atRandom(proc.pid), 16)).toString('latin1')).toBe('procsnap-random!')
  })

  it('makes the stack canary the same on every run, and leaves it random when off', async () => {
    const fixed = [await canaryAtBump(true), await canaryAtBump(true)]
    expect(fixed[0]).toBe(fixed[1])
    const random = [await canaryAtBump(false), await canaryAtBump(false)]
    expect(random[0]).not.toBe(random[1])
    expect(random[0]).not.toBe(fixed[0])
  })
})

describe('process facts', () => {
  it('remembers whether ASLR was on', async () => {
    expect((await start(fixture('counter'), { args: ['1'] })).aslr).toBe(false)
    expect((await start(fixture('counter'), { args: ['1'], aslr: true })).aslr).toBe(true)
  })

  it('remembers the last stop: none after launch, then the breakpoint', async () => {
    const proc = await start(fixture('counter'), { args: ['1'] })
    expect(proc.lastStop).toBeUndefined()
    proc.breakAt('bump')
    const event = await proc.cont()
    expect(proc.lastStop).toBe(event)
    expect(proc.lastStop?.kind).toBe('breakpoint')
  })

  it('gives threads that read live registers', async () => {
    const proc = await start(fixture('counter'), { args: ['1'] })
    proc.breakAt('bump')
    await proc.cont()
    const [main] = proc.threads
    expect(main?.tid).toBe(proc.pid)
    expect(main?.index).toBe(1)
    expect(main?.pc).toBe(proc.regs.rip)
    expect(main?.regs.rdi).toBe(1n)
  })
})

describe('fixedRandom: getrandom and the time-stamp counter', () => {
  async function run(file: string, args: string[], fixedRandom: boolean, stdin?: string): Promise<string> {
    // clock: 'real': the virtual clock (clock.test.ts) keeps TSC faulting on after the entry point
    const proc = await start(file, { args, fixedRandom, clock: 'real', ...(stdin !== undefined ? { stdin } : {}) })
    await proc.wait()
    return proc.stdout
  }

  it('gives sort -R (getrandom for its hash key) the same order on every run, and a random one when off', async () => {
    const input = Array.from({ length: 40 }, (_, i) => `line ${i}`).join('\n') + '\n'
    const fixed = [await run('/usr/bin/sort', ['-R'], true, input), await run('/usr/bin/sort', ['-R'], true, input)]
    expect(fixed[0]).toBe(fixed[1])
    expect(fixed[0]?.split('\n').sort()).toEqual(input.split('\n').sort())
    const random = [await run('/usr/bin/sort', ['-R'], false, input), await run('/usr/bin/sort', ['-R'], false, input)]
    expect(random[0]).not.toBe(random[1])
  })

  it('leaves the clock alone after the entry point: date (vDSO, rdtsc) tells the real time', async () => {
    const before = Date.now()
    const out = await run('/bin/date', ['+%s%N'], true)
    const ns = BigInt(out.trim())
    expect(ns / 1_000_000n).toBeGreaterThanOrEqual(BigInt(before - 5))
    expect(ns / 1_000_000n).toBeLessThanOrEqual(BigInt(Date.now() + 5))
  })
})

describe('fixedRandom: one CPU until the entry point', () => {
  const allowed = (pid: number | 'thread-self'): string =>
    /Cpus_allowed_list:\s*(.*)/.exec(readFileSync(`/proc/${pid}/status`, 'latin1'))?.[1] ?? ''

  it('gives the program and this thread their CPUs back once it reaches its entry point', async () => {
    const before = allowed('thread-self')
    const proc = await start(fixture('counter'), { args: ['1'] })
    expect(allowed(proc.pid)).toBe(before)
    expect(allowed('thread-self')).toBe(before)
    const early = await start(fixture('segfault'), { fixedRandom: false })
    expect(allowed(early.pid)).toBe(before)
  })

  it('an isolated launch with the real clock and randomness leaves the CPUs of the program and this thread alone', async () => {
    const before = allowed('thread-self')
    const proc = await start(fixture('counter'), { args: ['1'], fixedRandom: false, clock: 'real' })
    expect(proc.isolation.isolated).toBe(true)
    expect(allowed(proc.pid)).toBe(before)
    expect(allowed('thread-self')).toBe(before)
    proc.breakAt('main')
    expect((await proc.cont()).kind).toBe('breakpoint')
    expect(await proc.kill()).toEqual({ signal: 'SIGKILL' })
    expect(allowed('thread-self')).toBe(before)
  })
})

describe('fixedRandom: a clean stack at the entry point', () => {
  async function deadStack(fixedRandom: boolean): Promise<Uint8Array> {
    const proc = await start(fixture('counter'), { args: ['1'], fixedRandom })
    const stack = proc.maps.find((m) => m.path === '[stack]')
    if (!stack) throw new Error('no [stack]')
    return proc.readMemory(stack.start, Number(proc.regs.rsp - stack.start))
  }

  it('zeroes what the dynamic loader left below the stack pointer, and leaves it when off', async () => {
    expect((await deadStack(true)).every((b) => b === 0)).toBe(true)
    expect((await deadStack(false)).some((b) => b !== 0)).toBe(true)
  })
})
