import { describe, expect, it } from 'vitest'
import { fixture, start } from '../helpers.js'

describe('step, finish, runTo', () => {
  it('step executes one instruction: push rbp lowers rsp by 8', async () => {
    const proc = await start(fixture('counter'), { args: ['1'] })
    await proc.runTo('bump')
    const rsp = proc.regs.rsp
    const rip = proc.regs.rip
    const ev = await proc.step()
    expect(ev.kind).toBe('step')
    expect(proc.regs.rsp).toBe(rsp - 8n)
    expect(proc.regs.rip).toBe(rip + 1n) // push %rbp is one byte
    expect(ev.kind === 'step' && ev.location).toBe('counter!bump+0x1')
  })

  it('step over a breakpoint at the pc does not report it again', async () => {
    const proc = await start(fixture('counter'), { args: ['2'] })
    const bp = proc.breakAt('bump')
    await proc.cont()
    await proc.step()
    expect(bp.hits).toBe(1)
    await proc.cont()
    expect(bp.hits).toBe(2)
  })

  it('finish returns to the caller with the return value, through recursion', async () => {
    const proc = await start(fixture('recursion'), { args: ['5'] })
    const bp = proc.breakAt('fact')
    await proc.cont() // fact(5)
    bp.disable()
    const ev = await proc.finish()
    expect(ev.kind).toBe('step')
    if (ev.kind !== 'step') return
    expect(ev.returnValue).toBe(120n)
    expect(ev.location.startsWith('recursion!main+')).toBe(true)
  })

  it('finish from an inner recursive frame stops in the caller frame, not a deeper one', async () => {
    const proc = await start(fixture('recursion'), { args: ['4'] })
    const bp = proc.breakAt('fact')
    await proc.cont() // fact(4)
    await proc.cont() // fact(3)
    bp.remove()
    expect(proc.regs.edi).toBe(3n)
    const ev = await proc.finish()
    expect(ev.kind === 'step' && ev.returnValue).toBe(6n)
    expect(ev.kind === 'step' && ev.location.startsWith('recursion!fact+')).toBe(true)
    // Back in fact(4), whose n is still in its frame: one more finish gives 24.
    const outer = await proc.finish()
    expect(outer.kind === 'step' && outer.returnValue).toBe(24n)
  })

  it('finish mid-function (after the prologue) uses the frame pointer', async () => {
    const proc = await start(fixture('counter'), { args: ['2'] })
    await proc.runTo('bump+7') // mov 0x2eca(%rip),%edx, after the prologue
    const ev = await proc.finish()
    expect(ev.kind === 'step' && ev.returnValue).toBe(1n)
    expect(ev.kind === 'step' && ev.location.startsWith('counter!main+')).toBe(true)
  })

  it('finish in -O2 code without a frame pointer, mid-function, falls back to stepping', async () => {
    const proc = await start(fixture('counter-O2'), { args: ['2'] })
    await proc.runTo('compute')
    await proc.step()
    await proc.step()
    const ev = await proc.finish()
    expect(ev.kind).toBe('step')
    expect(ev.kind === 'step' && ev.location.startsWith('counter-O2!main')).toBe(true)
  })

  it('runTo stops at the location and removes its temporary breakpoint', async () => {
    const proc = await start(fixture('counter'), { args: ['2'] })
    const ev = await proc.runTo('compute')
    expect(ev.kind === 'breakpoint' && ev.location).toBe('counter!compute')
    expect(proc.breakpoints).toEqual([])
    expect(proc.regs.edi).toBe(2n)
    expect(await proc.wait()).toEqual({ exitCode: 0 })
  })

  it('runTo stops earlier at a user breakpoint on the way', async () => {
    const proc = await start(fixture('counter'), { args: ['2'] })
    const bp = proc.breakAt('bump')
    const ev = await proc.runTo('compute')
    expect(ev.kind === 'breakpoint' && ev.breakpoint).toBe(bp)
  })
})
