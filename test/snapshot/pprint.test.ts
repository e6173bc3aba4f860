// Pretty printing: exact, aligned text for registers (x86_64 and aarch64), maps, backtraces, memory
// and diffs; ANSI colors only when asked (FORCE_COLOR, NO_COLOR, a TTY); and the pprint methods of a
// snapshot of a real process.
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { Frame, MapState, SnapshotData, SnapshotDiffData, ThreadState } from '../../src/index.js'
import { archInfo } from '../../src/snapshot/arch-info.js'
import {
  renderBacktrace,
  renderDiff,
  renderMaps,
  renderMemory,
  renderRegisters,
  shouldColor,
} from '../../src/snapshot/pprint.js'
import { float80 } from '../../src/snapshot/pprint-registers.js'
import { fixture, le32, start } from '../helpers.js'
import { aarch64CounterData } from './aarch64-data.js'

const ESC = '\x1b['
const plain = { color: false }
const colored = { color: true }
const names: Record<string, string> = {
  '0xaaaaaaaa0754': 'counter!bump',
  '0xaaaaaaaa0790': 'counter!main+0x3c',
  '0x55555555513d': 'counter!bump+0x4',
  '0x7fffffffe000': '[stack]-0x1000',
  '0x555555558010': 'counter!g_counter',
}
const symbolize = (a: bigint): string | undefined => names[`0x${a.toString(16)}`]
const none = (): undefined => undefined

const arm = aarch64CounterData()
const armThread = arm.threads[0] as ThreadState

/** An x86_64 thread with AVX (ymm, no zmm): every general register, x87, SSE, vectors, pkru. */
function x86Data(extra: Record<string, bigint> = {}): SnapshotData {
  const regs: Record<string, bigint> = {}
  for (const name of archInfo('x86_64').general) regs[name] = 0n
  Object.assign(regs, {
    rax: 2n,
    rdi: 1n,
    rsp: 0x7fffffffe000n,
    r8: 0x1234567890abcdefn,
    rip: 0x55555555513dn,
    eflags: 0x246n,
    cs: 0x33n,
    ss: 0x2bn,
    orig_rax: (1n << 64n) - 1n,
  })
  for (let i = 0; i < 8; i++) regs[`st${i}`] = 0n
  Object.assign(regs, {
    st0: 0x3fff8000000000000000n,
    st1: 0xc000a000000000000000n,
    fcw: 0x37fn,
    fsw: 0n,
    ftw: 0xffffn,
    fop: 0n,
    fip: 0n,
    fdp: 0n,
    mxcsr: 0x1f80n,
    mxcsr_mask: 0xffffn,
  })
  for (let i = 0; i < 16; i++) [regs[`xmm${i}`], regs[`ymm${i}`]] = [0n, 0n]
  Object.assign(regs, { xmm0: 0xffn, ymm0: (1n << 128n) | 0xffn, xmm3: 5n, ymm3: 5n, pkru: 0x55555554n }, extra)
  const thread: ThreadState = { tid: 100, index: 1, regs, backtrace: [] }
  return {
    ...arm,
    arch: 'x86_64',
    pid: 100,
    threads: [thread],
    stop: { kind: 'breakpoint', thread: 1, pc: 0x55555555513dn, location: 'counter!bump+0x4' },
    cpu: { arch: 'x86_64', components: ['x87', 'sse', 'avx'] },
  }
}

function frame(location: string, pc: bigint, via: Frame['via'] = 'cfi'): Frame {
  return { pc, offset: 0n, location, via }
}

describe('renderRegisters', () => {
  it('prints x86_64 general registers, then every other group at full width, like info all-registers', () => {
    const data = x86Data()
    const zero = (name: string): string => `${name.padEnd(10)}  0x0000000000000000  0`
    expect(renderRegisters(data, data.threads[0] as ThreadState, plain, symbolize, true).split('\n')).toEqual([
      'thread 1 (tid 100): breakpoint at counter!bump+0x4',
      'rax         0x0000000000000002  2',
      ...['rbx', 'rcx', 'rdx', 'rsi'].map(zero),
      'rdi         0x0000000000000001  1',
      zero('rbp'),
      'rsp         0x00007fffffffe000  [stack]-0x1000',
      'r8          0x1234567890abcdef',
      ...['r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15'].map(zero),
      'rip         0x000055555555513d  counter!bump+0x4',
      'eflags      0x0000000000000246  [ PF ZF IF ]',
      'cs          0x0000000000000033  51',
      'ss          0x000000000000002b  43',
      ...['ds', 'es', 'fs', 'gs', 'fs_base', 'gs_base'].map(zero),
      'orig_rax    0xffffffffffffffff  -1',
      '-- x87',
      'st0         0x3fff8000000000000000  1',
      'st1         0xc000a000000000000000  -2.5',
      ...[2, 3, 4, 5, 6, 7].map((i) => `st${i}         0x00000000000000000000  0`),
      'fcw         0x037f',
      'fsw         0x0000',
      'ftw         0xffff',
      'fop         0x0000',
      'fip         0x0000000000000000',
      'fdp         0x0000000000000000',
      '-- sse',
      'mxcsr       0x00001f80  [ IM DM ZM OM UM PM ]',
      'mxcsr_mask  0x0000ffff',
      '-- vector (xmmN is the low 128 bits of ymmN)',
      'ymm0        0x0000000000000000_0000000000000001_0000000000000000_00000000000000ff',
      'ymm1-2      0',
      'ymm3        0x0000000000000000_0000000000000000_0000000000000000_0000000000000005',
      'ymm4-15     0',
      '-- control',
      'pkru        0x55555554',
      '',
    ])
  })

  it('shows the general registers only by default, aligned to their own names', () => {
    const data = x86Data()
    const text = renderRegisters(data, data.threads[0] as ThreadState, plain, symbolize)
    expect(text.split('\n')).toHaveLength(1 + 27 + 1)
    expect(text).toContain('\nrip       0x000055555555513d  counter!bump+0x4\n')
    expect(text).not.toContain('st0')
    expect(text).not.toContain('--')
  })

  it('with AVX-512, shows zmmN only (not xmmN, ymmN), and collapses zero mask registers', () => {
    const extra: Record<string, bigint> = { k1: 0xffn }
    for (let i = 0; i < 32; i++) [extra[`xmm${i}`], extra[`ymm${i}`], extra[`zmm${i}`]] = [0n, 0n, 0n]
    for (let i = 0; i < 8; i++) extra[`k${i}`] ??= 0n
    extra.zmm31 = 1n << 511n
    const data = x86Data(extra)
    const text = renderRegisters(data, data.threads[0] as ThreadState, plain, symbolize, true)
    expect(text).toContain('\n-- vector (xmmN, ymmN are the low 128, 256 bits of zmmN)\nzmm0-30     0\n')
    expect(text).toContain(`\nzmm31       0x8${'0'.repeat(15)}${'_0000000000000000'.repeat(7)}\n`)
    expect(text).toContain('\n-- mask\nk0          0\nk1          0x00000000000000ff\nk2-7        0\n-- control\n')
    expect(text).not.toMatch(/^[xy]mm/m)
  })

  it('prints aarch64 registers: x0-x30, sp, pc, pstate flags, v0-v31 by 64-bit lanes, fpsr, fpcr', () => {
    const lines = renderRegisters(arm, armThread, plain, symbolize, true).split('\n')
    expect(lines.slice(0, 3)).toEqual([
      'thread 1 (tid 4242): breakpoint at counter!bump',
      'x0      0x0000000000000002  2',
      'x1      0x1000000000001111',
    ])
    expect(lines.slice(30)).toEqual([
      'x29     0x0000fffffffff0b0',
      'x30     0x0000aaaaaaaa0790  counter!main+0x3c',
      'sp      0x0000fffffffff0a0',
      'pc      0x0000aaaaaaaa0754  counter!bump',
      'pstate  0x0000000060001000  [ EL=0 SSBS C Z ]',
      '-- vector',
      'v0      0x0123456789abcdef_fedcba9876543210',
      'v1      0x0123456789abcdef_fedcba9876543211',
      'v2      0x0123456789abcdef_fedcba9876543212',
      'v3      0x0123456789abcdef_fedcba9876543213',
      'v4-30   0',
      'v31     0xffffffffffffffff_ffffffffffffffff',
      'fpsr    0x00000010',
      'fpcr    0x00000000',
      '',
    ])
  })

  it('heads another thread without the stop, and shows negative values as signed decimals', () => {
    const t: ThreadState = {
      ...armThread,
      index: 2,
      tid: 4243,
      regs: { ...armThread.regs, x1: (1n << 64n) - 8n, x2: 0xffffffffn, x3: 0x100000000n },
    }
    const text = renderRegisters(arm, t, plain, none)
    expect(text.split('\n')[0]).toBe('thread 2 (tid 4243)')
    expect(text).toContain(
      '\nx1      0xfffffffffffffff8  -8\nx2      0x00000000ffffffff  4294967295\nx3      0x0000000100000000\n',
    )
  })

  it('decodes x87 80-bit values', () => {
    expect(float80(0n)).toBe('0')
    expect(float80(0x3fff8000000000000000n)).toBe('1')
    expect(float80(0x4000c90fdaa22168c235n)).toBe(String(Math.PI))
    expect(float80(0xffff8000000000000000n)).toBe('-inf')
    expect(float80(0x7fffc000000000000000n)).toBe('nan')
    expect(float80(0x7ffe8000000000000000n)).toBeUndefined() // beyond a double
  })
})

describe('renderMaps', () => {
  it('prints gdb-style columns, numbers right-aligned, with what the level holds of each map', () => {
    expect(renderMaps(arm, plain)).toBe(
      [
        'process 4242: 7 maps, writable snapshot (3 held)',
        '         start              end  perms   offset     size  contents  path',
        '0xaaaaaaaa0000   0xaaaaaaaa1000  r-xp       0x0   0x1000            /opt/demo/counter',
        '0xaaaaaaab0000   0xaaaaaaab1000  r--p   0x10000   0x1000            /opt/demo/counter',
        '0xaaaaaaab1000   0xaaaaaaab2000  rw-p   0x11000   0x1000  held      /opt/demo/counter',
        '0xaaaaaaac0000   0xaaaaaaae1000  rw-p       0x0  0x21000  held      [heap]',
        '0xfffff7ffb000   0xfffff7ffc000  r--p       0x0   0x1000            [vvar]',
        '0xfffff7ffc000   0xfffff7ffd000  r-xp       0x0   0x1000            [vdso]',
        '0xfffffffdf000  0x1000000000000  rw-p       0x0  0x21000  held      [stack]',
        '',
      ].join('\n'),
    )
  })

  it('marks unreadable maps with the reason after the path', () => {
    const maps: MapState[] = [
      {
        start: 0x1000n,
        end: 0x2000n,
        perms: '---p',
        offset: 0n,
        path: '',
        inode: 0,
        unreadable: 'not readable (---p)',
      },
      {
        start: 0x7ffff7fc2000n,
        end: 0x7ffff7fc6000n,
        perms: 'r--p',
        offset: 0n,
        path: '[vvar]',
        inode: 0,
        unreadable: '[vvar] is kernel data that ptrace cannot read',
      },
    ]
    expect(renderMaps({ ...arm, level: 'full', maps }, plain)).toBe(
      [
        'process 4242: 2 maps, full snapshot (0 held, 2 unreadable)',
        '         start             end  perms  offset    size  contents    path',
        '        0x1000          0x2000  ---p      0x0  0x1000  unreadable  (not readable (---p))',
        '0x7ffff7fc2000  0x7ffff7fc6000  r--p      0x0  0x4000  unreadable  [vvar]  ([vvar] is kernel data that ptrace cannot read)',
        '',
      ].join('\n'),
    )
  })

  it('marks maps held page by page as held, and those held up to a page that could not be read as part held', () => {
    const reason = 'from +0x1000 on, past the end of its file (11 bytes): the process would get SIGBUS, ptrace gets EIO'
    const maps: MapState[] = [
      {
        start: 0x1000n,
        end: 0x2000n,
        perms: '---p',
        offset: 0n,
        path: '',
        inode: 0,
        sparse: { size: 0x1000, pages: new Map() },
      },
      {
        start: 0x7ffff7fb9000n,
        end: 0x7ffff7fbc000n,
        perms: '---p',
        offset: 0n,
        path: '/tmp/small',
        inode: 7,
        sparse: { size: 0x1000, pages: new Map([[0, new Uint8Array(4096).fill(1)]]) },
        unreadable: reason,
      },
    ]
    expect(renderMaps({ ...arm, level: 'full', maps }, plain)).toBe(
      [
        'process 4242: 2 maps, full snapshot (1 held, 1 part held)',
        '         start             end  perms  offset    size  contents   path',
        '        0x1000          0x2000  ---p      0x0  0x1000  held',
        `0x7ffff7fb9000  0x7ffff7fbc000  ---p      0x0  0x3000  part held  /tmp/small  (${reason})`,
        '',
      ].join('\n'),
    )
  })
})

describe('renderBacktrace', () => {
  it('prints frames like gdb bt, marking frame-pointer frames', () => {
    expect(renderBacktrace(armThread.backtrace, plain)).toBe(
      '#0  0x0000aaaaaaaa0754 in counter!bump\n#1  0x0000aaaaaaaa0790 in counter!main+0x3c\n',
    )
    expect(renderBacktrace([frame('0x1', 1n, 'fp')], plain)).toBe('#0  0x0000000000000001 in 0x1  [fp]\n')
    expect(renderBacktrace([], plain)).toBe('no frames\n')
  })

  it('keeps addresses aligned past ten frames', () => {
    const frames = Array.from({ length: 11 }, (_, i) => frame(`deep!f${i}`, BigInt(0x1000 + i)))
    const lines = renderBacktrace(frames, plain).split('\n')
    expect(lines[0]).toBe('#0  0x0000000000001000 in deep!f0')
    expect(lines[10]).toBe('#10 0x000000000000100a in deep!f10')
  })
})

describe('renderMemory', () => {
  it('prints a hexdump with the symbolized start, two groups of 8 and an ASCII column', () => {
    const bytes = new TextEncoder().encode('hello, arm64\n\0\0\0\x01\x02')
    expect(renderMemory(0xaaaaaaaa0754n, bytes, plain, symbolize)).toBe(
      '18 bytes at 0x0000aaaaaaaa0754 (counter!bump)\n' +
        '0x0000aaaaaaaa0754  68 65 6c 6c 6f 2c 20 61  72 6d 36 34 0a 00 00 00  |hello, arm64....|\n' +
        '0x0000aaaaaaaa0764  01 02                                             |..|\n',
    )
    expect(renderMemory(0x10n, Uint8Array.of(0x41), plain, none)).toBe(
      '1 byte at 0x0000000000000010\n0x0000000000000010  41                                                |A|\n',
    )
  })

  it('folds repeated lines into one * and always shows the last line', () => {
    const bytes = new Uint8Array(80)
    bytes[0] = 0xff
    expect(renderMemory(0x1000n, bytes, plain, none).split('\n')).toEqual([
      '80 bytes at 0x0000000000001000',
      '0x0000000000001000  ff 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00  |................|',
      '0x0000000000001010  00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00  |................|',
      '*',
      '0x0000000000001040  00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00  |................|',
      '',
    ])
  })

  it('colors zero bytes dim and printable ones green, a run at a time', () => {
    const text = renderMemory(0x10n, Uint8Array.of(0x68, 0x69, 0, 0, 0xff), colored, none)
    expect(text).toContain(`${ESC}32m68 69${ESC}0m ${ESC}2m00 00${ESC}0m ff`)
    expect(text).toContain(`|${ESC}32mhi${ESC}0m${ESC}2m..${ESC}0m.|`)
  })
})

describe('renderDiff', () => {
  const counter = '5f1e2d3c4b5a69788796a5b4c3d2e1f001234567'
  const rebuilt = '8a9b0c1d2e3f405162738495a6b7c8d9e0f1a2b3'
  const map = (start: bigint, end: bigint, perms: string, path: string, buildId?: string): MapState => ({
    start,
    end,
    perms,
    offset: 0n,
    path,
    inode: path.startsWith('/') ? 7 : 0,
    ...(buildId ? { buildId } : {}),
  })
  const full: SnapshotDiffData = {
    level: 'writable',
    levelNote: 'a is full, b is writable: compared at writable',
    stop: {
      before: { kind: 'breakpoint', thread: 1, pc: 0x555555555139n, location: 'counter!bump' },
      after: {
        kind: 'signal',
        thread: 2,
        pc: 0x555555555200n,
        location: 'counter!crash+0x4',
        signal: 'SIGSEGV',
        signo: 11,
        code: 1,
        faultAddress: 0n,
      },
    },
    regs: [
      { thread: 1, name: 'rdi', before: 1n, after: 2n },
      { thread: 1, name: 'eflags', before: 0x246n, after: 0x202n },
      { thread: 2, name: 'xmm0', before: 0n, after: (1n << 64n) | 1n },
    ],
    memory: [
      {
        identity: '/opt/demo/counter@0x3000',
        mapOffset: 0x10n,
        addressBefore: 0x555555558010n,
        addressAfter: 0x555555558010n,
        before: Uint8Array.of(1, 0, 0, 0),
        after: Uint8Array.of(2, 0, 0, 0),
        location: 'counter!g_counter',
      },
      {
        identity: '[stack]',
        mapOffset: 0x20f00n,
        addressBefore: 0x7ffc0000f000n,
        addressAfter: 0x7ffd0000f000n,
        before: new Uint8Array(40),
        after: Uint8Array.from({ length: 40 }, (_, i) => i),
        location: '[stack]-0x100',
      },
    ],
    maps: [
      {
        kind: 'removed',
        identity: 'anon#1@[heap]',
        before: map(0x7ffff7dd2000n, 0x7ffff7dd5000n, 'rw-p', ''),
        fields: [],
      },
      {
        kind: 'changed',
        identity: '[heap]',
        before: map(0x555555559000n, 0x55555557a000n, 'rw-p', '[heap]'),
        after: map(0x555555559000n, 0x55555559b000n, 'rwxp', '[heap]'),
        fields: ['perms', 'size'],
      },
      {
        kind: 'changed',
        identity: '/opt/demo/counter@0x0',
        before: map(0x555555554000n, 0x555555555000n, 'r--p', '/opt/demo/counter', counter),
        after: map(0x555555554000n, 0x555555555000n, 'r--p', '/opt/demo/counter', rebuilt),
        fields: ['buildId'],
      },
      {
        kind: 'added',
        identity: '/usr/lib/libplugin.so@0x0',
        after: map(0x7ffff7fb0000n, 0x7ffff7fb1000n, 'r--p', '/usr/lib/libplugin.so'),
        fields: [],
      },
    ],
    threads: [
      { kind: 'added', index: 2, tid: 101 },
      { kind: 'removed', index: 3, tid: 102 },
    ],
    backtrace: [
      {
        thread: 1,
        before: [
          frame('counter!bump', 0x555555555139n, 'pc'),
          frame('counter!main+0x3c', 0x555555555190n),
          frame('libc.so.6!__libc_start_call_main+0x7a', 0x7ffff7dfc24an),
        ],
        after: [
          frame('counter!crash+0x4', 0x555555555200n, 'pc'),
          frame('counter!bump+0x10', 0x555555555149n, 'fp'),
          frame('counter!main+0x3c', 0x555555555190n),
          frame('libc.so.6!__libc_start_call_main+0x7a', 0x7ffff7dfc24an),
        ],
      },
    ],
    isEmpty: false,
  }
  const small: SnapshotDiffData = {
    level: 'writable',
    regs: [{ thread: 1, name: 'x0', before: 1n, after: 2n }],
    maps: [],
    memory: [full.memory[0] as SnapshotDiffData['memory'][number]],
    threads: [],
    backtrace: [],
    isEmpty: false,
  }

  it('prints a summary line, then every kind of change, old -> new', () => {
    expect(renderDiff(full, 'x86_64', plain).split('\n')).toEqual([
      'stop, 3 registers, 2 memory ranges, 4 maps, 2 threads, backtrace of thread 1 changed',
      '(a is full, b is writable: compared at writable)',
      'stop: breakpoint at counter!bump in thread 1 -> SIGSEGV at counter!crash+0x4 (fault address 0x0) in thread 2',
      'registers of thread 1:',
      '  rdi     0x1   -> 0x2',
      '  eflags  0x246 -> 0x202',
      'registers of thread 2:',
      '  xmm0  0x0000000000000000_0000000000000000 -> 0x0000000000000001_0000000000000001',
      'memory:',
      '  counter!g_counter @ 0x555555558010: 01 00 00 00 -> 02 00 00 00',
      `  [stack]-0x100 @ 0x7ffd0000f000 (was 0x7ffc0000f000): ${'00 '.repeat(15)}00 … +24 more ` +
        `(40 bytes) -> 00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f … +24 more (40 bytes)`,
      'maps:',
      '  - anon#1@[heap]  0x7ffff7dd2000-0x7ffff7dd5000 rw-p',
      '  ~ [heap]  perms rw-p -> rwxp, size 0x21000 -> 0x42000',
      `  ~ /opt/demo/counter@0x0  build-id ${counter} -> ${rebuilt}`,
      '  + /usr/lib/libplugin.so@0x0  0x7ffff7fb0000-0x7ffff7fb1000 r--p',
      'threads:',
      '  + thread 2 (tid 101)',
      '  - thread 3 (tid 102)',
      'backtrace of thread 1:',
      '  - #0  counter!bump',
      '  + #0  counter!crash+0x4',
      '  + #1  counter!bump+0x10 [fp]',
      '    #2  counter!main+0x3c',
      '    #3  libc.so.6!__libc_start_call_main+0x7a',
      '',
    ])
  })

  it('says so when nothing differs, and names only the parts that do', () => {
    expect(
      renderDiff(
        { level: 'base', regs: [], maps: [], memory: [], threads: [], backtrace: [], isEmpty: true },
        'x86_64',
        plain,
      ),
    ).toBe('no differences\n')
    expect(renderDiff(small, 'aarch64', plain)).toBe(
      '1 register, 1 memory range, backtrace unchanged\nregisters:\n  x0  0x1 -> 0x2\nmemory:\n  ' +
        'counter!g_counter @ 0x555555558010: 01 00 00 00 -> 02 00 00 00\n',
    )
  })

  it('colors old values red and new ones green, only the bytes that changed, and nothing without color', () => {
    for (const d of [full, small]) expect(renderDiff(d, 'x86_64', plain)).not.toContain('\x1b')
    const text = renderDiff(small, 'aarch64', colored)
    expect(text).toContain(`${ESC}1m1 register, 1 memory range, backtrace unchanged${ESC}0m\n`)
    expect(text).toContain(`  x0  ${ESC}31m0x1${ESC}0m -> ${ESC}32m0x2${ESC}0m\n`)
    expect(text).toContain(`${ESC}31m01${ESC}0m 00 00 00 -> ${ESC}32m02${ESC}0m 00 00 00\n`)
    // arrows stay aligned: padding is added outside the escape codes
    expect(renderDiff(full, 'x86_64', colored)).toContain(`  rdi     ${ESC}31m0x1${ESC}0m   -> ${ESC}32m0x2${ESC}0m\n`)
  })
})

describe('colors', () => {
  afterEach(() => vi.unstubAllEnvs())

  it('no renderer writes an escape code without color; each does with it', () => {
    const data = x86Data()
    const thread = data.threads[0] as ThreadState
    const outputs = (style: { color: boolean }): string[] => [
      renderRegisters(data, thread, style, symbolize, true),
      renderRegisters(arm, armThread, style, symbolize, true),
      renderMaps(arm, style),
      renderBacktrace([...armThread.backtrace, frame('0x1', 1n, 'fp')], style),
      renderMemory(0x10n, Uint8Array.of(0, 0x41, 0xff), style, symbolize),
    ]
    for (const text of outputs(plain)) expect(text).not.toContain('\x1b')
    for (const text of outputs(colored)) expect(text).toContain(ESC)
    expect(renderRegisters(arm, armThread, colored, symbolize)).toContain(
      `${ESC}36mpc${ESC}0m      0x0000aaaaaaaa0754  ${ESC}33mcounter!bump${ESC}0m\n`,
    )
    expect(renderBacktrace([frame('0x1', 1n, 'fp')], colored)).toBe(
      `#0  ${ESC}36m0x0000000000000001${ESC}0m in ${ESC}33m0x1${ESC}0m  ${ESC}2m[fp]${ESC}0m\n`,
    )
    expect(renderMaps(arm, colored)).toContain(`  ${ESC}32mheld${ESC}0m      ${ESC}34m[heap]${ESC}0m\n`)
  })

  it('shouldColor follows FORCE_COLOR, then NO_COLOR, then whether the stream is a TTY', () => {
    vi.stubEnv('FORCE_COLOR', undefined)
    vi.stubEnv('NO_COLOR', undefined)
    expect(shouldColor({ isTTY: true })).toBe(true)
    expect(shouldColor({ isTTY: false })).toBe(false)
    expect(shouldColor({})).toBe(false)
    expect(shouldColor(process.stdout)).toBe(process.stdout.isTTY === true)
    vi.stubEnv('NO_COLOR', '')
    expect(shouldColor({ isTTY: true })).toBe(true) // an empty NO_COLOR is unset (no-color.org)
    vi.stubEnv('NO_COLOR', '1')
    expect(shouldColor({ isTTY: true })).toBe(false)
    vi.stubEnv('FORCE_COLOR', '')
    expect(shouldColor({ isTTY: true })).toBe(false) // an empty FORCE_COLOR is unset: NO_COLOR decides
    vi.stubEnv('FORCE_COLOR', '1')
    expect(shouldColor({ isTTY: false })).toBe(true)
    vi.stubEnv('FORCE_COLOR', '3')
    expect(shouldColor({})).toBe(true)
    vi.stubEnv('FORCE_COLOR', '0')
    expect(shouldColor({ isTTY: true })).toBe(false)
    vi.stubEnv('FORCE_COLOR', 'false')
    expect(shouldColor({ isTTY: true })).toBe(false)
  })
})

/** A stream-like sink that pprint methods write to. */
function sink(isTTY = false): { text: () => string; stream: { isTTY: boolean; write: (s: string) => boolean } } {
  let out = ''
  return { text: () => out, stream: { isTTY, write: (s: string) => ((out += s), true) } }
}

describe('pprint methods on a snapshot of a real process', () => {
  afterEach(() => vi.unstubAllEnvs())

  it('print registers, maps, backtrace, memory and a diff to the given stream', async () => {
    const proc = await start(fixture('counter'), { args: ['3'], isolate: false }) // the maps print the fixture's real path
    proc.breakAt('bump')
    await proc.cont()
    await proc.cont()
    const a = proc.createSnapshot({ level: 'writable' })
    await proc.cont()
    const b = proc.createSnapshot({ level: 'writable' })
    const hex16 = (v: bigint): string => `0x${v.toString(16).padStart(16, '0')}`
    const bump = proc.resolve('bump')

    const regs = sink()
    a.pprintRegisters({ stream: regs.stream })
    expect(regs.text().split('\n')[0]).toBe(`thread 1 (tid ${proc.pid}): breakpoint at counter!bump`)
    expect(regs.text()).toContain(`\nrip       ${hex16(bump)}  counter!bump\n`)
    expect(regs.text()).toContain('\nrdi       0x0000000000000002  2\n')
    const rsp = a.regs.rsp ?? 0n
    expect(rsp).toBeGreaterThan(0n)
    expect(regs.text()).toContain(`\nrsp       ${hex16(rsp)}  ${a.symbolize(rsp)}\n`)
    const all = sink()
    a.pprintRegistersAll({ stream: all.stream })
    expect(all.text()).toMatch(/\n-- x87\nst0 +0x[0-9a-f]{20} /)
    expect(all.text()).toMatch(/\nmxcsr +0x0000[0-9a-f]{4}  \[ [A-Z ]*\]\n/)
    expect(all.text()).toMatch(/\n-- vector \(/)

    const maps = sink()
    a.pprintMaps({ stream: maps.stream })
    const data = a.maps.find((m) => m.path === fixture('counter') && m.perms === 'rw-p')
    expect(data?.content).toBeDefined()
    expect(maps.text()).toMatch(
      new RegExp(
        `\\n *0x${data?.start.toString(16)} +0x${data?.end.toString(16)}  rw-p +0x[0-9a-f]+ +0x1000  held +${fixture('counter')}\\n`,
      ),
    )
    expect(maps.text().split('\n')).toHaveLength(a.maps.length + 3)

    const bt = sink()
    a.pprintBacktrace({ stream: bt.stream })
    expect(bt.text()).toMatch(
      new RegExp(`^#0  ${hex16(bump)} in counter!bump\\n#1  0x[0-9a-f]{16} in counter!main\\+0x[0-9a-f]+\\n`),
    )

    const mem = sink()
    a.pprintMemory('g_counter', 4, { stream: mem.stream })
    const at = proc.resolve('g_counter')
    expect(le32(a.memory.read('g_counter', 4))).toBe(1) // bump(1) ran, bump(2) is about to
    expect(mem.text()).toBe(
      `4 bytes at ${hex16(at)} (counter!g_counter)\n${hex16(at)}  01 00 00 00${' '.repeat(39)}|....|\n`,
    )
    for (const s of [regs, all, maps, bt, mem]) expect(s.text()).not.toContain('\x1b')

    // bump(2) -> bump(3): rdi, rax and eflags; g_counter, g_total, the stdout line in the heap, a stack slot
    const diff = a.diff(b).toString()
    expect(diff).toMatch(
      /^3 registers, 4 memory ranges, backtrace unchanged\nregisters:\n {2}rax {5}0x2 {3}-> 0x3\n {2}rdi {5}0x2 {3}-> 0x3\n {2}eflags {2}0x[0-9a-f]+ -> 0x[0-9a-f]+\nmemory:\n/,
    )
    expect(diff).toContain(`\n  counter!g_counter @ 0x${at.toString(16)}: 01 -> 03\n`)
    const tty = sink(true)
    vi.stubEnv('FORCE_COLOR', undefined)
    vi.stubEnv('NO_COLOR', undefined)
    a.diff(b).pprint({ stream: tty.stream })
    expect(tty.text()).toContain(`${ESC}31m0x2${ESC}0m`)
    vi.stubEnv('NO_COLOR', '1')
    const muted = sink(true)
    a.diff(b).pprint({ stream: muted.stream })
    expect(muted.text()).toBe(diff)
  })
})
