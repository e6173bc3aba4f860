// A program that loads many shared libraries (fixtures/c/manylibs.sh, 16 of them): launch reaches main,
// every library is a module with the build-id readelf reads, and a backtrace crosses a library.
import { execFileSync } from 'node:child_process'
import { dirname, join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { clearElfCache, elfCacheStats } from '../../src/elf/cache.js'
import { fixture, nmSymbol, start } from '../helpers.js'

const PROGRAM = fixture('manylibs-16/main')
const LIBS = Array.from({ length: 16 }, (_, i) => `libmany${String(i + 1).padStart(3, '0')}.so`)

/** The GNU build-id as readelf -n prints it (an oracle we did not write). */
function readelfBuildId(path: string): string {
  const out = execFileSync('readelf', ['-n', path], { encoding: 'utf8' })
  const id = /Build ID: ([0-9a-f]+)/.exec(out)?.[1]
  if (!id) throw new Error(`readelf: no build-id in ${path}`)
  return id
}

describe('a program with 16 shared libraries', () => {
  for (const isolate of [true, false]) {
    it(`reaches main with every library loaded (isolate: ${String(isolate)})`, async () => {
      const proc = await start(PROGRAM, { isolate })
      const bp = proc.breakAt('main')
      const ev = await proc.cont()
      expect(ev.kind).toBe('breakpoint')
      expect(ev.kind === 'breakpoint' && ev.breakpoint).toBe(bp)
      const exe = proc.modules.find((m) => m.name === 'main')
      expect(ev.kind === 'breakpoint' && ev.pc).toBe((exe?.bias ?? 0n) + nmSymbol(PROGRAM, 'main'))
      const names = proc.modules.map((m) => m.name)
      for (const lib of LIBS) expect(names).toContain(lib)
      expect(names).toContain('libc.so.6')
      for (const lib of LIBS) {
        const mod = proc.modules.find((m) => m.name === lib)
        const onDisk = join(dirname(PROGRAM), lib)
        expect(mod?.elf.buildId, lib).toBe(readelfBuildId(onDisk))
        // Its base is where the maps show the file at offset 0.
        const first = proc.maps.find((m) => m.path.endsWith(`/${lib}`) && m.offset === 0n)
        expect(mod?.base, lib).toBe(first?.start)
      }
      const snap = proc.createSnapshot()
      for (const lib of LIBS) {
        expect(snap.maps.find((m) => m.path.endsWith(`/${lib}`))?.buildId, lib).toBe(
          readelfBuildId(join(dirname(PROGRAM), lib)),
        )
      }
      expect((await proc.wait()).exitCode).toBe(0)
    })
  }

  it('stops in a library function and unwinds back through main', async () => {
    const proc = await start(PROGRAM)
    proc.breakAt('libmany007!many007')
    const ev = await proc.cont()
    expect(ev.kind === 'breakpoint' && ev.location).toBe('libmany007.so!many007')
    const lib = proc.modules.find((m) => m.name === 'libmany007.so')
    expect(ev.kind === 'breakpoint' && ev.pc).toBe(
      (lib?.bias ?? 0n) + nmSymbol(join(dirname(PROGRAM), 'libmany007.so'), 'many007'),
    )
    await proc.step() // past push rbp: the frame is half built, CFI still unwinds it
    const frames = proc.createSnapshot().backtrace()
    expect(frames.slice(0, 2).map((f) => `${f.module ?? '?'}!${f.symbol ?? '?'}`)).toEqual([
      'libmany007.so!many007',
      'main!main',
    ])
    expect(frames.some((f) => f.module === 'libc.so.6')).toBe(true)
  })

  it('breaks at main without reading a library: the executable is searched first, as it is once they are listed', async () => {
    clearElfCache()
    const before = elfCacheStats().parses
    const proc = await start(PROGRAM)
    const bp = proc.breakAt('main')
    const ev = await proc.cont()
    expect(ev.kind === 'breakpoint' && ev.breakpoint).toBe(bp)
    expect(elfCacheStats().parses - before).toBe(1) // main alone
    expect(proc.modules.length).toBe(16 + 3) // main, the libraries, libc, ld.so
    expect(elfCacheStats().parses - before).toBe(19)
    expect(bp.address).toBe(proc.resolve('main'))
    expect(bp.description).toBe('main!main')
  })

  it('parses each library once across launches', async () => {
    const first = await start(PROGRAM)
    expect(first.modules.length).toBeGreaterThan(16)
    await first.kill()
    const parses = elfCacheStats().parses
    const second = await start(PROGRAM)
    second.breakAt('main')
    await second.cont()
    expect(second.modules.length).toBeGreaterThan(16)
    expect(elfCacheStats().parses).toBe(parses)
  })

  it("clears the dead stack at the entry point even where a library's constructor grew the stack past the exec's", async () => {
    for (const fixedRandom of [true, false]) {
      const proc = await start(fixture('deepinit'), { fixedRandom })
      const stack = proc.maps.find((m) => m.path === '[stack]')
      const sp = proc.regs.rsp
      expect(Number(sp - (stack?.start ?? sp))).toBeGreaterThan(512 << 10) // grown beyond 132 KiB
      const dead = proc.readMemory(sp - BigInt(512 << 10), 512 << 10)
      const dirty = dead.filter((b) => b !== 0).length
      // Without fixedRandom nothing is cleared: the constructor's pattern is there to be seen.
      if (fixedRandom) expect(dirty).toBe(0)
      else expect(dirty).toBeGreaterThan(400 << 10)
      expect((await proc.wait()).exitCode).toBe(0)
      expect(proc.stdout.trim()).toBe('128')
    }
  })
})
