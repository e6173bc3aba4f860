// The aarch64 snapshot committed as fixtures/aarch64-counter.procsnap.json, as data: a counter-like
// program stopped at bump on an arm64 machine. The format test checks that the file loads to exactly this.
import type { MapState, SnapshotData } from '../../src/index.js'

const PAGE = 4096

function page(fill: (view: DataView) => void, size = PAGE): Uint8Array {
  const bytes = new Uint8Array(size)
  fill(new DataView(bytes.buffer))
  return bytes
}

export const AARCH64_COUNTER_ADDRESS = 0xaaaaaaab1010n
export const AARCH64_MESSAGE_ADDRESS = 0xaaaaaaac0040n

export function aarch64CounterData(): SnapshotData {
  const regs: Record<string, bigint> = {}
  for (let i = 0; i <= 30; i++) regs[`x${i}`] = i === 0 ? 2n : 0x1000_0000_0000_0000n + BigInt(i) * 0x1111n
  regs.x29 = 0xfffffffff0b0n
  regs.x30 = 0xaaaaaaaa0790n
  regs.sp = 0xfffffffff0a0n
  regs.pc = 0xaaaaaaaa0754n
  regs.pstate = 0x60001000n
  for (let i = 0; i < 32; i++)
    regs[`v${i}`] = i < 4 ? 0x0123456789abcdef_fedcba9876543210n ^ BigInt(i) : i === 31 ? (1n << 128n) - 1n : 0n
  regs.fpsr = 0x10n
  regs.fpcr = 0x0n
  const exe = '/opt/demo/counter'
  const maps: MapState[] = [
    {
      start: 0xaaaaaaaa0000n,
      end: 0xaaaaaaaa1000n,
      perms: 'r-xp',
      offset: 0n,
      path: exe,
      inode: 1234,
      buildId: '5f1e2d3c4b5a69788796a5b4c3d2e1f001234567',
    },
    {
      start: 0xaaaaaaab0000n,
      end: 0xaaaaaaab1000n,
      perms: 'r--p',
      offset: 0x10000n,
      path: exe,
      inode: 1234,
      buildId: '5f1e2d3c4b5a69788796a5b4c3d2e1f001234567',
    },
    {
      start: 0xaaaaaaab1000n,
      end: 0xaaaaaaab2000n,
      perms: 'rw-p',
      offset: 0x11000n,
      path: exe,
      inode: 1234,
      buildId: '5f1e2d3c4b5a69788796a5b4c3d2e1f001234567',
      content: page((v) => v.setUint32(0x10, 3, true)),
    },
    {
      start: 0xaaaaaaac0000n,
      end: 0xaaaaaaae1000n,
      perms: 'rw-p',
      offset: 0n,
      path: '[heap]',
      inode: 0,
      content: page((v) => [...'hello, arm64\n'].forEach((c, i) => v.setUint8(0x40 + i, c.charCodeAt(0))), 0x21000),
    },
    { start: 0xfffff7ffb000n, end: 0xfffff7ffc000n, perms: 'r--p', offset: 0n, path: '[vvar]', inode: 0 },
    { start: 0xfffff7ffc000n, end: 0xfffff7ffd000n, perms: 'r-xp', offset: 0n, path: '[vdso]', inode: 0 },
    {
      start: 0xfffffffdf000n,
      end: 0x1000000000000n,
      perms: 'rw-p',
      offset: 0n,
      path: '[stack]',
      inode: 0,
      content: page((v) => v.setBigUint64(0x20ff8, 0xaaaaaaaa0790n, true), 0x21000),
    },
  ]
  return {
    kind: 'process',
    level: 'writable',
    name: 'bump on arm64',
    snapshotId: '6f9c1f0e-8a8e-4f39-9d0e-2b0f5e7a1c11',
    arch: 'aarch64',
    pid: 4242,
    aslrEnabled: false,
    exe,
    argv: [exe, '3'],
    cwd: '/opt/demo',
    createdAt: '2026-11-24T12:00:00.000Z',
    stop: { kind: 'breakpoint', thread: 1, pc: 0xaaaaaaaa0754n, location: 'counter!bump' },
    threads: [
      {
        tid: 4242,
        index: 1,
        regs,
        backtrace: [
          {
            pc: 0xaaaaaaaa0754n,
            module: 'counter',
            symbol: 'bump',
            offset: 0n,
            location: 'counter!bump',
            via: 'pc',
            cfa: 0xfffffffff0a0n,
          },
          {
            pc: 0xaaaaaaaa0790n,
            module: 'counter',
            symbol: 'main',
            offset: 0x3cn,
            location: 'counter!main+0x3c',
            via: 'cfi',
            cfa: 0xfffffffff0c0n,
          },
        ],
      },
    ],
    current: 1,
    maps,
    fds: [
      { fd: 0, target: '/dev/null', flags: 0o100000, offset: 0n },
      { fd: 1, target: 'pipe:[31337]', flags: 0o1, offset: 0n },
      { fd: 2, target: 'pipe:[31338]', flags: 0o1, offset: 0n },
    ],
    auxv: [
      { type: 6, name: 'AT_PAGESZ', value: 4096n },
      { type: 9, name: 'AT_ENTRY', value: 0xaaaaaaaa0640n },
      { type: 16, name: 'AT_HWCAP', value: 0xefffn },
    ],
    cpu: { arch: 'aarch64', components: ['fpsimd'] },
  }
}
