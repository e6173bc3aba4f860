// Pretty printing: exact, aligned text for registers, maps, backtraces, memory and diffs; ANSI colors
// only when asked (FORCE_COLOR, a TTY), never with NO_COLOR; and the pprint methods on a real snapshot.
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { SnapshotDiffData } from '../../src/index.js'
import { renderBacktrace, renderDiff, renderMaps, renderMemory, renderRegisters, shouldColor } from '../../src/snapshot/pprint.js'
import { fixture, start } from '../helpers.js'
import { aarch64CounterData } from './aarch64-data.js'

const ESC = '\x1b['
const plain = { color: false }
const colored = { color: true }
const names: Record<string, string> = { '0xaaaaaaaa0754': 'counter!bump', '0xaaaaaaaa0790': 'counter!main+0x3c' }
const symbolize = (a: bigint): string | undefined => names[`0x${a.toString(16)}`]

const data = aarch64CounterData()
const thread = data.threads[0] ?? (() => { throw new Error('no thread') })()

/** A sink with the shape pprint methods write to. */
function sink(isTTY = false): { text: () => string; stream: NodeJS.WritableStream & { isTTY: boolean } } {
  let out = ''
  const stream = { isTTY, write: (s: string) => ((out += s), true) } as unknown as NodeJS.WritableStream & { isTTY: boolean }
  return { text: () => out, stream }
}

describe('renderRegisters', () => {
  it('lists the general registers aligned, with symbols for pointers and decimals otherwise', () => {
    const lines = renderRegisters(data, thread, plain, symbolize).split('\n')
    expect(lines[0]).toBe('thread 1 (tid 4242), stopped at counter!bump (breakpoint)')
    expect(lines[1]).toBe('x0      0x0000000000000002  2')
    expect(lines).toContain('x30     0x0000aaaaaaaa0790  counter!main+0x3c')
    expect(lines).toContain('pc      0x0000aaaaaaaa0754  counter!bump')
    expect(lines).toContain('pstate  0x0000000060001000  1610616832')
    expect(lines.some((l) => l.startsWith('v0'))).toBe(false)
  })

  it('with all, adds the other registers at their full width, zero ones short', () => {
    const text = renderRegisters(data, thread, plain, symbolize, true)
    expect(text).toContain('\n-- vector\n')
    expect(text).toContain('v0      0x0123456789abcdeffedcba9876543210\n')
    expect(text).toContain('v31     0xffffffffffffffffffffffffffffffff\n')
    expect(text).toContain('v4      0x0\n')
    expect(text).toContain('fpsr    0x00000010\n')
  })

  it('shows negative values of general registers as signed decimals', () => {
    const t = { ...thread, regs: { ...thread.regs, x1: (1n << 64n) - 8n } }
    expect(renderRegisters(data, t, plain, () => undefined)).toContain('x1      0xfffffffffffffff8  -8\n')
  })
})

describe('renderMaps, renderBacktrace, renderMemory', () => {
  it('prints maps as aligned columns with what the level holds', () => {
    expect(renderMaps(data, plain).split('\n').slice(0, 5)).toEqual([
      'start           end              perms  offset   size     path               contents (writable)',
      '0xaaaaaaaa0000  0xaaaaaaaa1000   r-xp   0x0      0x1000   /opt/demo/counter',
      '0xaaaaaaab0000  0xaaaaaaab1000   r--p   0x10000  0x1000   /opt/demo/counter',
      '0xaaaaaaab1000  0xaaaaaaab2000   rw-p   0x11000  0x1000   /opt/demo/counter  held',
      '0xaaaaaaac0000  0xaaaaaaae1000   rw-p   0x0      0x21000  [heap]             held',
    ])
    expect(renderMaps(data, plain)).toContain('\n0xfffffffdf000  0x1000000000000  rw-p   0x0      0x21000  [stack]            held\n')
    const unreadable = { ...data, maps: [{ start: 0x1000n, end: 0x2000n, perms: '---p', offset: 0n, path: '', inode: 0, unreadable: 'not readable (---p)' }] }
    expect(renderMaps(unreadable, plain)).toContain('  unreadable: not readable (---p)\n')
  })

  it('prints a backtrace like gdb', () => {
    expect(renderBacktrace(thread.backtrace, plain)).toBe('#0  0x0000aaaaaaaa0754 in counter!bump\n#1  0x0000aaaaaaaa0790 in counter!main+0x3c\n')
    const fp = [{ ...thread.backtrace[0], via: 'fp' as const, pc: 1n, offset: 0n, location: '0x1' }]
    expect(renderBacktrace(fp, plain)).toBe('#0  0x0000000000000001 in 0x1  [frame pointer]\n')
  })

  it('prints memory as a hexdump with the symbolized start', () => {
    const bytes = new TextEncoder().encode('hello, arm64\n\0\0\0\x01\x02')
    expect(renderMemory(0xaaaaaaaa0754n, bytes, plain, symbolize)).toBe(
      '18 bytes at 0x0000aaaaaaaa0754 (counter!bump)\n' +
        '0x0000aaaaaaaa0754  68 65 6c 6c 6f 2c 20 61  72 6d 36 34 0a 00 00 00  |hello, arm64....|\n' +
        '0x0000aaaaaaaa0764  01 02                                             |..|\n',
    )
  })
})

describe('renderDiff', () => {
  const diff: SnapshotDiffData = {
    level: 'writable',
    levelNote: 'a is full, b is writable: compared at writable',
    regs: [{ thread: 1, name: 'x0', before: 1n, after: 2n }],
    maps: [],
    memory: [{ identity: '/opt/demo/counter@0x11000', mapOffset: 0x10n, addressBefore: 0x10n, addressAfter: 0x20n, before: Uint8Array.of(1, 0, 0, 0), after: Uint8Array.of(3, 0, 0, 0), location: 'counter!g_counter' }],
    threads: [],
    backtrace: [],
    isEmpty: false,
  }

  it('starts with a summary, then each change, old -> new', () => {
    expect(renderDiff(diff, 'aarch64', plain)).toBe(
      '1 register, 1 memory range, backtrace unchanged\n' +
        '(a is full, b is writable: compared at writable)\n' +
        'registers:\n' +
        '  x0  0x0000000000000001 -> 0x0000000000000002\n' +
        'memory:\n' +
        '  counter!g_counter @ 0x20: 01 00 00 00 -> 03 00 00 00\n',
    )
    expect(renderDiff({ level: 'base', regs: [], maps: [], memory: [], threads: [], backtrace: [], isEmpty: true }, 'x86_64', plain)).toBe('no differences\n')
  })

  it('cuts long memory ranges and names threads when several changed', () => {
    const long = { ...diff, levelNote: undefined, regs: [{ thread: 2, name: 'x1', before: 0n, after: 1n }], memory: [{ ...(diff.memory[0] ?? ({} as never)), before: new Uint8Array(40), after: new Uint8Array(40).fill(1) }] } as SnapshotDiffData
    const text = renderDiff(long, 'aarch64', plain)
    expect(text).toContain('  thread 2 x1  0x')
    expect(text).toContain(' … (40 bytes)')
  })

  it('colors old values red and new ones green only when asked', () => {
    expect(renderDiff(diff, 'aarch64', plain)).not.toContain(ESC)
    const text = renderDiff(diff, 'aarch64', colored)
    expect(text).toContain(`${ESC}31m0x0000000000000001${ESC}0m -> ${ESC}32m0x0000000000000002${ESC}0m`)
  })
})

describe('shouldColor', () => {
  afterEach(() => vi.unstubAllEnvs())

  it('follows FORCE_COLOR, then NO_COLOR, then whether the stream is a TTY', () => {
    vi.stubEnv('FORCE_COLOR', undefined)
    vi.stubEnv('NO_COLOR', undefined)
    expect(shouldColor({ isTTY: true })).toBe(true)
    expect(shouldColor({ isTTY: false })).toBe(false)
    expect(shouldColor({})).toBe(false)
    vi.stubEnv('NO_COLOR', '1')
    expect(shouldColor({ isTTY: true })).toBe(false)
    vi.stubEnv('FORCE_COLOR', '1')
    expect(shouldColor({ isTTY: false })).toBe(true)
    vi.stubEnv('FORCE_COLOR', '0')
    expect(shouldColor({ isTTY: true })).toBe(false)
  })
})

describe('pprint methods on a real snapshot', () => {
  it('print registers, maps, backtrace, memory and a diff to the given stream', async () => {
    const proc = await start(fixture('counter'), { args: ['3'] })
    proc.breakAt('bump')
    await proc.cont()
    await proc.cont()
    const a = proc.createSnapshot({ level: 'writable' })
    await proc.cont()
    const b = proc.createSnapshot({ level: 'writable' })
    const out = sink()
    a.pprintRegisters({ stream: out.stream })
    expect(out.text()).toContain(`rip       0x${proc.resolve('bump').toString(16).padStart(16, '0')}  counter!bump\n`)
    expect(out.text()).toContain('rdi       0x0000000000000002  2\n')
    a.pprintRegistersAll({ stream: out.stream })
    expect(out.text()).toMatch(/\nmxcsr +0x0000[0-9a-f]{4}\n/)
    a.pprintMaps({ stream: out.stream })
    expect(out.text()).toContain('[heap]')
    a.pprintBacktrace({ stream: out.stream })
    expect(out.text()).toContain('#0  ')
    expect(out.text()).toMatch(/#1 +0x[0-9a-f]{16} in counter!main\+0x[0-9a-f]+\n/)
    a.pprintMemory('g_message', 16, { stream: out.stream })
    expect(out.text()).toContain('(counter!g_message)\n')
    expect(out.text()).toContain('|hello...........|')
    expect(out.text()).not.toContain(ESC)
    const tty = sink(true)
    vi.stubEnv('FORCE_COLOR', undefined)
    vi.stubEnv('NO_COLOR', undefined)
    a.diff(b).pprint({ stream: tty.stream })
    vi.unstubAllEnvs()
    expect(tty.text()).toContain(ESC)
    // bump(2) -> bump(3): rdi, rax and eflags; g_counter, g_total, the stdout line in the heap, a stack slot
    expect(a.diff(b).toString()).toMatch(/^3 registers, 4 memory ranges, backtrace unchanged\nregisters:\n {2}rax {5}0x0000000000000002 -> 0x0000000000000003\n {2}rdi {5}0x0000000000000002 -> 0x0000000000000003\n/)
    expect(a.diff(b).toString()).toContain(`  counter!g_counter @ 0x${proc.resolve('g_counter').toString(16)}: 01 -> 03\n`)
  })
})
