import { describe, expect, it } from 'vitest'
import { fixture, le32, start } from '../helpers.js'

describe('launch and breakpoints on the counter fixture', () => {
  it('stops at the entry point, breaks on bump three times, then exits 0', async () => {
    const proc = await start(fixture('counter'), { args: ['3'] })
    expect(proc.symbolize(proc.regs.rip)).toBe('counter!_start')
    const bp = proc.breakAt('bump')
    for (let i = 1; i <= 3; i++) {
      const ev = await proc.cont()
      expect(ev.kind).toBe('breakpoint')
      if (ev.kind !== 'breakpoint') return
      expect(ev.location).toBe('counter!bump')
      expect(ev.pc).toBe(bp.address)
      expect(proc.regs.rip).toBe(bp.address)
      expect(proc.regs.rdi).toBe(BigInt(i))
      expect(bp.hits).toBe(i)
    }
    expect(le32(proc.readMemory('g_counter', 4))).toBe(3)
    const end = await proc.cont()
    expect(end).toEqual({ kind: 'exited', exitCode: 0 })
    expect(proc.stdout).toBe('bump 1 -> 1\nbump 2 -> 3\nbump 3 -> 6\ntotal 10\n')
  })
})
