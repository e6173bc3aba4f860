// Backtraces of real stopped processes against gdb's for the same stop: the same return addresses, the same CFAs.
import { execFileSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { DEFAULT_ENV, parseElf, readElf, type Process } from '../../src/index.js'
import { unwind, type RawFrame, type UnwindInput, type UnwindModule } from '../../src/snapshot/unwind.js'
import { compileC, LIBC, makeTempDir } from '../elf/oracle.js'
import { fixture, start } from '../helpers.js'

interface GdbFrame {
  pc: bigint
  /** gdb's "frame at" (the CFA); undefined for the outermost frame, where gdb prints 0. */
  cfa: bigint | undefined
  name: string
}

// Prints every real frame (inline and tail-call frames are gdb's reconstructions from DWARF, not stack frames).
const FRAMES_PY = `
import gdb, re
f = gdb.newest_frame()
while f is not None:
    if f.type() not in (gdb.INLINE_FRAME, gdb.TAILCALL_FRAME):
        f.select()
        m = re.search(r'frame at (0x[0-9a-f]+)', gdb.execute('info frame', to_string=True))
        print('FRAME %#x %s %s' % (f.pc(), m.group(1) if m else '0x0', f.name() or '??'))
    f = f.older()
`
const dir = makeTempDir()
const framesPy = join(dir, 'frames.py')
writeFileSync(framesPy, FRAMES_PY)

const hex = (n: bigint): string => `0x${n.toString(16)}`

/**
 * gdb's frames at `address` (absolute: ASLR is off on both sides) once `condition` holds, with the environment our
 * launch gives (gdb passes its own environment on, less LINES and COLUMNS), so that stack addresses agree too.
 */
function gdbFrames(binary: string, args: readonly string[], address: bigint, condition = ''): GdbFrame[] {
  const out = execFileSync(
    'gdb',
    [
      '-batch',
      '-nx',
      '-ex',
      'set debuginfod enabled off',
      '-ex',
      'set startup-with-shell off',
      '-ex',
      'set disable-randomization on',
      '-ex',
      'set backtrace past-main on',
      '-ex',
      'set backtrace past-entry on',
      '-ex',
      'unset environment LINES',
      '-ex',
      'unset environment COLUMNS',
      '-ex',
      'handle SIGUSR1 nostop noprint pass',
      // Libraries are mapped once main runs: only then can a breakpoint go at an absolute address inside them.
      '-ex',
      'break main',
      '-ex',
      'run',
      '-ex',
      `break *${hex(address)} ${condition ? `if ${condition}` : ''}`,
      '-ex',
      'continue',
      '-ex',
      `source ${framesPy}`,
      '-ex',
      'kill',
      '--args',
      binary,
      ...args,
    ],
    { encoding: 'utf8', env: { ...DEFAULT_ENV }, timeout: 60_000, stdio: ['ignore', 'pipe', 'pipe'] },
  )
  const frames = [...out.matchAll(/^FRAME (0x[0-9a-f]+) (0x[0-9a-f]+) (\S+)$/gm)].map((m) => ({
    pc: BigInt(m[1] ?? ''),
    cfa: m[2] === '0x0' ? undefined : BigInt(m[2] ?? ''),
    name: m[3] ?? '',
  }))
  if (frames.length === 0) throw new Error(`gdb printed no frames:\n${out}`)
  return frames
}

function modulesOf(proc: Process): UnwindModule[] {
  return proc.modules.map((m) => ({ name: m.name, start: m.base, end: m.end, bias: m.bias, elf: m.elf }))
}

function inputOf(proc: Process, modules: readonly UnwindModule[] = modulesOf(proc)): UnwindInput {
  const read = (a: bigint, n: number): Uint8Array | undefined => {
    try {
      return proc.readMemory(a, n)
    } catch {
      return undefined
    }
  }
  return { arch: 'x86_64', regs: proc.regs.toJSON(), modules, read }
}

/** Launches `binary`, breaks at `location` and continues until `until` holds at a hit; returns the process and the address. */
async function stopAt(
  binary: string,
  args: string[],
  location: string,
  until: (proc: Process) => boolean = () => true,
): Promise<{ proc: Process; address: bigint }> {
  // gdb runs the program at its real path: isolated, the stack would hold /tmp/procsnap/... and the
  // CFAs of the two runs would differ by the strings' length (they did, from a clone under /tmp).
  const proc = await start(binary, { args, isolate: false })
  const address = proc.resolve(location)
  proc.breakAt(address)
  for (let i = 0; i < 1000; i++) {
    let event = await proc.cont()
    while (event.kind === 'signal') event = await proc.cont()
    expect(event.kind).toBe('breakpoint')
    if (until(proc)) break
  }
  expect(proc.regs.rip).toBe(address)
  return { proc, address }
}

/** Our frames must be gdb's: same pcs, and (when `cfas`) the same CFA for every frame gdb gives one. */
function expectSameFrames(ours: readonly RawFrame[], gdb: readonly GdbFrame[], cfas = true): void {
  const names = gdb.map((f) => f.name)
  expect({ names, pcs: ours.map((f) => hex(f.pc)) }).toEqual({ names, pcs: gdb.map((f) => hex(f.pc)) })
  if (cfas) {
    const want = gdb.map((f) => (f.cfa === undefined ? '-' : hex(f.cfa)))
    expect(ours.map((f, i) => (want[i] === '-' ? '-' : f.cfa === undefined ? 'none' : hex(f.cfa)))).toEqual(want)
  }
  // CFAs only grow towards the caller.
  const cfaList = ours.flatMap((f) => (f.cfa === undefined ? [] : [f.cfa]))
  expect(cfaList.every((c, i) => i === 0 || c > (cfaList[i - 1] ?? 0n))).toBe(true)
}

describe('unwind() against gdb', () => {
  it.each([
    ['fact', 'at the entry (CFA rsp+8)'],
    ['fact+1', 'after push rbp (CFA rsp+16)'],
    ['fact+8', 'in the body (CFA rbp+16)'],
  ])('recursion: %s %s, five frames of fact down to _start', async (location) => {
    const { proc, address } = await stopAt(fixture('recursion'), ['5'], location, (p) => p.regs.rdi === 1n)
    const ours = unwind(inputOf(proc))
    const gdb = gdbFrames(fixture('recursion'), ['5'], address, '$rdi == 1')
    expect(gdb.map((f) => f.name)).toEqual([
      'fact',
      'fact',
      'fact',
      'fact',
      'fact',
      'main',
      '__libc_start_call_main',
      '__libc_start_main_impl',
      '_start',
    ])
    expectSameFrames(ours, gdb)
    expect(ours.map((f) => f.via)).toEqual(['pc', ...Array<string>(8).fill('cfi')])
  })

  it('counter-O2: a leaf without a frame, and main without frame pointers', async () => {
    const { proc, address } = await stopAt(fixture('counter-O2'), ['3'], 'bump', (p) => p.regs.rdi === 2n)
    const gdb = gdbFrames(fixture('counter-O2'), ['3'], address, '$rdi == 2')
    expectSameFrames(unwind(inputOf(proc)), gdb)
    expect(gdb.map((f) => f.name).slice(0, 2)).toEqual(['bump', 'main'])
  })

  it('deep-O2: through a big frame, a rbp-based frame, rbp used as data, and -O2 recursion, where the frame-pointer chain fails', async () => {
    const { proc, address } = await stopAt(fixture('deep-O2'), ['3'], 'leaf')
    const gdb = gdbFrames(fixture('deep-O2'), ['3'], address)
    expect(gdb.map((f) => f.name).slice(0, 8)).toEqual([
      'leaf',
      'level3',
      'level2',
      'level1',
      'descend',
      'descend',
      'descend',
      'main',
    ])
    const ours = unwind(inputOf(proc))
    expectSameFrames(ours, gdb)
    expect(ours.slice(1).every((f) => f.via === 'cfi')).toBe(true)
    // Without CFI the same stop unwinds wrong: these functions keep no frame pointer.
    const chain = unwind(inputOf(proc, []))
    expect(chain.map((f) => f.pc)).not.toEqual(ours.map((f) => f.pc))
  })

  it('counter: a stop inside libc (write) unwinds through stdio, printf, main and __libc_start_call_main', async () => {
    const { proc, address } = await stopAt(fixture('counter'), ['3'], 'libc.so.6!write')
    const gdb = gdbFrames(fixture('counter'), ['3'], address)
    const names = gdb.map((f) => f.name)
    expect(names.slice(-4)).toEqual(['main', '__libc_start_call_main', '__libc_start_main_impl', '_start'])
    expect(names).toContain('__printf')
    expectSameFrames(unwind(inputOf(proc)), gdb)
  })

  it('counter -O0: the frame-pointer chain where the executable has no CFI, then CFI again in libc', async () => {
    const { proc, address } = await stopAt(fixture('counter'), ['3'], 'bump+4', (p) => p.regs.rdi === 2n)
    const gdb = gdbFrames(fixture('counter'), ['3'], address, '$rdi == 2')
    const withoutExe = modulesOf(proc).filter((m) => m.name !== 'counter')
    const ours = unwind(inputOf(proc, withoutExe))
    expectSameFrames(ours, gdb)
    // bump -> main and main -> __libc_start_call_main by [rbp]; libc's frames by CFI; _start (rbp 0 there) ends it.
    expect(ours.map((f) => f.via)).toEqual(['pc', 'fp', 'fp', 'cfi', 'cfi'])
    expect(gdb.map((f) => f.name)).toEqual([
      'bump',
      'main',
      '__libc_start_call_main',
      '__libc_start_main_impl',
      '_start',
    ])
  })

  it('threads: a worker thread unwinds through start_thread to clone3, where gdb stops too', async () => {
    const { proc, address } = await stopAt(fixture('threads'), ['2', '5'], 'worker_tick')
    expect(proc.thread.index).toBeGreaterThan(1)
    const gdb = gdbFrames(fixture('threads'), ['2', '5'], address)
    expect(gdb.map((f) => f.name)).toEqual(['worker_tick', 'worker', 'start_thread', 'clone3'])
    // Which worker hits first may differ between the two runs, and so would its stack: compare pcs only.
    const ours = unwind(inputOf(proc))
    expectSameFrames(ours, gdb, false)
  })

  it('a signal handler unwinds through __restore_rt into the interrupted code', async () => {
    const binary = compileC(dir, 'sighandler', SIGNAL_SOURCE, ['-g'])
    const { proc, address } = await stopAt(binary, [], 'on_signal')
    const gdb = gdbFrames(binary, [], address)
    const names = gdb.map((f) => f.name)
    expect(names.slice(0, 2)).toEqual(['on_signal', '__restore_rt'])
    expect(names).toContain('interrupted')
    expectSameFrames(unwind(inputOf(proc)), gdb)
  })

  it('the vDSO: its CFI is read from the image in memory (UnwindModule.bytes)', async () => {
    const binary = compileC(dir, 'vdso', VDSO_SOURCE, ['-g'])
    const proc = await start(binary, { isolate: false })
    const map = proc.maps.find((m) => m.path === '[vdso]')
    if (!map) throw new Error('no [vdso] map')
    const bytes = proc.readMemory(map.start, Number(map.end - map.start))
    const elf = parseElf(bytes, '[vdso]')
    const vdso: UnwindModule = {
      name: '[vdso]',
      start: map.start,
      end: map.end,
      bias: map.start - elf.minLoadVaddr,
      elf,
      bytes,
    }
    const address = vdso.bias + (elf.findSymbol('__vdso_clock_gettime')?.value ?? 0n)
    proc.breakAt(address)
    expect((await proc.cont()).kind).toBe('breakpoint')
    const gdb = gdbFrames(binary, [], address)
    // The vDSO's clock_gettime, called by libc's, called by spin.
    expect(gdb.map((f) => f.name).slice(0, 4)).toEqual(['clock_gettime', '__GI___clock_gettime', 'spin', 'main'])
    expectSameFrames(unwind(inputOf(proc, [vdso, ...modulesOf(proc)])), gdb)
  })
})

const UNSUPPORTED_SOURCE = `
__attribute__((noinline)) int odd(int x)
{
	__asm__ volatile(".cfi_remember_state\\n\\t.cfi_escape 0x0f, 0x01, 0x97\\n\\t.globl odd_nop\\nodd_nop:\\n\\tnop\\n\\t.cfi_restore_state" ::: "memory");
	return x + 1;
}
int main(void) { return odd(1) != 2; }
`

const VDSO_SOURCE = `
#include <time.h>
__attribute__((noinline)) long spin(void) { struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts); return ts.tv_nsec; }
int main(void) { return spin() < 0; }
`

const SIGNAL_SOURCE = `
#include <signal.h>
volatile int g_hits;
__attribute__((noinline)) void on_signal(int sig) { g_hits += sig; __asm__ volatile("" ::: "memory"); }
__attribute__((noinline)) void interrupted(void) { raise(SIGUSR1); __asm__ volatile("" ::: "memory"); }
int main(void) { signal(SIGUSR1, on_signal); interrupted(); return g_hits == SIGUSR1 ? 0 : 1; }
`

describe('unwind() on bad input', () => {
  it('falls back to the frame-pointer chain on a row it cannot evaluate (an unsupported DW_OP)', async () => {
    const binary = compileC(dir, 'unsupported', UNSUPPORTED_SOURCE, ['-g'])
    const { proc } = await stopAt(binary, [], 'odd_nop')
    const frames = unwind(inputOf(proc))
    expect(frames.map((f) => f.via).slice(0, 3)).toEqual(['pc', 'fp', 'cfi'])
    expect(proc.symbolize(frames[1]?.pc ?? 0n)).toMatch(/!main\+/)
    expect(proc.symbolize(frames[frames.length - 1]?.pc ?? 0n)).toMatch(/!_start\+/)
  })

  it('returns frame 0 alone for another architecture, and nothing without a pc', () => {
    const read = (): undefined => undefined
    expect(unwind({ arch: 'aarch64', regs: { pc: 0x1000n, sp: 0x2000n }, modules: [], read })).toEqual([
      { pc: 0x1000n, via: 'pc' },
    ])
    expect(unwind({ arch: 'x86_64', regs: {}, modules: [], read })).toEqual([])
  })

  it('ends the trace on unreadable or throwing memory, and on garbage registers', () => {
    const regs = { rip: 0x1234n, rsp: 0x7ffe0000n, rbp: 0x7ffe0100n }
    expect(unwind({ arch: 'x86_64', regs, modules: [], read: () => undefined })).toEqual([{ pc: 0x1234n, via: 'pc' }])
    const throwing = (): Uint8Array => {
      throw new Error('EIO')
    }
    expect(unwind({ arch: 'x86_64', regs, modules: [], read: throwing })).toEqual([{ pc: 0x1234n, via: 'pc' }])
    expect(unwind({ arch: 'x86_64', regs: { rip: 0n, rsp: 0n, rbp: 0n }, modules: [], read: throwing })).toHaveLength(1)
  })

  it('never throws on random stack contents, and stops at maxFrames', () => {
    const libc = readElf(LIBC)
    const module: UnwindModule = {
      name: 'libc.so.6',
      start: 0x7f0000000000n,
      end: 0x7f0000000000n + 0x200000n,
      bias: 0x7f0000000000n,
      elf: libc,
    }
    let seed = 12345
    const random = (): number => (seed = (seed * 1103515245 + 12345) & 0x7fffffff)
    for (let i = 0; i < 200; i++) {
      const read = (a: bigint, n: number): Uint8Array | undefined => {
        if (random() % 50 === 0) return undefined
        // Mostly return addresses inside libc and stack-like values, sometimes anything.
        const pick = random() % 3
        const value =
          pick === 0
            ? module.start + BigInt(random() % 0x1a0000)
            : pick === 1
              ? a + BigInt(random() % 4096)
              : BigInt(random()) * BigInt(random())
        const out = new Uint8Array(n)
        new DataView(out.buffer).setBigUint64(0, value & 0xffff_ffff_ffff_ffffn, true)
        return out
      }
      const regs = {
        rip: module.start + BigInt(random() % 0x1a0000),
        rsp: 0x7ffe0000n + BigInt(random() % 4096) * 8n,
        rbp: 0x7ffe0000n + BigInt(random() % 4096) * 8n,
      }
      const frames = unwind({ arch: 'x86_64', regs, modules: [module], read, maxFrames: 40 })
      expect(frames.length).toBeGreaterThanOrEqual(1)
      expect(frames.length).toBeLessThanOrEqual(40)
    }
  })

  it('honours maxFrames on a real stack', async () => {
    const { proc } = await stopAt(fixture('recursion'), ['5'], 'fact', (p) => p.regs.rdi === 1n)
    const frames = unwind({ ...inputOf(proc), maxFrames: 3 })
    expect(frames).toHaveLength(3)
    expect(frames[2]?.cfa).toBeUndefined()
  })
})
