// gdb as the oracle: the same stop seen by gdb and by us must agree on every register, on memory
// and on the memory maps. Both launch the program with ASLR off, the same argv (argv[0] is the
// absolute path, as gdb passes it) and the same environment (our fixed DEFAULT_ENV; gdb's own,
// LINES and COLUMNS included, is unset first), so even the stack addresses agree: rsp, rbp and
// every pointer into the stack or the heap are compared exactly.
import { execFileSync } from 'node:child_process'
import { readFileSync, realpathSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { DEFAULT_ENV, type MemoryMap, type Process } from '../../src/index.js'
import { fixture, start } from '../helpers.js'

/** The registers of user_regs_struct (our x86_64 set); gdb names them the same. */
const REGISTERS = [
  'rax',
  'rbx',
  'rcx',
  'rdx',
  'rsi',
  'rdi',
  'rbp',
  'rsp',
  'r8',
  'r9',
  'r10',
  'r11',
  'r12',
  'r13',
  'r14',
  'r15',
  'rip',
  'eflags',
  'cs',
  'ss',
  'ds',
  'es',
  'fs',
  'gs',
  'fs_base',
  'gs_base',
  'orig_rax',
] as const

const ENV_COMMANDS = ['unset environment', ...Object.entries(DEFAULT_ENV).map(([k, v]) => `set environment ${k}=${v}`)]

/**
 * Runs gdb in batch mode on `program` and returns its output cut into sections: each command in
 * `steps` is a [name, gdb commands] pair, and the output of those commands is sections[name].
 */
function gdb(
  program: string,
  args: readonly string[],
  steps: readonly (readonly [string, readonly string[]])[],
  input = '',
): Record<string, string> {
  const ex: string[] = []
  for (const command of [
    'set startup-with-shell off',
    'set disable-randomization on',
    'set pagination off',
    'set width 0',
    'set confirm off',
  ])
    ex.push('-ex', command)
  for (const [name, commands] of steps) {
    ex.push('-ex', `echo @@${name}\\n`)
    for (const command of commands) ex.push('-ex', command)
  }
  ex.push('-ex', 'echo @@end\\n', '-ex', 'kill')
  const out = execFileSync('gdb', ['-nx', '-batch', ...ex, '--args', program, ...args], {
    encoding: 'utf8',
    input,
    stdio: ['pipe', 'pipe', 'pipe'], // gdb's complaints about missing sources stay out of the test output
    timeout: 30_000,
    env: { ...process.env, LC_ALL: 'C' },
  })
  const sections: Record<string, string> = {}
  const parts = out.split(/^@@(\S+)$/m)
  for (let i = 1; i < parts.length; i += 2) sections[parts[i] ?? ''] = parts[i + 1] ?? ''
  for (const [name] of steps)
    if (sections[name] === undefined) throw new Error(`gdb output has no section ${name}:\n${out}`)
  return sections
}

/** `info registers a b c` -> { a: 0x.., ... } (the hex column). */
function parseRegisters(text: string): Record<string, bigint> {
  const regs: Record<string, bigint> = {}
  for (const line of text.split('\n')) {
    const m = /^(\w+)\s+(0x[0-9a-f]+)/.exec(line)
    if (m?.[1] && m[2]) regs[m[1]] = BigInt(m[2])
  }
  return regs
}

function ourRegisters(proc: Process): Record<string, bigint> {
  const regs = proc.regs
  return Object.fromEntries(REGISTERS.map((name) => [name, regs[name]]))
}

function hexRecord(regs: Record<string, bigint>): Record<string, string> {
  return Object.fromEntries(Object.entries(regs).map(([k, v]) => [k, `0x${v.toString(16)}`]))
}

/** `info proc mappings` (gdb 13: Start End Size Offset Perms objfile). */
function parseGdbMappings(text: string): Pick<MemoryMap, 'start' | 'end' | 'offset' | 'perms' | 'path'>[] {
  const maps: Pick<MemoryMap, 'start' | 'end' | 'offset' | 'perms' | 'path'>[] = []
  for (const line of text.split('\n')) {
    const m = /^\s*(0x[0-9a-f]+)\s+(0x[0-9a-f]+)\s+0x[0-9a-f]+\s+(0x[0-9a-f]+)\s+([r-][w-][x-][ps])\s*(.*)$/.exec(line)
    if (!m) continue
    maps.push({
      start: BigInt(m[1] ?? ''),
      end: BigInt(m[2] ?? ''),
      offset: BigInt(m[3] ?? ''),
      perms: m[4] ?? '',
      path: (m[5] ?? '').trim(),
    })
  }
  return maps
}

/** `x/4xb &g` -> the bytes; `show environment` -> its lines. */
function parseBytes(text: string): number[] {
  const line = text.split('\n').find((l) => /^0x[0-9a-f]+/.test(l)) ?? ''
  return [...(line.split(':')[1]?.matchAll(/0x([0-9a-f]{2})/g) ?? [])].map((m) => Number.parseInt(m[1] ?? '', 16))
}

function environOf(pid: number): string[] {
  return readFileSync(`/proc/${pid}/environ`, 'latin1')
    .split('\0')
    .filter((e) => e !== '')
}

const regsCommand = `info registers ${REGISTERS.join(' ')}`

describe('gdb agrees with us at the same stop', () => {
  it('counter at bump: every register at each of the 3 hits, g_counter at the third, and the maps', async () => {
    const counter = realpathSync(fixture('counter'))
    const out = gdb(
      counter,
      ['3'],
      [
        ['env', [...ENV_COMMANDS, 'show environment']],
        // `break *bump`: the function's first instruction, where our breakAt('bump') stops
        // (plain `break bump` would skip the prologue).
        ['hit1', ['break *bump', 'run', regsCommand]],
        ['hit2', ['continue', regsCommand]],
        [
          'hit3',
          ['continue', regsCommand, 'echo @@counter\\n', 'x/4xb &g_counter', 'echo @@maps\\n', 'info proc mappings'],
        ],
      ],
    )
    const gdbEnv = out.env?.split('\n').filter((l) => l !== '') ?? []
    // gdb's inferior gets exactly our environment (no LINES/COLUMNS), or the stacks could not agree.
    expect(gdbEnv).toEqual(Object.entries(DEFAULT_ENV).map(([k, v]) => `${k}=${v}`))

    // gdb runs it outside namespaces: so do we, for the same paths in the maps.
    const proc = await start(counter, { args: ['3'], argv0: counter, isolate: false })
    expect(environOf(proc.pid)).toEqual(gdbEnv)
    const bp = proc.breakAt('bump')
    for (const [i, section] of (['hit1', 'hit2', 'hit3'] as const).entries()) {
      const ev = await proc.cont()
      expect(ev.kind).toBe('breakpoint')
      const theirs = parseRegisters(out[section] ?? '')
      expect(Object.keys(theirs).sort()).toEqual([...REGISTERS].sort())
      expect(theirs.rip).toBe(bp.address)
      expect(theirs.rdi).toBe(BigInt(i + 1))
      expect(hexRecord(ourRegisters(proc)), `registers at hit ${i + 1}`).toEqual(hexRecord(theirs))
    }

    // Third hit: g_counter = 1 + 2, at the same address in both.
    const counterLine = out.counter ?? ''
    expect(counterLine).toMatch(new RegExp(`^0x${proc.resolve('g_counter').toString(16)} <g_counter>:`, 'm'))
    expect([...proc.readMemory('g_counter', 4)]).toEqual(parseBytes(counterLine))
    expect(parseBytes(counterLine)).toEqual([3, 0, 0, 0])

    // The maps: every file-backed mapping is the same (start, end, offset, perms, path), and so is
    // the whole list (heap, stack, vdso, anonymous mappings), given identical launches.
    const theirMaps = parseGdbMappings(out.maps ?? '')
    const ours = proc.maps.map((m) => ({ start: m.start, end: m.end, offset: m.offset, perms: m.perms, path: m.path }))
    const fileBacked = (maps: typeof ours): typeof ours => maps.filter((m) => m.path.startsWith('/'))
    expect(fileBacked(theirMaps).length).toBeGreaterThanOrEqual(10) // counter, libc, ld.so: 5 each
    expect(fileBacked(ours)).toEqual(fileBacked(theirMaps))
    expect(ours).toEqual(theirMaps)

    expect(await proc.wait()).toEqual({ exitCode: 0 })
  })

  it("/usr/bin/sort at libc's write: the same pc as gdb's `break write`, fd 1, the same buffer and registers", async () => {
    const sort = '/usr/bin/sort'
    const input = 'b\na\n'
    const out = gdb(
      sort,
      [],
      [
        ['env', ENV_COMMANDS],
        ['hit', ['set breakpoint pending on', 'break write', 'run', 'p/x $pc', regsCommand, 'x/s $rsi']],
        ['address', ['info address write']],
      ],
      input,
    )
    const gdbPc = BigInt(/^\$1 = (0x[0-9a-f]+)$/m.exec(out.hit ?? '')?.[1] ?? '-1')
    const gdbWrite = BigInt(/is at (0x[0-9a-f]+)/.exec(out.address ?? '')?.[1] ?? '-1')
    expect(gdbPc).toBe(gdbWrite)

    // gdb's inferior writes to gdb's stdout, a pipe here: sort buffers its whole output, one write.
    const proc = await start(sort, { argv0: sort, stdin: input, stdout: 'pipe' })
    const bp = proc.breakAt('libc.so.6!write')
    expect(bp.address).toBe(gdbWrite)
    const ev = await proc.cont()
    expect(ev).toMatchObject({ kind: 'breakpoint', pc: gdbPc, location: 'libc.so.6!write' })
    expect(proc.regs.rip).toBe(gdbPc)
    expect(proc.regs.rdi).toBe(1n) // fd: stdout
    expect(proc.regs.rdx).toBe(BigInt(input.length))
    expect(Buffer.from(proc.readMemory(proc.regs.rsi, Number(proc.regs.rdx))).toString('latin1')).toBe('a\nb\n')
    expect(out.hit).toMatch(/"a\\nb\\n"/)
    // Every register but r10, which holds a value derived from AT_RANDOM (the kernel's 16 random
    // bytes per exec: stack canary, pointer guard) at this point of sort: it differs between two
    // gdb runs too. Everything else, heap and stack pointers included, is the same.
    const theirs = parseRegisters(out.hit ?? '')
    const compared = REGISTERS.filter((r) => r !== 'r10')
    const pick = (regs: Record<string, bigint>): Record<string, string> =>
      hexRecord(Object.fromEntries(compared.map((r) => [r, regs[r] ?? -1n])))
    expect(pick(ourRegisters(proc))).toEqual(pick(theirs))

    expect(await proc.wait()).toEqual({ exitCode: 0 })
    expect(proc.stdout).toBe('a\nb\n')
  })
})
