// loadCore(path): core files we did not write (gdb's gcore, the kernel's) and saveCore's own, read as
// snapshots; gdb, in the same session that wrote the core, is the oracle of registers, frames and memory.
import { execFileSync, spawnSync } from 'node:child_process'
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { crashReport, loadCore, ProcsnapError } from '../../src/index.js'
import { hostArch } from '../../src/native/arch/index.js'
import { X86_GENERAL } from '../../src/snapshot/arch-info.js'
import { reserveAtReady } from './reserve.js'
import { fixture, start, vectorPattern } from '../helpers.js'

const dir = mkdtempSync(join(tmpdir(), 'procsnap-loadcore-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const COMPONENTS = hostArch().registerFeatures?.().components ?? []
const AVX = COMPONENTS.includes('avx')
const AVX512 = ['opmask', 'zmm_hi256', 'hi16_zmm'].every((c) => COMPONENTS.includes(c))
const M64 = (1n << 64n) - 1n

/** gdb -batch running `exe args` to `breakAt`, writing `core` there, then `commands`: what each printed. */
function gcore(
  exe: string,
  args: readonly string[],
  breakAt: string,
  core: string,
  commands: readonly string[],
): string[] {
  const ex = [`break ${breakAt}`, 'run', `gcore ${core}`, ...commands.flatMap((c, i) => [`echo @@${i}\\n`, c])]
  const text = execFileSync('gdb', ['-nx', '-batch', ...ex.flatMap((c) => ['-ex', c]), '--args', exe, ...args], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 120_000,
  })
  return text.split(/^@@\d+\n/m).slice(1)
}

/** `info registers` lines: name -> value. */
function registersIn(out: string | undefined): Map<string, bigint> {
  const regs = new Map<string, bigint>()
  for (const m of (out ?? '').matchAll(/^([a-z][a-z0-9_]*)\s+(0x[0-9a-f]+)\s/gm))
    regs.set(m[1] ?? '', BigInt(m[2] ?? '0'))
  return regs
}

/** Function names of a `bt` block, up to main. */
function frameNames(block: string | undefined): string[] {
  const names = [...(block ?? '').matchAll(/^#\d+\s+(?:0x[0-9a-f]+ in )?(\S+) \(/gm)].map((m) => m[1] ?? '')
  return names.slice(0, names.indexOf('main') + 1)
}

/** `{0x1, 0x2, ...}` or `x/` words as bigints. */
function hexWords(text: string | undefined): bigint[] {
  return [...(text ?? '').replace(/^0x[0-9a-f]+ <[^>]*>:/gm, '').matchAll(/0x[0-9a-f]+/g)].map((m) => BigInt(m[0]))
}

function words(value: bigint | undefined, count: number): bigint[] {
  return Array.from({ length: count }, (_, i) => ((value ?? 0n) >> BigInt(64 * i)) & M64)
}

function le64s(bytes: Uint8Array): bigint[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  return Array.from({ length: bytes.length / 8 }, (_, i) => view.getBigUint64(8 * i, true))
}

describe('loadCore of gdb gcore', () => {
  it('gives the registers, frames and memory gdb shows in the session that wrote the core', () => {
    const core = join(dir, 'counter.gcore')
    // The third call of bump: g_counter and g_total are no longer zero.
    const [regs, bt, mem] = gcore(fixture('counter'), ['5'], 'bump if by == 3', core, [
      'info registers',
      'bt',
      'x/2xg &g_total',
    ])
    const snap = loadCore(core)
    const gdbRegs = registersIn(regs)
    for (const name of X86_GENERAL.slice(0, 17)) expect(snap.regs[name], name).toBe(gdbRegs.get(name))
    expect(snap.regs.rip).toBe(gdbRegs.get('rip'))
    expect(snap.stop?.kind).toBe('breakpoint')
    expect(snap.exe).toBe(fixture('counter'))
    expect(snap.argv).toEqual([fixture('counter'), '5'])
    const ours = snap.backtrace().map((f) => f.symbol)
    expect(ours.slice(0, ours.indexOf('main') + 1)).toEqual(frameNames(bt))
    const total = hexWords(mem)
    expect(total.length).toBe(2)
    expect(le64s(snap.memory.read('g_total', 16))).toEqual(total)
    expect(total[0]).not.toBe(0n)
  })

  it('gives every thread of a multi-threaded process, with the frames gdb shows in each', () => {
    const core = join(dir, 'threads.gcore')
    const [threads, bts] = gcore(fixture('threads'), ['4', '100000'], 'worker_tick', core, [
      'info threads',
      'thread apply all bt',
    ])
    const snap = loadCore(core)
    const lwps = [...(threads ?? '').matchAll(/\(LWP (\d+)\)/g)].map((m) => Number(m[1]))
    expect(lwps.length).toBeGreaterThan(1) // the main thread and the worker that hit first, at least
    expect(snap.threads.map((t) => t.tid).sort()).toEqual([...lwps].sort())
    // The main thread (tid = pid) is index 1; the thread at the breakpoint is the current one.
    expect(snap.threads[0]?.tid).toBe(snap.pid)
    const current = /^\*\s+\d+\s+Thread 0x[0-9a-f]+ \(LWP (\d+)\)/m.exec(threads ?? '')?.[1]
    expect(snap.threads.find((t) => t.index === snap.stop?.thread)?.tid).toBe(Number(current))
    expect(snap.backtrace()[0]?.symbol).toBe('worker_tick')
    // Per worker thread, the fixture's own functions in gdb's bt are those in ours, in order. (The main
    // thread, in clone3, is left out: gdb unwinds it with libc's debug files, procsnap with .eh_frame alone.)
    const ownNames = ['worker_tick', 'worker', 'main']
    const blocks = (bts ?? '').split(/^Thread \d+ /m).filter((b) => / in worker \(/.test(b))
    expect(blocks.length).toBeGreaterThan(0)
    for (const block of blocks) {
      const lwp = Number(/\(LWP (\d+)\)/.exec(block)?.[1])
      const thread = snap.threads.find((t) => t.tid === lwp)
      const theirs = [...block.matchAll(/^#\d+\s+(?:0x[0-9a-f]+ in )?(\S+) \(/gm)].map((m) => m[1] ?? '')
      const ours = thread?.backtrace.map((f) => f.symbol ?? '') ?? []
      expect(
        ours.filter((n) => ownNames.includes(n)),
        block,
      ).toEqual(theirs.filter((n) => ownNames.includes(n)))
    }
  })

  it.runIf(AVX)('decodes the xsave note: xmm and ymm equal gdb’s', () => {
    const core = join(dir, 'vecregs.gcore')
    const regs = [0, 1, 7, 15]
    const out = gcore(fixture('vecregs'), [], 'checkpoint', core, [
      ...regs.map((r) => `p/x $ymm${r}.v4_int64`),
      'p/x $mxcsr',
    ])
    const snap = loadCore(core)
    regs.forEach((r, i) => {
      expect(words(snap.regs[`ymm${r}`], 4), `ymm${r}`).toEqual(hexWords(out[i]))
      expect(snap.regs[`xmm${r}`], `xmm${r}`).toBe((snap.regs[`ymm${r}`] ?? 0n) & ((1n << 128n) - 1n))
    })
    expect(snap.regs.ymm1).not.toBe(0n)
    expect(snap.regs.mxcsr).toBe(hexWords(out[regs.length])[0])
  })
})

/** Where the kernel writes a core for a process whose cwd is `cwd`, or why a test cannot have one. */
function kernelCoreDir(): { ok: true } | { ok: false; why: string } {
  const pattern = readFileSync('/proc/sys/kernel/core_pattern', 'utf8').trim()
  if (pattern.startsWith('|'))
    return { ok: false, why: `core_pattern pipes cores to a program (${pattern}): no file for a test to read` }
  if (pattern.includes('/')) return { ok: false, why: `core_pattern writes cores elsewhere (${pattern})` }
  return { ok: true }
}

/** Runs `exe args` in a fresh directory with `ulimit -c unlimited` until it dumps core; the core's path. */
function kernelCore(exe: string, args: readonly string[]): string {
  const cwd = mkdtempSync(join(dir, 'kernel-'))
  const run = spawnSync('bash', ['-c', 'ulimit -c unlimited && exec "$@"', 'bash', exe, ...args], {
    cwd,
    stdio: 'ignore',
    timeout: 60_000,
  })
  expect(run.signal).not.toBeNull()
  const core = readdirSync(cwd).find((f) => f.startsWith('core'))
  if (!core) throw new Error(`${exe} died of ${run.signal} and left no core in ${cwd} (core_pattern, ulimit?)`)
  return join(cwd, core)
}

const kernel = kernelCoreDir()

describe('loadCore of a kernel core', () => {
  it.skipIf(!kernel.ok)(
    `gives the signal, fault address and faulting frame${kernel.ok ? '' : ` (skipped: ${kernel.why})`}`,
    () => {
      const core = kernelCore(fixture('segfault'), [])
      const snap = loadCore(core)
      expect(snap.stop).toMatchObject({ kind: 'signal', signal: 'SIGSEGV', signo: 11, faultAddress: 0n })
      expect(snap.backtrace()[0]?.symbol).toBe('crash')
      expect(snap.backtrace()[1]?.symbol).toBe('main')
      // gdb reads the same core: the same pc and stack pointer.
      const out = execFileSync('gdb', ['-nx', '-batch', '-ex', 'info registers rip rsp', fixture('segfault'), core], {
        encoding: 'utf8',
      })
      const gdbRegs = registersIn(out)
      expect(snap.regs.rip).toBe(gdbRegs.get('rip'))
      expect(snap.regs.rsp).toBe(gdbRegs.get('rsp'))
      // The kernel leaves out the text of file maps: a 'writable' snapshot whose code maps say why they are not held.
      expect(snap.level).toBe('writable')
      const text = snap.maps.find((m) => m.path === fixture('segfault') && m.perms === 'r-xp')
      expect(text?.unreadable).toMatch(/core file holds none/)
      expect(snap.fds).toEqual([])
    },
  )

  it.skipIf(!kernel.ok)(
    "decodes the kernel's xsave area at this CPU's offsets (opmask at 832 on AMD Zen 4): the fixture's vector registers",
    () => {
      // vecregs at checkpoint with its registers loaded, sent SIGSEGV by gdb: the kernel dumps it there.
      const cwd = mkdtempSync(join(dir, 'kernel-vec-'))
      const ex = ['break checkpoint', 'run', 'signal SIGSEGV'].flatMap((c) => ['-ex', c])
      spawnSync(
        'bash',
        ['-c', 'ulimit -c unlimited && exec "$@"', 'bash', 'gdb', '-nx', '-batch', ...ex, fixture('vecregs')],
        {
          cwd,
          stdio: 'ignore',
          timeout: 120_000,
        },
      )
      const core = readdirSync(cwd).find((f) => f.startsWith('core'))
      expect(core, `no core in ${cwd}`).toBeDefined()
      const snap = loadCore(join(cwd, core ?? ''))
      expect(snap.stop).toMatchObject({ kind: 'signal', signal: 'SIGSEGV' })
      expect(snap.backtrace()[0]?.symbol).toBe('checkpoint')
      expect(snap.regs.rax).toBe(0x1111222233334444n)
      expect(snap.regs.st0).toBe(0x3fffc000000000000000n) // 1.5
      if (AVX512) {
        for (const r of [0, 1, 2, 16, 17]) expect(snap.regs[`zmm${r}`], `zmm${r}`).toBe(vectorPattern(r, 512))
        expect([snap.regs.k1, snap.regs.k2]).toEqual([0x1n, 0xffn])
      } else if (AVX) {
        for (const r of [0, 1]) expect(snap.regs[`ymm${r}`], `ymm${r}`).toBe(vectorPattern(r, 256))
      } else expect(snap.regs.xmm0).toBe(vectorPattern(0, 128))
    },
  )

  it.skipIf(!kernel.ok)('gives the crash signature the live snapshot of that crash gives', async () => {
    const proc = await start(fixture('crashes'), { args: ['write'], stderr: 'pipe' })
    expect((await proc.cont()).kind).toBe('signal')
    const live = crashReport(proc.createSnapshot({ level: 'writable' }))
    await proc.kill()
    const fromCore = crashReport(loadCore(kernelCore(fixture('crashes'), ['write'])))
    expect(fromCore.signature).toBe(live.signature)
    expect(fromCore.signatureText).toBe('SIGSEGV/SEGV_MAPERR crashes!store_null < crashes!run < crashes!main')
    expect(fromCore.cause).toBe(live.cause)
  })
})

describe('loadCore of saveCore', () => {
  it('gives back the snapshot: registers, maps and memory diff empty', async () => {
    // Not isolated: a core names files by their paths on the host (saveCore's NT_FILE), the snapshot by the program's.
    const proc = await start(fixture('vecregs'), { isolate: false })
    proc.breakAt('checkpoint')
    await proc.cont()
    const snap = proc.createSnapshot({ level: 'full' })
    const core = join(dir, 'vecregs.core')
    snap.saveCore(core)
    const back = loadCore(core)
    expect(back.level).toBe('full')
    expect(back.stop).toMatchObject({ kind: 'breakpoint', pc: snap.stop?.pc, location: snap.stop?.location })
    const diff = snap.diff(back)
    expect(diff.regs).toEqual([])
    expect(diff.memory).toEqual([])
    expect(diff.threads).toEqual([])
    expect(diff.backtrace).toEqual([])
    // [heap] is inferred (the core does not name it); a map with other perms would show here.
    expect(diff.maps.map((m) => `${m.kind} ${m.identity} ${m.fields.join(',')}`)).toEqual([])
    expect(back.threads.map((t) => t.tid)).toEqual(snap.threads.map((t) => t.tid))
    // Not in a core: the descriptors, the cwd.
    expect(back.fds).toEqual([])
    expect(snap.fds.length).toBeGreaterThan(0)
  })

  it('gives back a crash with its signature', async () => {
    const proc = await start(fixture('crashes'), { args: ['read'], stderr: 'pipe' })
    expect((await proc.cont()).kind).toBe('signal')
    const snap = proc.createSnapshot({ level: 'writable' })
    const core = join(dir, 'crash.core')
    snap.saveCore(core)
    const back = loadCore(core)
    expect(back.stop).toMatchObject({ kind: 'signal', signal: 'SIGSEGV', faultAddress: 0x10n })
    expect(crashReport(back).signature).toBe(crashReport(snap).signature)
  })

  it('{ exe } names the executable the core was of, where it has moved', async () => {
    const moved = join(dir, 'counter-moved')
    copyFileSync(fixture('counter'), moved)
    const core = join(dir, 'counter.core')
    const proc = await start(fixture('counter'), { args: ['3'] })
    proc.breakAt('bump')
    await proc.cont()
    proc.createSnapshot().saveCore(core)
    await proc.kill()
    const back = loadCore(core, { exe: moved })
    expect(back.exe).toBe(moved)
    expect(back.maps.some((m) => m.path === moved)).toBe(true)
    expect(back.backtrace().map((f) => f.location)[0]).toBe('counter-moved!bump')
  })
})

/** A /proc/self/status field in KiB. */
function statusKiB(name: string): number {
  return Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(readFileSync('/proc/self/status', 'utf8'))?.[1])
}

describe('loadCore of a large core', () => {
  it('a 1 GiB map with 3 pages touched: read in bounded memory, the pages and the zeros as the snapshot holds them', async () => {
    const { buf, snap } = await reserveAtReady()
    const core = join(dir, 'reserve.core')
    snap.saveCore(core)
    writeFileSync('/proc/self/clear_refs', '5') // resets VmHWM, the peak RSS, to the RSS now
    const before = statusKiB('VmRSS')
    const back = loadCore(core)
    const rise = statusKiB('VmHWM') - before
    expect(rise, `peak RSS rose by ${rise} KiB`).toBeLessThan(64 * 1024)
    const step = ((1024n << 20n) / 3n) & ~4095n
    for (const at of [buf, buf + step + 8n, buf + 2n * step + 4088n, buf + 4096n])
      expect(back.memory.read(at, 64), `0x${at.toString(16)}`).toEqual(snap.memory.read(at, 64))
    expect(back.memory.read(buf, 8).some((b) => b !== 0)).toBe(true)
    expect(snap.diff(back).memory).toEqual([])
  })
})

describe('loadCore of bad cores', () => {
  /** A gcore-free core to damage: saveCore of counter at bump. */
  async function goodCore(): Promise<Uint8Array> {
    const core = join(dir, 'good.core')
    const proc = await start(fixture('counter'), { args: ['3'] })
    proc.breakAt('bump')
    await proc.cont()
    proc.createSnapshot({ level: 'writable' }).saveCore(core)
    await proc.kill()
    return new Uint8Array(readFileSync(core))
  }

  function codeOf(bytes: Uint8Array | string, name: string): string | undefined {
    const path = join(dir, name)
    writeFileSync(path, bytes)
    try {
      loadCore(path)
    } catch (error) {
      expect(error).toBeInstanceOf(ProcsnapError)
      return (error as ProcsnapError).code
    }
    return undefined
  }

  it('gives a typed error for each, reading nothing past what the file declares', async () => {
    const good = await goodCore()
    expect(codeOf(good, 'ok.core')).toBeUndefined()
    const patched = (at: number, bytes: number[]): Uint8Array => {
      const copy = good.slice()
      copy.set(bytes, at)
      return copy
    }
    expect(codeOf('not a core\n', 'text')).toBe('ERR_SNAPSHOT_FOREIGN')
    expect(codeOf('', 'empty')).toBe('ERR_SNAPSHOT_FOREIGN')
    expect(() => loadCore(dir)).toThrow(expect.objectContaining({ code: 'ERR_SNAPSHOT_FOREIGN' }))
    expect(codeOf(readFileSync(fixture('counter')), 'exe')).toBe('ERR_SNAPSHOT_FOREIGN')
    expect(codeOf(patched(16, [2, 0]), 'et-exec.core')).toBe('ERR_SNAPSHOT_FOREIGN')
    expect(codeOf(patched(4, [1]), 'elf32.core')).toBe('ERR_SNAPSHOT_ARCH')
    expect(codeOf(patched(18, [183, 0]), 'aarch64.core')).toBe('ERR_SNAPSHOT_ARCH')
    expect(codeOf(good.subarray(0, 40), 'short-header.core')).toBe('ERR_SNAPSHOT_CORRUPT')
    expect(codeOf(good.subarray(0, 200), 'short-phdrs.core')).toBe('ERR_SNAPSHOT_CORRUPT')
    const truncated = join(dir, 'truncated.core')
    writeFileSync(truncated, good)
    truncateSync(truncated, good.length - 4096)
    expect(codeOf(readFileSync(truncated), 'truncated.core')).toBe('ERR_SNAPSHOT_CORRUPT')
    // The first note's descsz made huge: it runs past its PT_NOTE segment.
    const view = new DataView(good.buffer, good.byteOffset, good.byteLength)
    const notesAt = Number(view.getBigUint64(64 + 8, true))
    expect(codeOf(patched(notesAt + 4, [0xff, 0xff, 0xff, 0x7f]), 'long-note.core')).toBe('ERR_SNAPSHOT_CORRUPT')
    // A PT_LOAD that holds bytes, made to declare them far past the end: by its size, then by its offset.
    const loaded = Array.from({ length: view.getUint16(56, true) }, (_, i) => 64 + 56 * i).find(
      (at) => view.getUint32(at, true) === 1 && view.getBigUint64(at + 32, true) > 0n,
    )
    expect(loaded).toBeDefined()
    expect(codeOf(patched((loaded ?? 0) + 32, [0, 0, 0, 0, 0, 1]), 'far-load.core')).toBe('ERR_SNAPSHOT_CORRUPT')
    expect(codeOf(patched((loaded ?? 0) + 8, [0, 0, 0, 0, 0, 0, 0, 0x7f]), 'far-offset.core')).toBe(
      'ERR_SNAPSHOT_CORRUPT',
    )
    // Its memsz made smaller than its filesz: more bytes than the map holds.
    expect(codeOf(patched((loaded ?? 0) + 40, [1, 0, 0, 0, 0, 0, 0, 0]), 'small-map.core')).toBe('ERR_SNAPSHOT_CORRUPT')
    const missing = (() => {
      try {
        loadCore(join(dir, 'none.core'))
      } catch (error) {
        return (error as ProcsnapError).code
      }
      return undefined
    })()
    expect(missing).toBe('ERR_SNAPSHOT_NOT_FOUND')
  })
})
