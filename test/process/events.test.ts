// Public results are plain data: every kind of stop event, exit results, threads, maps and
// breakpoints print short (util.inspect, console.log), clone (structuredClone) and serialize
// (JSON.stringify with a bigint replacer), during the run and after the process has ended, while
// the live parts users rely on (ev.thread.regs, ev.breakpoint === bp) keep working.
import { inspect } from 'node:util'
import { describe, expect, it } from 'vitest'
import type { Process, StopEvent } from '../../src/index.js'
import { fixture, start } from '../helpers.js'

const hexBigint = (_key: string, value: unknown): unknown =>
  typeof value === 'bigint' ? `0x${value.toString(16)}` : value

/** The three ways out, each checked against the data we expect the value to carry. */
function expectPlain(value: unknown, data: unknown): void {
  const printed = inspect(value, { depth: 4 })
  expect(printed.length).toBeLessThan(600)
  expect(printed).not.toMatch(/Process \{|tracer|Tracer|\[Getter|Proxy|\[Function/)
  expect(structuredClone(value)).toEqual(data)
  expect(JSON.parse(JSON.stringify(value, hexBigint))).toEqual(JSON.parse(JSON.stringify(data, hexBigint)))
}

function threadData(proc: Process, index = 1): { tid: number; index: number } {
  const t = proc.threads.find((th) => th.index === index)
  if (!t) throw new Error(`no thread ${index}`)
  return { tid: t.tid, index: t.index }
}

describe('stop events are plain data', () => {
  it('breakpoint, step and finish events; the breakpoint and thread inside them stay live', async () => {
    const proc = await start(fixture('counter'), { args: ['2'] })
    const bp = proc.breakAt('bump')
    const hit = await proc.cont()
    if (hit.kind !== 'breakpoint') throw new Error(`expected a breakpoint, got ${hit.kind}`)
    const main = threadData(proc)
    const bpData = {
      id: bp.id,
      location: 'bump',
      temporary: false,
      address: proc.resolve('bump'),
      description: 'counter!bump',
      hits: 1,
      enabled: true,
      removed: false,
      pending: false,
    }
    expectPlain(hit, { kind: 'breakpoint', thread: main, pc: hit.pc, location: 'counter!bump', breakpoint: bpData })
    expect(inspect(hit)).toContain("location: 'counter!bump'")
    expectPlain(bp, bpData)
    // Live where users rely on it.
    expect(hit.breakpoint).toBe(bp)
    expect(hit.thread.regs.rip).toBe(hit.pc)
    expect(hit.thread.pc).toBe(hit.pc)
    expect(hit.thread.regs.edi).toBe(1n)

    const step = await proc.step()
    if (step.kind !== 'step') throw new Error(`expected a step, got ${step.kind}`)
    expectPlain(step, { kind: 'step', thread: main, pc: step.pc, location: step.location })

    const fin = await proc.finish()
    if (fin.kind !== 'step' || fin.returnValue === undefined) throw new Error('expected a finish with returnValue')
    expect(fin.returnValue).toBe(1n)
    expectPlain(fin, { kind: 'step', thread: main, pc: fin.pc, location: fin.location, returnValue: 1n })

    // proc.threads writes through, and prints as data.
    const [first] = proc.threads
    if (!first) throw new Error('no thread')
    first.regs.rax = 7n
    expect(proc.regs.rax).toBe(7n)
    expectPlain(proc.threads, [main])
    expectPlain(proc.thread, main)

    const maps = proc.maps
    expect(maps.length).toBeGreaterThan(5)
    expect(structuredClone(maps)).toEqual(maps)
    expect(JSON.parse(JSON.stringify(maps, hexBigint))).toHaveLength(maps.length)
    expect(inspect(maps[0], { breakLength: Infinity })).toMatch(/^\{ start: \d+n, end: \d+n, perms: '/)

    const end = await proc.cont()
    expect(end.kind).toBe('breakpoint')
    bp.remove()
    const exited = await proc.cont()
    expectPlain(exited, { kind: 'exited', exitCode: 0 })
    expectPlain(proc.exit, { exitCode: 0 })
    expectPlain(proc.lastStop, { kind: 'exited', exitCode: 0 })
    // After the end, the earlier events and the breakpoint still print, clone and serialize.
    expectPlain(hit, {
      kind: 'breakpoint',
      thread: main,
      pc: hit.pc,
      location: 'counter!bump',
      breakpoint: { ...bpData, hits: 2, removed: true, pending: false },
    })
    expectPlain(fin, { kind: 'step', thread: main, pc: fin.pc, location: fin.location, returnValue: 1n })
  })

  it('a signal event with its fault address, then the killed event', async () => {
    const proc = await start(fixture('segfault'))
    const ev: StopEvent = await proc.cont()
    if (ev.kind !== 'signal') throw new Error(`expected a signal, got ${ev.kind}`)
    expectPlain(ev, {
      kind: 'signal',
      thread: threadData(proc),
      pc: ev.pc,
      location: 'segfault!crash+0xc',
      signal: 'SIGSEGV',
      signo: 11,
      code: 1,
      faultAddress: 0n,
    })
    const killed = await proc.cont()
    expectPlain(killed, { kind: 'killed', signal: 'SIGSEGV' })
    expectPlain(proc.exit, { signal: 'SIGSEGV' })
  })

  it('threads of a multi-threaded program, and a pending breakpoint', async () => {
    const proc = await start(fixture('threads'), { args: ['3', '5'] })
    const pending = proc.breakAt('nosuchlib.so!f')
    const tick = proc.breakAt('worker_tick')
    const ev = await proc.cont()
    if (ev.kind !== 'breakpoint') throw new Error(`expected a breakpoint, got ${ev.kind}`)
    expect(ev.breakpoint).toBe(tick)
    const threads = proc.threads
    expect(threads.length).toBeGreaterThan(1)
    expectPlain(
      threads,
      threads.map((t) => ({ tid: t.tid, index: t.index })),
    )
    expect(JSON.parse(JSON.stringify(pending, hexBigint))).toMatchObject({
      location: 'nosuchlib.so!f',
      pending: true,
      hits: 0,
    })
    expect(structuredClone(pending)).toMatchObject({ location: 'nosuchlib.so!f', pending: true })
    expect(inspect(pending, { breakLength: Infinity })).toMatch(
      /^Breakpoint \{ id: \d+, location: 'nosuchlib\.so!f', address: undefined/,
    )
    await proc.kill()
    expectPlain(proc.exit, { signal: 'SIGKILL' })
    expectPlain(ev.thread, { tid: ev.thread.tid, index: ev.thread.index })
  })
})
