// The focused matchers on real processes and snapshots: each passes, fails with a symbolized message,
// and works under .not; a snapshot answers as the live process did.
import { fileURLToPath } from 'node:url'
import { beforeAll, describe, expect, it } from 'vitest'
import { processMatchers, processSerializer } from '../../src/matchers/index.js'
import { loadSnapshot, type Process } from '../../src/index.js'
import { failure, fixture, start } from '../helpers.js'

beforeAll(() => {
  expect.extend(processMatchers)
  expect.addSnapshotSerializer(processSerializer)
})

/** Asymmetric matchers are typed any: held as unknown, they can go in object literals. */
const anyBigInt: unknown = expect.any(BigInt)

async function atSecondBump(): Promise<Process> {
  const proc = await start(fixture('counter'), { args: ['3'] })
  proc.breakAt('bump')
  await proc.cont()
  await proc.cont()
  return proc
}

describe('toHaveRegister, toHaveRegisters', () => {
  it('compares registers and aliases with numbers, bigints and asymmetric matchers', async () => {
    const proc = await atSecondBump()
    expect(proc).toHaveRegister('rdi', 2)
    expect(proc).toHaveRegister('edi', 2n)
    expect(proc).toHaveRegister('dil', 2)
    expect(proc).toHaveRegister('rip', proc.resolve('bump'))
    expect(proc).toHaveRegister('rsp', expect.any(BigInt))
    expect(proc).not.toHaveRegister('rdi', 3)
    expect(proc).toHaveRegisters({ rdi: 2, edi: 2, rip: anyBigInt })
    expect(proc).toHaveRegister('mxcsr', expect.any(BigInt)) // from the xsave area
  })

  it('says what was expected and received, where, in which thread', async () => {
    const proc = await atSecondBump()
    expect(failure(() => expect(proc).toHaveRegister('rdi', 42))).toBe(
      'expected rdi to be 0x2a (42), received 0x2 (2) at counter!bump (thread 1)',
    )
    expect(failure(() => expect(proc).not.toHaveRegister('rdi', 2))).toBe(
      'expected rdi not to be 0x2 (2) at counter!bump (thread 1)',
    )
    expect(failure(() => expect(proc).toHaveRegisters({ rdi: 2, rsi: 7n }))).toMatch(
      /^expected registers rdi, rsi at counter!bump \(thread 1\); 1 differ:\n {2}rsi: expected 0x7 \(7\), received 0x[0-9a-f]+ \(\d+\)$/,
    )
  })

  it('throws ERR_UNKNOWN_REGISTER for a name the architecture lacks, with or without .not, live or offline', async () => {
    const proc = await atSecondBump()
    const snap = proc.createSnapshot()
    for (const subject of [proc, snap]) {
      for (const assert of [
        () => expect(subject).toHaveRegister('rxa', 1),
        () => expect(subject).not.toHaveRegister('rxa', 1),
        () => expect(subject).toHaveRegisters({ rdi: 2, rxa: 1 }),
        () => expect(subject).not.toHaveRegisters({ rxa: 1 }),
      ]) {
        expect(assert).toThrow(expect.objectContaining({ code: 'ERR_UNKNOWN_REGISTER' }))
        expect(assert).toThrow("Unknown register 'rxa' on x86_64. Did you mean rax")
      }
    }
    expect(() => expect(snap).toHaveRegister('xmm32', 0)).toThrow(
      expect.objectContaining({ code: 'ERR_UNKNOWN_REGISTER' }),
    )
  })

  it('throws ERR_BAD_VALUE for a register value that is not an integer', async () => {
    const proc = await atSecondBump()
    for (const value of [1.5, Number.NaN, 2 ** 60]) {
      expect(() => expect(proc).toHaveRegister('rdi', value)).toThrow(
        expect.objectContaining({ code: 'ERR_BAD_VALUE' }),
      )
      expect(() => expect(proc).toHaveRegister('rdi', value)).toThrow('must be an integer')
    }
    expect(() => expect(proc).toHaveMemory('g_counter', { bytes: 1 } as unknown as Uint8Array)).toThrow(
      expect.objectContaining({ code: 'ERR_BAD_ARGUMENT' }),
    )
  })

  it('compares negative numbers with the register read as signed at its width', async () => {
    const proc = await atSecondBump()
    proc.regs.rax = 0xffffffffn
    expect(proc).toHaveRegister('eax', -1)
    expect(proc).not.toHaveRegister('rax', -1)
    expect(proc).toHaveRegister('al', -1)
  })
})

describe('toHaveMemory', () => {
  it('compares bytes, text and little-endian integers at a symbol or address', async () => {
    const proc = await atSecondBump()
    expect(proc).toHaveMemory('g_counter', new Uint8Array([1, 0, 0, 0]))
    expect(proc).toHaveMemory('g_counter', 1)
    expect(proc).toHaveMemory('g_total', 1n)
    expect(proc).toHaveMemory('g_message', 'hello\0')
    expect(proc).toHaveMemory(proc.resolve('g_message'), [0x68, 0x65])
    expect(proc).not.toHaveMemory('g_counter', 2)
    expect(failure(() => expect(proc).toHaveMemory('g_counter', 3))).toBe(
      `expected g_counter (0x${proc.resolve('g_counter').toString(16)}) to hold 03 00 00 00, received 01 00 00 00 (process ${proc.pid})`,
    )
  })
})

describe('toHaveStoppedAt, toHaveBacktrace', () => {
  it('name where the process stopped and the frames that led there', async () => {
    const proc = await atSecondBump()
    expect(proc).toHaveStoppedAt('bump')
    expect(proc).toHaveStoppedAt('counter!bump')
    expect(proc).toHaveStoppedAt(proc.resolve('bump'))
    expect(proc).not.toHaveStoppedAt('main')
    expect(failure(() => expect(proc).toHaveStoppedAt('compute'))).toMatch(
      /^expected process \d+ to be stopped at compute \(0x[0-9a-f]+\), it is stopped at counter!bump \(0x[0-9a-f]+\)$/,
    )
    expect(proc).toHaveBacktrace(['bump', 'main'])
    expect(proc).toHaveBacktrace(['counter!bump', 'counter!main'])
    expect(proc).not.toHaveBacktrace(['main'])
    expect(failure(() => expect(proc).toHaveBacktrace(['bump', 'compute']))).toMatch(
      /^expected the backtrace to start with bump > compute, received counter!bump > counter!main\+0x[0-9a-f]+ > libc\.so\.6/,
    )
  })
})

describe('toHaveMapping, toHaveOpenFd', () => {
  it('find maps by path, base name or region, and open files by fd and target', async () => {
    const proc = await atSecondBump()
    expect(proc).toHaveMapping('counter', 'r-x')
    expect(proc).toHaveMapping(proc.path, 'rw-p') // isolated: /tmp/procsnap/fixtures/c/bin/counter
    expect(proc).toHaveMapping('libc.so.6')
    expect(proc).toHaveMapping('[heap]', 'rw')
    expect(proc).not.toHaveMapping('counter', 'rwx')
    expect(failure(() => expect(proc).toHaveMapping('libnothing.so'))).toBe(
      `expected process ${proc.pid} to map libnothing.so; no map of that name`,
    )
    expect(proc).toHaveOpenFd(0, '/dev/null')
    expect(proc).toHaveOpenFd(1, /^\/dev\/pts\/\d+$/) // a pty, by default
    expect(proc).not.toHaveOpenFd(7)
    expect(failure(() => expect(proc).toHaveOpenFd(0, '/dev/zero'))).toBe(
      `expected process ${proc.pid} to have fd 0 open on "/dev/zero"; fd 0 is /dev/null`,
    )
  })
})

describe('on snapshots', () => {
  it('answer as the live process did, after it is gone', async () => {
    const proc = await atSecondBump()
    const snap = proc.createSnapshot({ level: 'writable', name: 'second bump' })
    await proc.kill()
    expect(snap).toHaveRegister('rdi', 2)
    expect(snap).toHaveMemory('g_counter', 1)
    expect(snap).toHaveStoppedAt('bump')
    expect(snap).toHaveBacktrace(['bump', 'main'])
    expect(snap).toHaveMapping('[heap]')
    expect(snap).toHaveOpenFd(0, '/dev/null')
    expect(failure(() => expect(snap).toHaveRegister('rdi', 1))).toBe(
      'expected rdi to be 0x1 (1), received 0x2 (2) at counter!bump (thread 1)',
    )
    expect(failure(() => expect(snap).toHaveMemory('g_counter', 5))).toMatch(/\(snapshot "second bump"\)$/)
    expect(() => expect(snap).toHaveExited()).toThrow(
      'toHaveExited takes a live Process: a snapshot does not end or print.',
    )
  })

  it('refuse what is neither a process nor a snapshot', () => {
    expect(() => expect(42).toHaveRegister('rax', 1)).toThrow(expect.objectContaining({ code: 'ERR_BAD_ARGUMENT' }))
    expect(() => expect(42).toMatchProcessSnapshot()).toThrow(expect.objectContaining({ code: 'ERR_BAD_ARGUMENT' }))
    expect(() => expect(42).toHaveRegister('rax', 1)).toThrow(
      'toHaveRegister takes a Process (from launch()) or a snapshot (from createSnapshot() or loadSnapshot()), not a number.',
    )
  })
})

describe('toHaveExited, toHaveBeenKilledBy, toHaveOutput', () => {
  it('check how a process ended and what it printed', async () => {
    const proc = await start(fixture('counter'), { args: ['2'] })
    expect(failure(() => expect(proc).toHaveExited())).toMatch(
      /^expected process \d+ to have exited; it is still alive, stopped at counter!_start: await proc\.wait\(\) first$/,
    )
    await proc.wait()
    expect(proc).toHaveExited()
    expect(proc).toHaveExited(0)
    expect(proc).not.toHaveExited(1)
    expect(proc).not.toHaveBeenKilledBy('SIGSEGV')
    expect(proc).toHaveOutput({ stdout: 'bump 1 -> 1\nbump 2 -> 3\ntotal 4\n' })
    const containsTotal: unknown = expect.stringContaining('total 4')
    expect(proc).toHaveOutput({ stdout: containsTotal, stderr: '' })
    expect(failure(() => expect(proc).toHaveOutput({ stdout: 'total 5\n' }))).toContain('stdout of process')
  })

  it('name the signal that killed a process, by name or number', async () => {
    const proc = await start(fixture('segfault'))
    await proc.cont() // the SIGSEGV stop
    await proc.wait() // delivered: the process dies of it
    expect(proc).toHaveBeenKilledBy('SIGSEGV')
    expect(proc).toHaveBeenKilledBy('segv')
    expect(proc).toHaveBeenKilledBy(11)
    expect(proc).not.toHaveExited()
    expect(failure(() => expect(proc).toHaveExited(0))).toBe(
      `expected process ${proc.pid} to have exited with 0; it was killed by SIGSEGV\nits stderr: ${proc.stderr.slice(-500).trimEnd()}`.replace(
        /\nits stderr: $/,
        '',
      ),
    )
  })
})

it('a typical test of the counter passes with every kind of matcher', async () => {
  await using proc = await start(fixture('counter'), { args: ['3'] })
  proc.breakAt('bump')
  await proc.cont()
  expect(proc).toHaveStoppedAt('bump')
  expect(proc).toHaveRegister('edi', 1)
  expect(proc).toHaveRegisters({ rdi: 1, rip: anyBigInt })
  expect(proc).toHaveMemory('g_counter', new Uint8Array([0, 0, 0, 0]))
  expect(proc).toHaveBacktrace(['bump', 'main'])
  expect(proc).toHaveMapping('libc.so.6', 'r-x')
  expect(proc).toHaveOpenFd(0, '/dev/null')
  const snap = proc.createSnapshot({ level: 'writable' })
  expect(snap).toHaveMemory('g_counter', 0)
  await proc.wait()
  expect(proc).toHaveExited(0)
})

it('prints a snapshot as one symbolized line in Vitest snapshots (processSerializer)', () => {
  const snap = loadSnapshot(
    fileURLToPath(new URL('../snapshot/fixtures/aarch64-counter.procsnap.json', import.meta.url)),
  )
  expect({ snap }).toMatchInlineSnapshot(`
    {
      "snap": ProcessSnapshot "bump on arm64" (writable, aarch64, process 4242) at counter+0x754 (thread 1),
    }
  `)
})
