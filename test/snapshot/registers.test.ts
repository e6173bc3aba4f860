// A captured thread's registers are the kernel's bytes (the GETREGS block and the xsave area),
// decoded when read. They must look exactly like the eager record they replace: the same names in
// the same order with the same values (the old decoding, readXState, is the oracle), aliases,
// read-only errors, printing, cloning, save/load and diffs; and the values must be gdb's at the
// same stop. The 256-thread fixture checks that every thread is there with its backtrace.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, realpathSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { inspect } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DEFAULT_ENV, launch, loadSnapshot, type Process, type ProcessSnapshot } from '../../src/index.js'
import { XSAVE_BIT, xsaveLayout } from '../../src/native/arch/x86_64-xsave-layout.js'
import { decodeXState, readXState, xsaveAreaLayout, xstateDecoders } from '../../src/native/arch/x86_64-xstate.js'
import { archInfo } from '../../src/snapshot/arch-info.js'
import { fixture } from '../helpers.js'

const dir = mkdtempSync(join(tmpdir(), 'procsnap-registers-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** The record capture built before registers stayed raw: GETREGS's registers, then readXState's. */
function eagerRecord(proc: Process, tid: number): Record<string, bigint> {
  const live = proc.threads.find((t) => t.tid === tid)
  if (!live) throw new Error(`no thread ${tid}`)
  return { ...live.regs.toJSON(), ...readXState(tid) }
}

function caughtCode(f: () => void): string | undefined {
  try {
    f()
  } catch (error) {
    return (error as { code?: string }).code ?? String(error)
  }
  return undefined
}

describe('a snapshot of 256 threads blocked in hold() (crowd)', () => {
  let proc: Process
  let snap: ProcessSnapshot

  beforeAll(async () => {
    // Shared by the tests below (helpers' start() would kill it after the first one).
    proc = await launch(fixture('crowd'), { timeout: 60_000 })
    proc.breakAt('all_started')
    await proc.cont()
    snap = proc.createSnapshot()
  }, 120_000)
  afterAll(async () => {
    await proc.kill()
  })

  it('lists all 257 threads, each worker with a backtrace through hold() and worker()', () => {
    expect(proc.threads.length).toBe(257)
    expect(snap.threads.map((t) => t.index)).toEqual(proc.threads.map((t) => t.index))
    expect(snap.backtrace(1)[0]?.location).toBe('crowd!all_started')
    expect(snap.backtrace(1).map((f) => f.symbol)).toContain('main')
    for (const t of snap.threads.slice(1)) {
      const symbols = t.backtrace.map((f) => f.symbol)
      expect(symbols, `thread ${t.index}`).toContain('hold')
      expect(symbols.indexOf('worker'), `thread ${t.index}`).toBe(symbols.indexOf('hold') + 1)
      expect(t.backtrace[0]?.pc).toBe(t.regs.rip)
    }
  })

  it("holds each thread's registers as the eager record did: the same names, in the same order, with the same values", () => {
    for (const live of proc.threads) {
      const old = eagerRecord(proc, live.tid)
      const regs = snap.threads.find((t) => t.tid === live.tid)?.regs ?? {}
      expect(Object.keys(regs), `thread ${live.index}`).toEqual(Object.keys(old))
      expect({ ...regs }, `thread ${live.index}`).toEqual(old)
      const data = snap.data.threads.find((t) => t.tid === live.tid)?.regs ?? {}
      expect(Object.entries(data)).toEqual(Object.entries(old))
    }
  })

  it('saves and loads every thread back equal: registers in order, backtraces', () => {
    const path = join(dir, 'crowd.json')
    snap.save(path)
    const back = loadSnapshot(path)
    expect(back.threads.length).toBe(257)
    snap.threads.forEach((t, i) => {
      const loaded = back.threads[i]
      expect(Object.keys(loaded?.regs ?? {})).toEqual(Object.keys(t.regs))
      expect(loaded?.regs).toEqual(t.regs)
      expect(loaded?.backtrace).toEqual(t.backtrace)
    })
    expect(back.diff(snap).isEmpty).toBe(true)
  })
})

/** gdb's major version: gdb 13 reads AVX-512 state at Intel's offsets on every CPU. */
function gdbMajor(): number {
  const first = execFileSync('gdb', ['--version'], { encoding: 'utf8' }).split('\n')[0] ?? ''
  return Number(/(\d+)\.\d+\S*\s*$/.exec(first)?.[1] ?? 0)
}

/** Where gdb before 14 reads each xsave component, whatever the CPU (i387-tdep.c). */
const INTEL_OFFSETS: ReadonlyMap<number, number> = new Map([
  [XSAVE_BIT.opmask, 1088],
  [XSAVE_BIT.zmmHi256, 1152],
  [XSAVE_BIT.hi16Zmm, 1664],
  [XSAVE_BIT.pkru, 2688],
])

/** The component past AVX that register `name` needs, if any. */
function componentPastAvx(name: string): number | undefined {
  if (name === 'pkru') return XSAVE_BIT.pkru
  const m = /^(xmm|ymm|zmm|k)(\d+)$/.exec(name)
  if (!m) return undefined
  if (m[1] === 'k') return XSAVE_BIT.opmask
  if (Number(m[2]) >= 16) return XSAVE_BIT.hi16Zmm
  return m[1] === 'zmm' ? XSAVE_BIT.zmmHi256 : undefined
}

/** What the vector fixture loaded into a vector or mask register (see fixtures/c/vector.c). */
function loadedValue(name: string): bigint | undefined {
  const masks = [0n, 0x1n, 0xffn, 0xf0f0n, 0x12345678n, 0xffffffffffffffffn, 0x8000000000000001n, 0x0123456789abcdefn]
  const m = /^(xmm|ymm|zmm|k)(\d+)$/.exec(name)
  if (!m) return undefined
  const r = Number(m[2])
  if (m[1] === 'k') return masks[r]
  const bytes = m[1] === 'xmm' ? 16 : m[1] === 'ymm' ? 32 : 64
  let value = 0n
  for (let i = bytes - 1; i >= 0; i--) {
    const at = 64 * r + i
    value = (value << 8n) | BigInt((at * 7 + 1 + Math.floor(at / 256)) & 0xff)
  }
  return value
}

const GENERAL = archInfo('x86_64').general
/** PKRU of a new process on Linux (init_pkru_value): every key but 0 access-disabled. */
const LINUX_INIT_PKRU = 0x55555554n

/** gdb at `checkpoint` of the vector fixture, launched as we launch it: every register we have a name for. */
function gdbAtCheckpoint(program: string, components: readonly string[]): Record<string, bigint> {
  const has = (c: string): boolean => components.includes(c)
  const avx512 = has('opmask') && has('zmm_hi256') && has('hi16_zmm')
  const ask: [string, string][] = []
  for (let i = 0; i < (avx512 ? 32 : 16); i++) {
    ask.push([`xmm${i}`, `p/x $xmm${i}.uint128`])
    if (has('avx')) ask.push([`ymm${i}`, `p/x $ymm${i}.v2_int128`])
    if (avx512) ask.push([`zmm${i}`, `p/x $zmm${i}.v4_int128`])
  }
  if (avx512) for (let i = 0; i < 8; i++) ask.push([`k${i}`, `p/x $k${i}`])
  if (has('pkru')) ask.push(['pkru', 'p/x $pkru'])
  for (let i = 0; i < 8; i++) ask.push([`st${i}`, `info registers st${i}`])
  ask.push(['fcw', 'p/x $fctrl'], ['fsw', 'p/x $fstat'], ['ftw', 'p/x $ftag'], ['fop', 'p/x $fop'])
  ask.push(['mxcsr', 'p/x $mxcsr'])
  for (const name of GENERAL) ask.push([name, `p/x $${name}`])
  const env = ['unset environment', ...Object.entries(DEFAULT_ENV).map(([k, v]) => `set environment ${k}=${v}`)]
  const args = ['-nx', '-batch', '-ex', 'set startup-with-shell off', '-ex', 'set disable-randomization on']
  for (const command of [...env, 'break *checkpoint', 'run']) args.push('-ex', command)
  for (const [name, command] of ask) args.push('-ex', `echo @${name}=`, '-ex', command)
  const out = execFileSync('gdb', [...args, '--args', program], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'], // the program's stdout is this pipe too
    timeout: 30_000,
    env: { ...process.env, LC_ALL: 'C' },
  })
  const regs: Record<string, bigint> = {}
  for (const m of out.matchAll(/^@(\w+)=(.*)$/gm)) {
    const [, name = '', text = ''] = m
    const raw = /\(raw (0x[0-9a-f]+)\)/.exec(text)?.[1]
    const parts = [...text.replace(/^\$\d+ = /, '').matchAll(/0x[0-9a-f]+/g)].map((p) => BigInt(p[0]))
    regs[name] = raw !== undefined ? BigInt(raw) : parts.reduceRight((acc, p) => (acc << 128n) | p, 0n)
  }
  return regs
}

describe('the registers of one captured thread (vector fixture at checkpoint)', () => {
  const vector = realpathSync(fixture('vector'))
  let proc: Process
  let snap: ProcessSnapshot

  beforeAll(async () => {
    // As gdb runs it: the same argv[0] and paths, stdout a pipe (a terminal would make printf write before the stop).
    proc = await launch(vector, { argv0: vector, isolate: false, stdout: 'pipe', stderr: 'pipe' })
    proc.breakAt('checkpoint')
    await proc.cont()
    snap = proc.createSnapshot()
  }, 30_000)
  afterAll(async () => {
    await proc.kill()
  })

  it("are gdb's at the same stop: general, x87, SSE, and the AVX / AVX-512 / PKRU registers the CPU has", () => {
    const theirs = gdbAtCheckpoint(vector, snap.cpu.components)
    const layout = xsaveLayout()
    const major = gdbMajor()
    const names = Object.keys(theirs)
    expect(names.length).toBeGreaterThanOrEqual(GENERAL.length + 16 + 13)
    for (const name of names) {
      const bit = componentPastAvx(name)
      // gdb 13 reads components past AVX at Intel's offsets: where this CPU puts them elsewhere (AMD), the fixture's values are the oracle.
      const misread = major < 14 && bit !== undefined && layout?.offsets.get(bit) !== INTEL_OFFSETS.get(bit)
      const expected = misread ? (name === 'pkru' ? LINUX_INIT_PKRU : loadedValue(name)) : theirs[name]
      expect(snap.regs[name], name).toBe(expected)
    }
    // A register is there exactly when the snapshot's CPU has its component.
    expect('zmm31' in snap.regs).toBe(snap.cpu.components.includes('hi16_zmm'))
    expect('ymm0' in snap.regs).toBe(snap.cpu.components.includes('avx'))
    expect('pkru' in snap.regs).toBe(snap.cpu.components.includes('pkru'))
  }, 60_000)

  it('have every alias as a non-enumerable view of its base register, and narrower vectors the low bits of wider ones', () => {
    const regs = snap.regs
    for (const [alias, info] of archInfo('x86_64').aliases) {
      const base = regs[info.base] ?? 0n
      expect(regs[alias], alias).toBe((base >> BigInt(info.shift)) & ((1n << BigInt(info.bits)) - 1n))
      expect(Object.prototype.propertyIsEnumerable.call(regs, alias), alias).toBe(false)
      expect(alias in regs).toBe(true)
    }
    expect(regs.eax).toBe((regs.rax ?? 0n) & 0xffffffffn)
    for (let i = 0; i < 32; i++) {
      const [xmm, ymm, zmm] = [regs[`xmm${i}`], regs[`ymm${i}`], regs[`zmm${i}`]]
      if (ymm !== undefined) expect(ymm & ((1n << 128n) - 1n), `ymm${i}`).toBe(xmm)
      if (zmm !== undefined) expect(zmm & ((1n << 256n) - 1n), `zmm${i}`).toBe(ymm)
    }
  })

  it('are read-only, frozen, and print, clone and serialize as their values', () => {
    const regs = snap.regs as Record<string, unknown>
    for (const name of ['rax', 'eax', 'xmm0', 'st0', 'nosuch']) {
      expect(
        caughtCode(() => {
          regs[name] = 1n
        }),
        name,
      ).toBe('ERR_READ_ONLY')
    }
    const data = snap.data.threads[0]?.regs as Record<string, unknown>
    expect(
      caughtCode(() => {
        data.rip = 0n
      }),
    ).toBe('ERR_READ_ONLY')
    expect(Object.isFrozen(snap.regs)).toBe(true)
    expect(regs.nosuch).toBeUndefined()
    expect(inspect(snap.regs)).toContain(`rax: ${snap.regs.rax}n`)
    expect(inspect(snap.regs)).toContain(`xmm0: ${snap.regs.xmm0}n`)
    expect(structuredClone(snap.regs)).toEqual({ ...snap.regs })
    const json = JSON.stringify(snap.regs, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString(16) : v))
    expect(JSON.parse(json)).toEqual(Object.fromEntries(Object.entries(snap.regs).map(([k, v]) => [k, v.toString(16)])))
  })

  it('print, diff and round-trip as the plain record a saved snapshot holds', () => {
    const path = join(dir, 'vector.json')
    snap.save(path)
    const back = loadSnapshot(path)
    expect(Object.keys(back.regs)).toEqual(Object.keys(snap.regs))
    expect(back.regs).toEqual(snap.regs)
    const printed = (s: ProcessSnapshot | typeof back): string => {
      let text = ''
      s.pprintRegistersAll({ stream: { write: (t: string) => (text += t) }, color: false })
      return text
    }
    expect(printed(back)).toBe(printed(snap))
    expect(snap.diff(back).regs).toEqual([])
    expect(back.diff(proc.createSnapshot()).regs).toEqual([])
  })
})

describe('the per-register decoders', () => {
  const layout = xsaveLayout()

  /** An xsave area of `size` bytes full of 0xa5 garbage, with `xstateBv` as its XSTATE_BV. */
  function garbage(size: number, xstateBv: bigint): Uint8Array {
    const area = new Uint8Array(size).fill(0xa5)
    if (size >= 520) Buffer.from(area.buffer).writeBigUInt64LE(xstateBv, 512)
    if (size >= 472 && layout) Buffer.from(area.buffer).writeBigUInt64LE(layout.xcr0, 464)
    return area
  }

  it('give what decodeXState gives, in its order: every component set, all in init state, a truncated area, bare FXSAVE', () => {
    if (!layout) throw new Error('CPUID cannot run here')
    const size = Math.max(layout.size, 576)
    const areas = [
      garbage(size, layout.xcr0),
      garbage(size, layout.xcr0 & 3n),
      garbage(size, layout.xcr0 & ~(1n << BigInt(XSAVE_BIT.zmmHi256))),
      garbage(size - 40, layout.xcr0), // the last component cut short
      garbage(512, 0n),
      garbage(100, 0n),
    ]
    for (const [i, area] of areas.entries()) {
      const table = xstateDecoders(area)
      const eager = decodeXState(area, xsaveAreaLayout(area))
      expect(Object.fromEntries(table.map((d) => [d.name, d.decode(area)])), `area ${i}`).toEqual(eager)
      expect(table.map((d) => d.name)).toEqual(Object.keys(eager))
    }
  })
})
