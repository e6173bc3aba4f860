// Signals: a fault stops the process where it happened (inspectable), the next cont() delivers it,
// and cont({ signal: 0 }) suppresses it.
import { describe, expect, it } from 'vitest'
import type { StopEvent } from '../../src/index.js'
import { fixture, le32, start } from '../helpers.js'

// crash() in fixtures/c/segfault.c at -O0: push rbp; mov rbp,rsp; mov [rbp-8],rdi; mov rax,[rbp-8];
// then the faulting store `movl $0x2a,(%rax)` (c7 00 2a 00 00 00) at crash+0xc.
const STORE_OFFSET = 0xcn
const STORE_BYTES = [0xc7, 0x00, 0x2a, 0x00, 0x00, 0x00]

function signalStop(ev: StopEvent): Extract<StopEvent, { kind: 'signal' }> {
  if (ev.kind !== 'signal')
    throw new Error(
      `expected a signal stop, got ${JSON.stringify(ev, (_k, v: unknown) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v))}`,
    )
  return ev
}

describe('SIGSEGV (segfault fixture)', () => {
  it('stops at the faulting store in crash(), inspectable, then dies of SIGSEGV on the next cont()', async () => {
    const proc = await start(fixture('segfault'))
    const crash = proc.resolve('crash')
    const ev = signalStop(await proc.cont())
    expect(ev.signal).toBe('SIGSEGV')
    expect(ev.signo).toBe(11)
    expect(ev.code).toBe(1) // SEGV_MAPERR: nothing is mapped at 0
    expect(ev.faultAddress).toBe(0n)
    expect(ev.location).toMatch(/^segfault!crash/)
    expect(ev.location).toBe('segfault!crash+0xc')
    expect(ev.thread.tid).toBe(proc.pid)
    expect(ev.thread.index).toBe(1)

    // The process is stopped at the fault: registers and memory are readable there.
    const pc = proc.regs.rip
    expect(ev.pc).toBe(pc)
    expect(crash <= pc).toBe(true)
    expect(pc).toBe(crash + STORE_OFFSET)
    expect([...proc.readMemory(pc, STORE_BYTES.length)]).toEqual(STORE_BYTES)
    expect(proc.regs.rax).toBe(0n) // the NULL pointer being written through
    expect(proc.regs.rdi).toBe(0n)
    // crash's frame: [rbp] is the caller's rbp, [rbp+8] the return address into main.
    const ret = Buffer.from(proc.readMemory(proc.regs.rbp + 8n, 8)).readBigUInt64LE(0)
    expect(proc.symbolize(ret).startsWith('segfault!main+')).toBe(true)
    expect(proc.stdout).toBe('about to crash\n')
    expect(proc.exit).toBeUndefined()

    const end = await proc.cont()
    expect(end).toEqual({ kind: 'killed', signal: 'SIGSEGV' })
    expect(proc.exit).toEqual({ signal: 'SIGSEGV' })
    expect(() => proc.regs.rip).toThrow(expect.objectContaining({ code: 'ERR_PROCESS_ENDED' }))
  })

  it('cont({ signal: 0 }) suppresses the SIGSEGV: the store runs again and faults again at the same pc', async () => {
    const proc = await start(fixture('segfault'))
    const first = signalStop(await proc.cont())
    expect(first.signal).toBe('SIGSEGV')
    for (let i = 0; i < 3; i++) {
      const again = signalStop(await proc.cont({ signal: 0 }))
      expect(again.signal).toBe('SIGSEGV')
      expect(again.pc).toBe(first.pc)
      expect(again.faultAddress).toBe(0n)
      expect(proc.exit).toBeUndefined()
    }
    // The same suppression after repairing the pointer lets the program finish normally.
    const scratch = proc.regs.rsp - 0x100n // below the stack pointer: writable, unused
    proc.regs.rax = scratch
    const after = proc.breakAt(first.pc + BigInt(STORE_BYTES.length)) // the nop after the store
    const ev = await proc.cont({ signal: 0 })
    expect(ev.kind).toBe('breakpoint')
    expect(le32(proc.readMemory(scratch, 4))).toBe(42)
    after.remove()
    expect(await proc.cont()).toEqual({ kind: 'exited', exitCode: 0 })
    expect(proc.exit).toEqual({ exitCode: 0 })
  })
})

describe('SIGABRT (abort fixture)', () => {
  it('stops in libc with SIGABRT, and wait() then reports the process killed by it', async () => {
    const proc = await start(fixture('abort'))
    const ev = signalStop(await proc.cont())
    expect(ev.signal).toBe('SIGABRT')
    expect(ev.signo).toBe(6)
    // In libc: raise() -> __pthread_kill_implementation, a static function that only the separate
    // debug file names (gdb reads /usr/lib/debug; we read the library itself): the location is
    // 'libc.so.6!symbol+0x..' when a symbol covers the pc, else 'libc.so.6+0x..'.
    expect(ev.location).toMatch(/^libc\.so\.6[!+]/)
    const libc = proc.maps.find((m) => m.start <= ev.pc && ev.pc < m.end)
    expect(libc?.path).toMatch(/\/libc\.so\.6$/)
    expect(libc?.perms).toBe('r-xp')
    expect(ev.code).toBe(-6) // SI_TKILL: raise() sends it with tgkill
    expect('faultAddress' in ev).toBe(false) // not a fault: no si_addr
    expect(proc.symbolize(proc.regs.rip)).toBe(ev.location)
    // abort() was called from fail(): its return address is on the live stack. abort is noreturn,
    // so the call is fail's last instruction and the return address is the first byte after fail:
    // look for an address whose previous byte is in fail (as gdb does for caller frames).
    const top = proc.maps.find((m) => m.path === '[stack]')?.end ?? 0n
    const stack = Buffer.from(proc.readMemory(proc.regs.rsp, Number(top - proc.regs.rsp)))
    const words = Array.from({ length: stack.length / 8 }, (_, i) => stack.readBigUInt64LE(i * 8))
    expect(words.some((w) => w > 0n && proc.symbolize(w - 1n).startsWith('abort!fail+'))).toBe(true)

    expect(await proc.wait()).toEqual({ signal: 'SIGABRT' })
    expect(proc.exit).toEqual({ signal: 'SIGABRT' })
  })
})
