// A GOT slot that glibc's ifunc resolver filled holds a CPU-specific variant (strcmp's AVX-512,
// AVX2 or SSE2 version): the golden names it by the symbol its relocation names, so the same program
// writes the same golden on CPUs with other features. Hiding features with glibc.cpu.hwcaps makes
// glibc pick another variant on this machine, as another CPU would.
import { describe, expect, it } from 'vitest'
import { goldenSections, renderGolden } from '../../src/golden/render.js'
import type { Process } from '../../src/index.js'
import { fixture, start } from '../helpers.js'

const MASKED = 'glibc.pthread.rseq=0:glibc.cpu.hwcaps=-AVX512F,-AVX512VL,-AVX512BW,-AVX2,-BMI2'

async function atBump(tunables?: string): Promise<Process> {
  const proc = await start(fixture('counter'), {
    args: ['1'],
    ...(tunables ? { env: { GLIBC_TUNABLES: tunables } } : {}),
  })
  proc.breakAt('bump')
  await proc.cont()
  return proc
}

/** The memory section of the golden, and the raw value of the GOT slot whose relocation names strcmp. */
function view(proc: Process): { memory: string; slot: bigint } {
  const snap = proc.createSnapshot({ level: 'writable' })
  const memory = renderGolden(
    { key: 'k', test: 't' },
    goldenSections(snap.data, snap.modules(), { include: ['memory'] }),
  )
  const exe = snap.modules().find((m) => m.path === snap.exe)
  const offset = [...(exe?.elf?.relocatedSlots ?? [])].find(([, symbol]) => symbol === 'strcmp')?.[0]
  if (!exe || offset === undefined) throw new Error('counter has no GOT slot for strcmp')
  return { memory, slot: Buffer.from(snap.memory.read(exe.bias + offset, 8)).readBigUInt64LE(0) }
}

describe('relocated slots in goldens', () => {
  it('name the ifunc by its relocation symbol, the same whichever variant this CPU got', async (context) => {
    const normal = view(await atBump())
    const masked = view(await atBump(MASKED))
    expect(normal.memory).toContain('<libc.so.6!strcmp>')
    // Where hiding the features changes nothing (a CPU without them), the test has nothing to compare.
    if (normal.slot === masked.slot) context.skip('this CPU gets the same strcmp variant with AVX2/AVX-512 hidden')
    expect(normal.slot).not.toBe(masked.slot)
    expect(masked.memory).toBe(normal.memory)
  })

  it("the main thread's pthread (fs_base), which ld.so places after CPU-dependent allocations, reads the same on every CPU (python3)", async (context) => {
    const golden = async (tunables: string): Promise<{ text: string; tp: bigint | undefined }> => {
      const proc = await start('/usr/bin/python3', { args: ['-c', 'pass'], env: { GLIBC_TUNABLES: tunables } })
      await proc.runTo('libc.so.6!exit')
      const snap = proc.createSnapshot({ level: 'writable' })
      const text = renderGolden(
        { key: 'k', test: 't' },
        goldenSections(snap.data, snap.modules(), { include: ['regs', 'memory'] }),
      )
      await proc.kill()
      return { text, tp: snap.regs.fs_base }
    }
    // The same length as MASKED, with names glibc does not know: only the CPU features seen differ.
    const normal = await golden(MASKED.replace(/-[A-Z0-9_]+/g, (m) => '-' + 'X'.repeat(m.length - 1)))
    const masked = await golden(MASKED)
    expect(normal.text).toMatch(/fs_base\s+pthread#1\n/)
    expect(normal.text).toContain('<pthread#1>') // _PyRuntime keeps the main thread's state
    if (normal.tp === masked.tp) context.skip('the thread pointer does not move with AVX2/AVX-512 hidden on this CPU')
    expect(masked.text).toBe(normal.text)
  })

  it('name a slot the program overwrote as what it now holds, not by its relocation', async () => {
    const proc = await atBump()
    const snap = proc.createSnapshot()
    const exe = snap.modules().find((m) => m.path === snap.exe)
    const offset = [...(exe?.elf?.relocatedSlots ?? [])].find(([, symbol]) => symbol === 'strcmp')?.[0]
    if (!exe || offset === undefined) throw new Error('counter has no GOT slot for strcmp')
    const getenv = proc.resolve('libc.so.6!getenv')
    const bytes = Buffer.alloc(8)
    bytes.writeBigUInt64LE(getenv)
    proc.writeMemory(exe.bias + offset, bytes)
    const memory = view(proc).memory
    expect(memory).not.toContain('<libc.so.6!strcmp>')
    expect(memory.split('<libc.so.6!getenv>').length - 1).toBe(2) // its own slot, and strcmp's
  })
})
