// Writing registers into a stopped thread, general and extended (x87, SSE, AVX, AVX-512): the
// vecregs fixture stores its registers as soon as checkpoint() returns and prints them, so the
// program itself shows what was written. Every test holds on every x86_64 CPU: it branches on the
// xsave components this CPU and kernel enable (SSE only, AVX, AVX-512), never skipping everywhere.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { loadSnapshot, type Process } from '../../src/index.js'
import { decodeXState, readXStateArea, xsaveAreaLayout, XSTATE_BV } from '../../src/native/arch/x86_64-xstate.js'
import { encodeXState } from '../../src/native/arch/x86_64-xstate-encode.js'
import { XSAVE_BIT } from '../../src/native/arch/x86_64-xsave-layout.js'
import { hostArch } from '../../src/native/arch/index.js'
import { caughtProcsnapError, fixture, start, vectorPattern } from '../helpers.js'

const VECREGS = fixture('vecregs')
const COMPONENTS = hostArch().registerFeatures?.().components ?? []
const AVX = COMPONENTS.includes('avx')
const AVX512 = ['opmask', 'zmm_hi256', 'hi16_zmm'].every((c) => COMPONENTS.includes(c))
const LEVEL = AVX512 ? 'avx512' : AVX ? 'avx' : 'sse'
/** 2.5 as an x87 80-bit value: exponent 0x4000, mantissa 1.01b. */
const X87_2_5 = 0x4000a000000000000000n
const X87_1_5 = 0x3fffc000000000000000n
const X87_PI = 0x4000c90fdaa22168c235n
/** "fake_tcb", the first word of the fixture's fake_tcb. */
const FAKE_TCB = 0x6263745f656b6166n

/** A value of `bits` bits that no register holds: every byte distinct from the pattern's at that place. */
function fresh(seed: number, bits: number): bigint {
  let value = 0n
  for (let i = 0; i < bits / 8; i++) value = (value << 8n) | BigInt((seed * 31 + i * 13 + 5) & 0xff)
  return value
}

const MASK128 = (1n << 128n) - 1n

/** The fixture stopped at checkpoint, its vector registers loaded. */
async function atCheckpoint(): Promise<Process> {
  const proc = await start(VECREGS)
  proc.breakAt('checkpoint')
  await proc.cont()
  expect(proc.stdout).toBe(`level ${LEVEL}\n`) // the fixture sees the same CPU features we branch on
  return proc
}

/** Runs the fixture to its end; what it printed after checkpoint, by name. */
async function printed(proc: Process): Promise<Record<string, bigint>> {
  expect(await proc.wait()).toEqual({ exitCode: 0 })
  const out: Record<string, bigint> = {}
  for (const m of proc.stdout.matchAll(/^(\w+) ([0-9a-f]+)$/gm)) out[m[1] ?? ''] = BigInt(`0x${m[2] ?? ''}`)
  return out
}

describe('encodeXState on real areas', () => {
  it('is the inverse of decodeXState: encode(decode(A), A) is A byte for byte', async () => {
    const proc = await atCheckpoint()
    const area = readXStateArea(proc.thread.tid)
    const regs = decodeXState(area, xsaveAreaLayout(area))
    expect(regs.xmm0).toBe(vectorPattern(0, 128))
    const again = encodeXState(regs, area)
    expect(again).toEqual(area)
    expect(decodeXState(again, xsaveAreaLayout(again))).toEqual(regs)
  })

  it('changes only the bytes of the registers written; the others decode as before', async () => {
    const proc = await atCheckpoint()
    const area = readXStateArea(proc.thread.tid)
    const layout = xsaveAreaLayout(area)
    const before = decodeXState(area, layout)
    const values: Record<string, bigint> = { xmm5: fresh(1, 128), st1: X87_2_5, fcw: 0x27fn, mxcsr: 0x7f80n }
    if (AVX) values.ymm7 = fresh(2, 256)
    if (AVX512) Object.assign(values, { zmm20: fresh(3, 512), k6: 0xabcdn, xmm31: fresh(4, 128) })
    const after = decodeXState(encodeXState(values, area), layout)
    const changed = Object.keys(after).filter((n) => after[n] !== before[n])
    const expected = new Set(Object.keys(values))
    // A register's other names change with it (xmm5 is the low half of ymm5 and zmm5), and so does
    // ftw, whose tag for st1 is recomputed from its new contents.
    for (const name of Object.keys(values)) {
      const m = /^(?:xmm|ymm|zmm)(\d+)$/.exec(name)
      if (m) for (const kind of ['xmm', 'ymm', 'zmm']) if (`${kind}${m[1]}` in before) expected.add(`${kind}${m[1]}`)
    }
    for (const name of changed) expect(expected.has(name) || name === 'ftw', name).toBe(true)
    for (const [name, value] of Object.entries(values)) expect(after[name], name).toBe(value)
    if (AVX) expect(after.ymm5).toBe(((before.ymm5 ?? 0n) & ~MASK128) | fresh(1, 128)) // upper half kept
  })

  it('brings a component out of its init state: its bit set, its other registers zero, stale bytes gone', async () => {
    const proc = await atCheckpoint()
    const area = readXStateArea(proc.thread.tid)
    const layout = xsaveAreaLayout(area)
    // The component with the most registers this CPU has past SSE; an SSE-only CPU has none, so
    // there the FXSAVE-only area (no XSTATE_BV) must refuse a ymm register instead.
    const bit = AVX512 ? XSAVE_BIT.hi16Zmm : AVX ? XSAVE_BIT.avx : undefined
    if (bit === undefined || !layout) {
      expect(caughtProcsnapError(() => encodeXState({ ymm0: 1n }, area)).code).toBe('ERR_UNKNOWN_REGISTER')
      return
    }
    const base = layout.offsets.get(bit) ?? 0
    const size = layout.sizes.get(bit) ?? 0
    const init = area.slice()
    const view = new DataView(init.buffer)
    view.setBigUint64(XSTATE_BV, view.getBigUint64(XSTATE_BV, true) & ~(1n << BigInt(bit)), true)
    init.fill(0x5a, base, base + size) // bytes the CPU ignores in the init state
    const name = bit === XSAVE_BIT.hi16Zmm ? 'zmm18' : 'ymm3'
    const other = bit === XSAVE_BIT.hi16Zmm ? 'zmm19' : 'ymm4'
    const width = bit === XSAVE_BIT.hi16Zmm ? 512 : 256
    const decodedInit = decodeXState(init, layout)
    expect(decodedInit[other]).toBe(bit === XSAVE_BIT.avx ? (decodedInit.xmm4 ?? 0n) : 0n) // ymm4: xmm4 only
    const out = encodeXState({ [name]: fresh(5, width) }, init)
    const regs = decodeXState(out, layout)
    expect(new DataView(out.buffer).getBigUint64(XSTATE_BV, true) & (1n << BigInt(bit))).not.toBe(0n)
    expect(regs[name]).toBe(fresh(5, width))
    expect(regs[other]).toBe(decodedInit[other])
    // Every byte of the component but the written register's slot is zero now.
    const [at, length] = bit === XSAVE_BIT.hi16Zmm ? [64 * 2, 64] : [16 * 3, 16]
    const rest = [...out.subarray(base, base + size)].filter((_, i) => i < at || i >= at + length)
    expect(rest.every((b) => b === 0)).toBe(true)
    // Writing the value it already reads (zero) changes nothing, not even the bit.
    expect(encodeXState({ [other]: decodedInit[other] ?? 0n }, init)).toEqual(init)
  })
})

/** The thread's area cut to 600 bytes: FXSAVE, the header, and the first 24 bytes of AVX's. */
function shortArea(proc: Process): Uint8Array {
  return readXStateArea(proc.thread.tid).slice(0, 600)
}

describe('thread.setRegisters', () => {
  it('writes general, x87, SSE, AVX and AVX-512 registers: the program sees them; the rest keeps its values', async () => {
    const proc = await atCheckpoint()
    const thread = proc.thread
    const values: Record<string, bigint> = {
      rax: 0x0123456789abcdefn,
      fs_base: proc.resolve('fake_tcb'),
      xmm0: fresh(10, 128),
      st0: X87_2_5,
      mxcsr: 0x7f80n, // round toward zero
    }
    if (AVX) values.ymm1 = fresh(11, 256)
    if (AVX512) Object.assign(values, { zmm2: fresh(12, 512), zmm16: fresh(13, 512), k1: 0x5a5a5a5a5a5a5a5an })
    thread.setRegisters(values)
    expect(proc.regs.rax).toBe(values.rax)
    const out = await printed(proc)
    expect(out.rax).toBe(values.rax)
    expect(out.fs0).toBe(FAKE_TCB)
    expect(out.xmm0).toBe(values.xmm0)
    expect(out.st0).toBe(X87_2_5)
    expect(out.st1).toBe(X87_PI)
    expect(out.mxcsr).toBe(0x7f80n)
    if (AVX) {
      expect(out.ymm0).toBe((vectorPattern(0, 256) & ~MASK128) | (values.xmm0 ?? 0n)) // upper half as loaded
      expect(out.ymm1).toBe(values.ymm1)
    }
    if (AVX512) {
      expect(out.zmm0).toBe((vectorPattern(0, 512) & ~MASK128) | (values.xmm0 ?? 0n))
      expect(out.zmm2).toBe(values.zmm2)
      expect(out.zmm16).toBe(values.zmm16)
      expect(out.zmm17).toBe(vectorPattern(17, 512))
      expect(out.k1).toBe(values.k1)
      expect(out.k2).toBe(0xffn)
    }
  })

  it('writes into a component in its init state: the kernel sets its bit, the program sees the value', async () => {
    const proc = await atCheckpoint()
    const { tid } = proc.thread
    // The widest component this CPU has, put in its init state by the kernel (its XSTATE_BV bit cleared).
    const bit = AVX512 ? XSAVE_BIT.hi16Zmm : AVX ? XSAVE_BIT.avx : XSAVE_BIT.sse
    const [name, width, neighbour] = AVX512 ? ['zmm16', 512, 'zmm17'] : AVX ? ['ymm1', 256, 'ymm0'] : ['xmm0', 128, '']
    const bitOf = (area: Uint8Array): bigint =>
      (new DataView(area.buffer).getBigUint64(XSTATE_BV, true) >> BigInt(bit)) & 1n
    const area = readXStateArea(tid)
    if (area.length < XSTATE_BV + 8) {
      // A CPU or kernel without XSAVE (FXSAVE's 512 bytes, no XSTATE_BV): nothing is ever in an init state.
      proc.thread.setRegisters({ xmm0: fresh(20, 128) })
      expect((await printed(proc)).xmm0).toBe(fresh(20, 128))
      return
    }
    expect(bitOf(area)).toBe(1n) // the fixture loaded it
    const view = new DataView(area.buffer)
    view.setBigUint64(XSTATE_BV, view.getBigUint64(XSTATE_BV, true) & ~(1n << BigInt(bit)), true)
    expect(hostArch().writeExtendedArea?.(tid, area)).toBe(0)
    expect(bitOf(readXStateArea(tid))).toBe(0n)
    proc.thread.setRegisters({ [name]: fresh(20, width) })
    const after = readXStateArea(tid)
    expect(bitOf(after)).toBe(1n)
    expect(decodeXState(after, xsaveAreaLayout(after))[name]).toBe(fresh(20, width))
    const out = await printed(proc)
    expect(out[name]).toBe(fresh(20, width))
    if (AVX512) expect(out[neighbour]).toBe(0n)
    else if (AVX) expect(out[neighbour]).toBe(vectorPattern(0, 128)) // its upper half went with the component
  })

  it('writes each thread of a process its own values, the others untouched', async () => {
    const proc = await start(fixture('threads'), { args: ['3', '1000000'] })
    proc.breakAt('worker_tick')
    expect((await proc.cont()).kind).toBe('breakpoint')
    const threads = proc.threads
    expect(threads.length).toBeGreaterThanOrEqual(2)
    const before = proc.createSnapshot({ level: 'base' })
    // Registers worker_tick does not read at its entry; the process is killed afterwards anyway.
    for (const t of threads) t.setRegisters({ r13: BigInt(1000 + t.index), xmm13: fresh(40 + t.index, 128) })
    expect(proc.regs.r13).toBe(BigInt(1000 + proc.thread.index)) // the stopped thread's cached block follows
    const after = proc.createSnapshot({ level: 'base' })
    for (const [i, t] of after.threads.entries()) {
      const old = before.threads[i]?.regs ?? {}
      expect([t.regs.r13, t.regs.xmm13]).toEqual([BigInt(1000 + t.index), fresh(40 + t.index, 128)])
      expect([t.regs.rip, t.regs.rsp, t.regs.xmm12, t.regs.st0]).toEqual([old.rip, old.rsp, old.xmm12, old.st0])
    }
  })

  it('moves rip: the program runs on from there', async () => {
    const proc = await atCheckpoint()
    proc.thread.setRegisters({ rip: proc.resolve('jumped') })
    expect(await proc.wait()).toEqual({ exitCode: 3 })
    expect(proc.stdout).toBe(`level ${LEVEL}\njumped\n`)
  })

  it("puts back a saved snapshot's registers, every one of them, after they were changed", async () => {
    const proc = await atCheckpoint()
    const dir = mkdtempSync(join(tmpdir(), 'procsnap-regs-'))
    dirs.push(dir)
    const captured = proc.thread.createSnapshot({ level: 'base' })
    captured.save(join(dir, 'snap'))
    const saved = loadSnapshot(join(dir, 'snap')).regs
    const changed: Record<string, bigint> = { rax: 1n, xmm0: 2n, st0: X87_2_5, st1: X87_1_5, mxcsr: 0x7f80n }
    if (AVX) changed.ymm1 = 3n
    if (AVX512) Object.assign(changed, { zmm16: 4n, k2: 5n })
    proc.thread.setRegisters(changed)
    proc.thread.setRegisters(captured.regs) // a captured snapshot's registers, decoded as they are read
    expect(Object.entries(proc.thread.createSnapshot({ level: 'base' }).regs)).toEqual(Object.entries(saved))
    proc.thread.setRegisters(changed)
    proc.thread.setRegisters({ ...saved }) // a loaded one's, a plain record
    expect(Object.entries(proc.thread.createSnapshot({ level: 'base' }).regs)).toEqual(Object.entries(saved))
    const out = await printed(proc)
    expect(out.rax).toBe(0x1111222233334444n)
    expect(out.xmm0).toBe(vectorPattern(0, 128))
    expect(out.st0).toBe(X87_1_5)
    expect(out.st1).toBe(X87_PI)
    expect(out.mxcsr).toBe(0x1f80n)
    if (AVX) expect(out.ymm1).toBe(vectorPattern(1, 256))
    if (AVX512) expect([out.zmm16, out.k2]).toEqual([vectorPattern(16, 512), 0xffn])
  })

  it("names a register this CPU lacks with a typed error that lists the CPU's components", async () => {
    const proc = await atCheckpoint()
    if (!AVX512) {
      // The real case: a snapshot from an AVX-512 machine restored here.
      const error = caughtProcsnapError(() => proc.thread.setRegisters({ rax: 9n, zmm16: 1n }))
      expect(error.code).toBe('ERR_UNKNOWN_REGISTER')
      expect(error.message).toMatch(/zmm16.*AVX-512/)
      expect(error.message).toContain(COMPONENTS.join(', '))
      expect(proc.regs.rax).toBe(0x1111222233334444n) // nothing written
      if (!AVX) expect(caughtProcsnapError(() => proc.thread.setRegisters({ ymm0: 1n })).message).toMatch(/ymm0/)
    }
    // Every CPU: an area with only the FXSAVE part (a kernel without XSAVE) has no ymm or zmm register.
    const fxsave = readXStateArea(proc.thread.tid).slice(0, 512)
    const error = caughtProcsnapError(() => encodeXState({ zmm16: 1n }, fxsave))
    expect(error.code).toBe('ERR_UNKNOWN_REGISTER')
    expect(error.message).toMatch(/no xsave area.*zmm16.*x87, sse/)
    expect(decodeXState(encodeXState({ xmm3: 7n }, fxsave), undefined).xmm3).toBe(7n)
    // An area cut short (not what the kernel gives): a typed error, not a RangeError.
    if (AVX) expect(caughtProcsnapError(() => encodeXState({ ymm15: 1n }, shortArea(proc))).code).toBe('ERR_BAD_VALUE')
  })

  it('refuses unknown names and values out of range before writing anything', async () => {
    const proc = await atCheckpoint()
    const thread = proc.thread
    const unknown = caughtProcsnapError(() => thread.setRegisters({ rxa: 1n }))
    expect(unknown.code).toBe('ERR_UNKNOWN_REGISTER')
    expect(unknown.message).toContain('Did you mean rax')
    expect(caughtProcsnapError(() => thread.setRegisters({ xmm32: 1n })).code).toBe('ERR_UNKNOWN_REGISTER')
    const cases: Record<string, bigint>[] = [
      { rax: 1n << 64n },
      { eax: 1n << 32n },
      { xmm0: 1n << 128n },
      { xmm1: -1n },
      { st0: 1n << 80n },
      { mxcsr: 1n << 20n }, // reserved on every CPU
      { fcw: 0x10000n },
    ]
    if (AVX) cases.push({ ymm0: 1n << 256n }, { ymm2: 5n, xmm2: 6n }) // two values for the same bits
    if (AVX512) cases.push({ zmm16: 1n << 512n }, { k0: 1n << 64n })
    for (const values of cases) {
      const error = caughtProcsnapError(() => thread.setRegisters({ rbx: 77n, xmm9: 77n, ...values }))
      expect(error.code, JSON.stringify(Object.keys(values))).toBe('ERR_BAD_VALUE')
    }
    // Nothing of the refused calls reached the thread.
    expect(proc.regs.rbx).not.toBe(77n)
    const area = readXStateArea(thread.tid)
    expect(decodeXState(area, xsaveAreaLayout(area)).xmm9).toBe(0n)
  })
})

describe('proc.regs for extended registers', () => {
  it('reads them from the thread and writes them through', async () => {
    const proc = await atCheckpoint()
    const regs = proc.regs
    expect(regs.xmm0).toBe(vectorPattern(0, 128))
    expect(regs.st1).toBe(X87_PI)
    expect(regs.mxcsr).toBe(0x1f80n)
    regs.xmm0 = fresh(30, 128)
    regs.st0 = X87_2_5
    expect(regs.xmm0).toBe(fresh(30, 128))
    if (AVX) {
      expect(regs.ymm1).toBe(vectorPattern(1, 256))
      regs.ymm1 = 7n
    }
    if (AVX512) {
      expect(regs.zmm16).toBe(vectorPattern(16, 512))
      regs.zmm16 = fresh(31, 512)
      regs.k1 = 0x77n
    } else {
      const missing = caughtProcsnapError(() => regs.zmm16)
      expect(missing.code).toBe('ERR_UNKNOWN_REGISTER')
      expect(missing.message).toMatch(/no register zmm16: .*AVX-512/)
      expect(caughtProcsnapError(() => (regs.zmm16 = 1n)).code).toBe('ERR_UNKNOWN_REGISTER')
    }
    const bad = regs as unknown as Record<string, unknown>
    for (const value of [-1n, 1.5, 'x', 1n << 128n]) {
      expect(caughtProcsnapError(() => (bad.xmm3 = value)).code, String(value)).toBe('ERR_BAD_VALUE')
    }
    expect(caughtProcsnapError(() => (bad.xmm99 = 1n)).code).toBe('ERR_UNKNOWN_REGISTER')
    expect(caughtProcsnapError(() => (regs.mxcsr_mask = 0n)).code).toBe('ERR_READ_ONLY')
    const out = await printed(proc)
    expect([out.xmm0, out.st0]).toEqual([fresh(30, 128), X87_2_5])
    if (AVX) expect(out.ymm1).toBe(7n)
    if (AVX512) expect([out.zmm16, out.k1]).toEqual([fresh(31, 512), 0x77n])
  })
})

const dirs: string[] = []
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
})
