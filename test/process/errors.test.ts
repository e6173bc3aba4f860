// Bad input gets a typed error with a stable code and a message that says what to do next, and
// the tracer stays usable afterwards: every case ends by launching counter and running it to exit.
import { execFileSync } from 'node:child_process'
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { inspect } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ProcsnapError, launch, livePids, type Location, type Process } from '../../src/index.js'
import { useDist } from '../dist.js'
import { caughtProcsnapError, FIXTURES, fixture, start, strayChildren } from '../helpers.js'

let tmp = ''

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'procsnap-errors-'))
})

afterAll(() => {
  rmSync(tmp, { recursive: true, force: true })
})

const caught = caughtProcsnapError

async function rejected(promise: Promise<unknown>): Promise<ProcsnapError> {
  try {
    await promise
  } catch (error) {
    if (error instanceof ProcsnapError) return error
    throw error
  }
  throw new Error('expected a ProcsnapError, the promise resolved')
}

/** The tracer still works: a fresh counter runs to a breakpoint and to its exit, and nothing is left over. */
async function expectTracerUsable(): Promise<void> {
  const proc = await start(fixture('counter'), { args: ['1'] })
  proc.breakAt('bump')
  const hit = await proc.cont()
  expect(hit.kind).toBe('breakpoint')
  expect(await proc.wait()).toEqual({ exitCode: 0 })
  expect(proc.stdout).toBe('bump 1 -> 1\ntotal 1\n')
  expect(livePids()).toEqual([])
  expect(strayChildren()).toEqual([])
}

/** A 64-byte ELF64 header (little endian, ET_EXEC) for `machine`, and nothing else. */
function elf64Header(machine: number): Buffer {
  const b = Buffer.alloc(64)
  b.write('\x7fELF', 0, 'latin1')
  b[4] = 2 // ELFCLASS64
  b[5] = 1 // ELFDATA2LSB
  b[6] = 1 // EV_CURRENT
  b.writeUInt16LE(2, 16) // ET_EXEC
  b.writeUInt16LE(machine, 18)
  b.writeUInt32LE(1, 20)
  b.writeUInt16LE(64, 52) // e_ehsize
  return b
}

/** A 52-byte ELF32 header (little endian, ET_EXEC) for `machine`. */
function elf32Header(machine: number): Buffer {
  const b = Buffer.alloc(52)
  b.write('\x7fELF', 0, 'latin1')
  b[4] = 1 // ELFCLASS32
  b[5] = 1
  b[6] = 1
  b.writeUInt16LE(2, 16)
  b.writeUInt16LE(machine, 18)
  b.writeUInt32LE(1, 20)
  b.writeUInt16LE(52, 40) // e_ehsize
  return b
}

function writeExecutable(name: string, content: string | Uint8Array, mode = 0o755): string {
  const path = join(tmp, name)
  writeFileSync(path, content)
  chmodSync(path, mode)
  return path
}

describe('a binary that cannot be launched', () => {
  it('a missing file is ERR_FILE_NOT_FOUND, with a hint to check the path or build it', async () => {
    const missing = join(tmp, 'no-such-binary')
    const err = await rejected(launch(missing))
    expect(err.code).toBe('ERR_FILE_NOT_FOUND')
    expect(err.message).toContain(missing)
    expect(err.message).toMatch(/Check the path, or build the binary/)
    await expectTracerUsable()
  })

  it('a directory is ERR_NOT_EXECUTABLE, saying it is a directory', async () => {
    const err = await rejected(launch(tmp))
    expect(err.code).toBe('ERR_NOT_EXECUTABLE')
    expect(err.message).toMatch(/is not a regular file but a directory/)
    expect(err.message).toMatch(/Give the path of an executable/)
    await expectTracerUsable()
  })

  it('a file without execute permission is ERR_NOT_EXECUTABLE, with the chmod to run', async () => {
    const copy = join(tmp, 'counter-644')
    copyFileSync(fixture('counter'), copy)
    chmodSync(copy, 0o644)
    const err = await rejected(launch(copy))
    expect(err.code).toBe('ERR_NOT_EXECUTABLE')
    expect(err.message).toContain(`chmod +x ${copy}`)
    await expectTracerUsable()
  })

  it('an executable text file is ERR_NOT_ELF', async () => {
    const script = writeExecutable('script.txt', 'just some text, not a program\n')
    const err = await rejected(launch(script))
    expect(err.code).toBe('ERR_NOT_ELF')
    expect(err.message).toBe(`${script} is not an ELF file but a text file. Point at a compiled binary.`)
    await expectTracerUsable()
  })

  it('a C source file is ERR_NOT_ELF saying so and how to build it, with or without +x (never a chmod hint)', async () => {
    const source = join(FIXTURES, '..', 'counter.c')
    const copy = join(tmp, 'mt.c')
    copyFileSync(source, copy)
    for (const [path, mode] of [
      [source, 0o644],
      [copy, 0o755],
      [copy, 0o644],
    ] as const) {
      if (path === copy) chmodSync(copy, mode)
      const err = await rejected(launch(path))
      expect(err.code).toBe('ERR_NOT_ELF')
      expect(err.message).toBe(
        `${path} is not an ELF file but a text file (C source). Compile it first (gcc -g -o ` +
          `${path === copy ? 'mt' : 'counter'} ${path}) and launch the program.`,
      )
      expect(err.message).not.toMatch(/chmod/)
    }
    await expectTracerUsable()
  })

  it('a script is ERR_NOT_ELF naming its interpreter, and the launch it suggests runs it (sh, python3)', async () => {
    const sh = writeExecutable('hello.sh', '#!/bin/sh\necho "hello from $0 $1"\n')
    const err = await rejected(launch(sh))
    expect(err.code).toBe('ERR_NOT_ELF')
    expect(err.message).toBe(
      `${sh} is not an ELF file but a script for /bin/sh. procsnap traces ELF programs: launch ` +
        `the interpreter with the script as an argument: launch('/bin/sh', { args: ['${sh}'] }).`,
    )
    const viaShell = await start('/bin/sh', { args: [sh, 'there'] })
    expect(await viaShell.wait()).toEqual({ exitCode: 0 })
    expect(viaShell.stdout).toBe(`hello from ${sh} there\n`)

    // Without +x it is still a script first: the mode is no help for it.
    const py = writeExecutable('hello.py', '#!/usr/bin/python3 -S\nprint("hello from python")\n', 0o644)
    const pyErr = await rejected(launch(py))
    expect(pyErr.code).toBe('ERR_NOT_ELF')
    expect(pyErr.message).toContain(`a script for /usr/bin/python3.`)
    expect(pyErr.message).toContain(`launch('/usr/bin/python3', { args: ['-S', '${py}'] })`)
    const viaPython = await start('/usr/bin/python3', { args: ['-S', py] })
    expect(await viaPython.wait()).toEqual({ exitCode: 0 })
    expect(viaPython.stdout).toBe('hello from python\n')

    // env: the interpreter is the program env runs, found in PATH.
    const envScript = writeExecutable('tool', '#!/usr/bin/env -S python3 -u\nprint(1)\n')
    expect((await rejected(launch(envScript))).message).toContain(
      `a script for python3. procsnap traces ELF programs: launch the interpreter with the ` +
        `script as an argument: launch('python3', { args: ['-u', '${envScript}'] })`,
    )
    // A Python file without a #! line is named by its extension.
    const bare = writeExecutable('bare.py', 'print(2)\n', 0o644)
    expect((await rejected(launch(bare))).message).toBe(
      `${bare} is not an ELF file but a text file (a Python script). Launch the interpreter with ` +
        `it: launch('python3', { args: ['${bare}'] }).`,
    )
    await expectTracerUsable()
  })

  it('an empty file, compressed files and other systems’ binaries are ERR_NOT_ELF naming the format', async () => {
    const gz = join(tmp, 'true.gz')
    writeFileSync(gz, execFileSync('gzip', ['-c', '/bin/true']))
    chmodSync(gz, 0o755)
    const zip = join(tmp, 'true.zip')
    execFileSync('zip', ['-q', '-j', zip, '/bin/true'])
    const cases: Array<[string, string]> = [
      [writeExecutable('empty', ''), 'an empty file. Build the program again'],
      [gz, 'a gzip-compressed file. Point at an ELF program built for Linux.'],
      [zip, 'a zip archive.'],
      [
        writeExecutable('prog.exe', Buffer.concat([Buffer.from('MZ'), Buffer.alloc(200)])),
        'a Windows (PE) executable.',
      ],
      [
        writeExecutable('prog-macos', Buffer.from([0xcf, 0xfa, 0xed, 0xfe, 7, 0, 0, 1, 3, 0, 0, 0])),
        'a macOS (Mach-O) binary.',
      ],
      [writeExecutable('noise', Buffer.from([1, 2, 0, 3, 0xff, 0, 0x10])), 'a file of unknown format.'],
    ]
    for (const [path, what] of cases) {
      const err = await rejected(launch(path))
      expect(err.code).toBe('ERR_NOT_ELF')
      expect(err.message).toContain(`${path} is not an ELF file but ${what}`)
    }
    await expectTracerUsable()
  })

  it('reads only the first bytes of a file: a 4 GiB one that is not ELF fails at once', async () => {
    const big = writeExecutable('huge.bin', Buffer.from('MZ'))
    execFileSync('truncate', ['-s', '4G', big]) // sparse: no disk used, but a whole read would take seconds or fail
    const began = performance.now()
    const err = await rejected(launch(big))
    expect(err.code).toBe('ERR_NOT_ELF')
    expect(err.message).toContain('a Windows (PE) executable')
    expect(performance.now() - began).toBeLessThan(500)
    rmSync(big)
  })

  it('an ELF object file (.o) is ERR_NOT_EXECUTABLE saying to link it, whatever its mode', async () => {
    const object = join(tmp, 'counter.o')
    execFileSync('gcc', ['-c', '-o', object, join(FIXTURES, '..', 'counter.c')])
    chmodSync(object, 0o644)
    const err = await rejected(launch(object))
    expect(err.code).toBe('ERR_NOT_EXECUTABLE')
    expect(err.message).toBe(`${object} is an ELF rel file, not an executable. Link it into a program first.`)
    await expectTracerUsable()
  })

  it('an aarch64 ELF is ERR_WRONG_ARCH naming aarch64', async () => {
    const arm = writeExecutable('arm64-prog', elf64Header(183))
    const err = await rejected(launch(arm))
    expect(err.code).toBe('ERR_WRONG_ARCH')
    expect(err.message).toMatch(/64-bit aarch64 binary/)
    expect(err.message).toMatch(/Build it for x86_64/)
    await expectTracerUsable()
  })

  it('a 32-bit ELF is ERR_WRONG_ARCH naming the class and arch', async () => {
    const i386 = writeExecutable('i386-prog', elf32Header(3))
    const err = await rejected(launch(i386))
    expect(err.code).toBe('ERR_WRONG_ARCH')
    expect(err.message).toMatch(/32-bit i386 binary/)
    await expectTracerUsable()
  })

  it('a name without a slash that is not in PATH is ERR_FILE_NOT_FOUND, with the ./name hint', async () => {
    const err = await rejected(launch('procsnap-no-such-tool'))
    expect(err.code).toBe('ERR_FILE_NOT_FOUND')
    expect(err.message).toMatch(/No executable 'procsnap-no-such-tool' in PATH/)
    expect(err.message).toContain("'./procsnap-no-such-tool'")
    await expectTracerUsable()
  })

  it('a name found in PATH (true) launches and exits 0', async () => {
    const proc = await start('true')
    expect(proc.path).toMatch(/\/true$/)
    expect(proc.argv).toEqual(['true'])
    expect(await proc.wait()).toEqual({ exitCode: 0 })
    await expectTracerUsable()
  })

  it('a binary that launched once is checked again once it changes: chmod -x, then text in its place', async () => {
    const copy = join(tmp, 'counter-changing')
    copyFileSync(fixture('counter'), copy)
    chmodSync(copy, 0o755)
    expect(await (await start(copy, { args: ['0'] })).wait()).toEqual({ exitCode: 0 })
    chmodSync(copy, 0o644)
    expect((await rejected(launch(copy))).code).toBe('ERR_NOT_EXECUTABLE')
    chmodSync(copy, 0o755)
    expect(await (await start(copy, { args: ['0'] })).wait()).toEqual({ exitCode: 0 })
    writeFileSync(copy, 'echo not a program\n')
    expect((await rejected(launch(copy))).code).toBe('ERR_NOT_ELF')
    await expectTracerUsable()
  })

  it('a name in PATH skips a directory of that name and a file without +x in earlier PATH entries', async () => {
    const first = mkdtempSync(join(tmp, 'path-a-'))
    const second = mkdtempSync(join(tmp, 'path-b-'))
    mkdirSync(join(first, 'procsnap-tool')) // a directory: not it
    writeFileSync(join(second, 'procsnap-tool'), 'not run', { mode: 0o644 }) // no +x: not it
    writeFileSync(join(tmp, 'not-a-dir'), '') // a PATH entry under a file: ENOTDIR
    const third = mkdtempSync(join(tmp, 'path-c-'))
    copyFileSync(fixture('counter'), join(third, 'procsnap-tool'))
    chmodSync(join(third, 'procsnap-tool'), 0o755)
    const saved = process.env.PATH
    process.env.PATH = [join(tmp, 'missing-dir'), join(tmp, 'not-a-dir', 'sub'), first, second, third, saved].join(':')
    try {
      const proc = await start('procsnap-tool', { args: ['0'] })
      expect(proc.path).toBe(join(third, 'procsnap-tool'))
      expect(await proc.wait()).toEqual({ exitCode: 0 })
    } finally {
      process.env.PATH = saved
    }
  })

  it('a binary whose ELF interpreter is missing is ERR_NOT_EXECUTABLE naming the interpreter, and leaves no process', async () => {
    const bytes = readFileSync(fixture('counter'))
    const interp = Buffer.from('/lib64/ld-linux-x86-64.so.2\0', 'latin1')
    const at = bytes.indexOf(interp)
    expect(at).toBeGreaterThan(0)
    expect(bytes.indexOf(interp, at + 1)).toBe(-1) // only the PT_INTERP string
    const patched = Buffer.from(bytes)
    patched.fill(0, at, at + interp.length)
    patched.write('/lib64/ld-nothere.so.2', at, 'latin1')
    const path = writeExecutable('counter-badinterp', patched)
    const err = await rejected(launch(path))
    expect(err.code).toBe('ERR_NOT_EXECUTABLE')
    expect(err.message).toMatch(/ELF interpreter/)
    expect(err.message).toContain('/lib64/ld-nothere.so.2')
    expect(livePids()).toEqual([])
    expect(strayChildren()).toEqual([])
    await expectTracerUsable()
  })

  it('a shared library missing at load time is ERR_PROCESS_EXITED carrying ld.so’s message', async () => {
    const dir = join(tmp, 'gone')
    execFileSync('mkdir', ['-p', dir])
    writeFileSync(join(dir, 'gone.c'), 'int gone(int x) { return x + 1; }\n')
    writeFileSync(join(dir, 'usegone.c'), 'int gone(int);\nint main(void) { return gone(41) == 42 ? 0 : 1; }\n')
    execFileSync('gcc', ['-shared', '-fPIC', '-o', join(dir, 'libgone.so'), join(dir, 'gone.c')])
    execFileSync('gcc', ['-o', join(dir, 'usegone'), join(dir, 'usegone.c'), `-L${dir}`, '-lgone', `-Wl,-rpath,${dir}`])
    // Linked and loadable: it runs to exit 0 while the library is there.
    const ok = await start(join(dir, 'usegone'))
    expect(await ok.wait()).toEqual({ exitCode: 0 })
    rmSync(join(dir, 'libgone.so'))
    const err = await rejected(launch(join(dir, 'usegone')))
    expect(err.code).toBe('ERR_PROCESS_EXITED')
    expect(err.message).toMatch(/exit code 127/)
    expect(err.message).toMatch(/error while loading shared libraries: libgone\.so/)
    expect(livePids()).toEqual([])
    expect(strayChildren()).toEqual([])
    await expectTracerUsable()
  })
})

describe('bad locations, addresses and registers', () => {
  it('an unknown symbol is ERR_SYMBOL_NOT_FOUND with the near name as a suggestion', async () => {
    const proc = await start(fixture('counter'), { args: ['1'] })
    const err = caught(() => proc.breakAt('bumb'))
    expect(err.code).toBe('ERR_SYMBOL_NOT_FOUND')
    expect(err).toHaveProperty('suggestions')
    expect((err as ProcsnapError & { suggestions: string[] }).suggestions).toContain('bump')
    expect(err.message).toMatch(/No symbol 'bumb'/)
    expect(err.message).toContain("Did you mean 'bump'")
    expect(proc.breakpoints).toEqual([])
    // The process is unharmed: it still runs to exit.
    expect(await proc.wait()).toEqual({ exitCode: 0 })
    await expectTracerUsable()
  })

  it('a module that is not loaded (nosuchlib.so!f) keeps the breakpoint pending instead of throwing', async () => {
    const proc = await start(fixture('counter'), { args: ['1'] })
    const bp = proc.breakAt('nosuchlib.so!f')
    expect(bp.pending).toBe(true)
    expect(bp.address).toBeUndefined()
    expect(proc.breakpoints).toEqual([bp])
    // Never loaded, so never armed: the program runs to its end, and the end event says so.
    expect(await proc.cont()).toEqual({
      kind: 'exited',
      exitCode: 0,
      warnings: [
        `Breakpoint ${bp.id} at 'nosuchlib.so!f' stayed pending: no library named 'nosuchlib.so' ` +
          `is loaded, and the program needs none by that name: only a dlopen() of one would arm it ` +
          `(loaded in this run: counter, libc.so.6, ld-linux-x86-64.so.2).`,
      ],
    })
    expect(bp.pending).toBe(true)
    expect(bp.hits).toBe(0)
    expect(proc.stdout).toBe('bump 1 -> 1\ntotal 1\n')
    await expectTracerUsable()
  })

  it('an address outside every mapping is ERR_ADDRESS_UNMAPPED, naming the neighbouring mappings', async () => {
    const proc = await start(fixture('counter'), { args: ['1'] })
    const first = proc.maps[0]
    if (!first) throw new Error('no maps')
    const hexStart = `0x${first.start.toString(16)}`

    const bpErr = caught(() => proc.breakAt(0x10n))
    expect(bpErr.code).toBe('ERR_ADDRESS_UNMAPPED')
    expect(bpErr.message).toMatch(/^0x10 is outside every mapping/)
    expect(bpErr.message).toContain(`above it starts ${hexStart}-`)
    expect(bpErr.message).toContain(first.path)
    expect(proc.breakpoints).toEqual([])

    const readErr = caught(() => proc.readMemory(0x10n, 4))
    expect(readErr.code).toBe('ERR_ADDRESS_UNMAPPED')
    expect(readErr.message).toContain(`above it starts ${hexStart}-`)

    // In a gap between two mappings the message shows both sides.
    const maps = proc.maps
    const i = maps.findIndex((m, k) => k + 1 < maps.length && m.end < (maps[k + 1]?.start ?? 0n))
    const below = maps[i]
    const above = maps[i + 1]
    if (!below || !above) throw new Error('no gap in the maps')
    const gapErr = caught(() => proc.readMemory(below.end + 0x10n, 4))
    expect(gapErr.code).toBe('ERR_ADDRESS_UNMAPPED')
    expect(gapErr.message).toContain(`below it ends 0x${below.start.toString(16)}-0x${below.end.toString(16)}`)
    expect(gapErr.message).toContain(`above it starts 0x${above.start.toString(16)}-0x${above.end.toString(16)}`)

    expect(await proc.wait()).toEqual({ exitCode: 0 })
    await expectTracerUsable()
  })

  it('[vvar] is mapped but the kernel refuses ptrace reads of it: ERR_MEMORY_ACCESS (EIO); [vdso] next to it reads fine', async () => {
    const proc = await start(fixture('counter'), { args: ['1'] })
    const vvar = proc.maps.find((m) => m.path === '[vvar]')
    if (!vvar) throw new Error('no [vvar] mapping in this process')
    const err = caught(() => proc.readMemory(vvar.start, 8))
    expect(err.code).toBe('ERR_MEMORY_ACCESS')
    expect(err.message).toContain('[vvar]')
    expect(err.message).toMatch(/the kernel refused \(EIO\)/)
    expect(err.message).toMatch(/not readable by ptrace/)
    const vdso = proc.maps.find((m) => m.path === '[vdso]')
    if (!vdso) throw new Error('no [vdso] mapping in this process')
    expect([...proc.readMemory(vdso.start, 4)]).toEqual([0x7f, 0x45, 0x4c, 0x46])
    expect(await proc.wait()).toEqual({ exitCode: 0 })
    await expectTracerUsable()
  })

  it('a JS number as a location is ERR_BAD_LOCATION, saying addresses are bigint', async () => {
    const proc = await start(fixture('counter'), { args: ['1'] })
    const asNumber = 4096 as unknown as Location
    for (const err of [caught(() => proc.readMemory(asNumber, 4)), caught(() => proc.breakAt(asNumber))]) {
      expect(err.code).toBe('ERR_BAD_LOCATION')
      expect(err.message).toMatch(/bigint/)
      expect(err.message).toContain('write 4096n')
    }
    expect(proc.breakpoints).toEqual([])
    expect(await proc.wait()).toEqual({ exitCode: 0 })
    await expectTracerUsable()
  })

  it('an unknown register name is ERR_UNKNOWN_REGISTER, for reads and writes', async () => {
    const proc = await start(fixture('counter'), { args: ['1'] })
    const regs = proc.regs
    const read = caught(() => regs['rxa' as 'rax'])
    expect(read.code).toBe('ERR_UNKNOWN_REGISTER')
    expect(read.message).toMatch(/Unknown register 'rxa' on x86_64/)
    expect(read.message).toMatch(/Known: .*\brax\b/)
    const write = caught(() => {
      regs['rxa' as 'rax'] = 1n
    })
    expect(write.code).toBe('ERR_UNKNOWN_REGISTER')
    expect(await proc.wait()).toEqual({ exitCode: 0 })
    await expectTracerUsable()
  })
})

describe('register values', () => {
  it('a value that is not an integer is ERR_BAD_VALUE naming the register and what it takes; the register keeps its value', async () => {
    const proc = await start(fixture('counter'), { args: ['1'] })
    await proc.runTo('bump')
    const regs = proc.regs as unknown as Record<string, unknown>
    const before = proc.regs.rax
    for (const value of [1.5, 'x', -1.5, 2 ** 70, undefined, null, Number.NaN, {}]) {
      const err = caught(() => {
        regs.rax = value
      })
      expect(err.code).toBe('ERR_BAD_VALUE')
      expect(err.message).toMatch(/^Cannot write .* to rax/)
      expect(err.message).toContain('regs.rax takes a bigint (regs.rax = 0x2an) or a safe integer number (42)')
      expect(err.message).toContain("two's complement in the register's 64 bits (-1 is 0xffffffffffffffff)")
      expect(proc.regs.rax).toBe(before)
    }
    expect(caught(() => (regs.rax = 1.5)).message).toMatch(/1\.5 to rax: it is not an integer/)
    expect(caught(() => (regs.rax = 2 ** 70)).message).toMatch(/beyond 2\^53.*Write it as a bigint/)
    // Too wide for the register (or the alias) named: refused rather than cut.
    expect(caught(() => (regs.rax = 1n << 64n)).message).toMatch(/does not fit in 64 bits/)
    expect(caught(() => (regs.al = 0x100n)).message).toMatch(/to al: it does not fit in 8 bits \(from -0x80 to 0xff\)/)
    // Safe integers are taken; a negative one is the two's complement of the width written.
    regs.rax = 0x1122334455667788n
    regs.eax = -1
    expect(proc.regs.rax).toBe(0x11223344ffffffffn)
    regs.al = -2
    expect(proc.regs.rax).toBe(0x11223344fffffffen)
    regs.rdi = 41
    expect(proc.regs.rdi).toBe(41n)
    regs.rax = -1n
    expect(proc.regs.rax).toBe(0xffffffffffffffffn)
    expect(await proc.wait()).toEqual({ exitCode: 0 })
    expect(proc.stdout).toBe('bump 1 -> 41\ntotal 41\n')
  })

  it('a snapshot’s registers are read-only: every write is ERR_READ_ONLY, and they still print and serialize as values', async () => {
    const proc = await start(fixture('counter'), { args: ['1'] })
    await proc.runTo('bump')
    const snap = proc.createSnapshot()
    const regs = snap.regs as Record<string, unknown>
    const rax = snap.regs.rax
    for (const name of ['rax', 'eax', 'nosuch']) {
      const err = caught(() => {
        regs[name] = 1n
      })
      expect(err.code).toBe('ERR_READ_ONLY')
      expect(err.message).toContain(`A snapshot's registers are read-only (regs.${name})`)
      expect(err.message).toContain(`proc.regs.${name} = …`)
    }
    expect(caught(() => ((snap.threads[0]?.regs as Record<string, unknown>).rip = 0n)).code).toBe('ERR_READ_ONLY')
    expect(snap.regs.rax).toBe(rax)
    expect(regs.nosuch).toBeUndefined()
    expect(inspect(snap.regs)).toContain(`rax: ${rax}n`)
    expect(
      JSON.parse(JSON.stringify(snap.regs, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v))),
    ).toMatchObject({
      rax: String(rax),
    })
    expect(structuredClone(snap.regs)).toEqual({ ...snap.regs })
    expect(await proc.wait()).toEqual({ exitCode: 0 })
  })
})

describe('a process in the wrong state', () => {
  it('runTo a function this run never calls is ERR_PROCESS_EXITED (counter 0 never calls bump)', async () => {
    const proc = await start(fixture('counter'), { args: ['0'] })
    const err = await rejected(proc.runTo('bump'))
    expect(err.code).toBe('ERR_PROCESS_EXITED')
    expect(err.message).toMatch(/exited with code 0 before reaching counter!bump/)
    expect(err.message).toMatch(/Check that this run of the program reaches that code/)
    expect(proc.exit).toEqual({ exitCode: 0 })
    expect(proc.stdout).toBe('total 0\n')
    await expectTracerUsable()
  })

  it('runTo a libc function the program never calls is ERR_PROCESS_EXITED, quoting its stderr', async () => {
    const proc = await start(fixture('echo'), { stdin: 'hi\n' })
    // At the entry stop ld.so has mapped libc already, so the location resolves.
    expect(proc.modules.map((m) => m.name)).toContain('libc.so.6')
    const err = await rejected(proc.runTo('libc.so.6!abort'))
    expect(err.code).toBe('ERR_PROCESS_EXITED')
    expect(err.message).toMatch(/exited with code 0 before reaching libc\.so\.6!abort/)
    expect(err.message).toMatch(/Its stderr: done/)
    expect(proc.exit).toEqual({ exitCode: 0 })
    expect(proc.stdout).toBe('hi\n')
    await expectTracerUsable()
  })

  it('using a process after it exited is ERR_PROCESS_ENDED; kill() and wait() return the same result again', async () => {
    const proc = await start(fixture('counter'), { args: ['1'] })
    const result = await proc.wait()
    expect(result).toEqual({ exitCode: 0 })
    const uses: Array<[string, () => unknown]> = [
      ['read registers', () => proc.regs.rip],
      ['read memory', () => proc.readMemory('g_counter', 4)],
      ['set a breakpoint', () => proc.breakAt('bump')],
      ['read the memory maps', () => proc.maps],
      ['resolve a location', () => proc.resolve('main')],
    ]
    for (const [what, use] of uses) {
      const err = caught(use)
      expect(err.code).toBe('ERR_PROCESS_ENDED')
      expect(err.message).toContain(`Cannot ${what}: process ${proc.pid}`)
      expect(err.message).toMatch(/exited with code 0\. Launch it again/)
    }
    for (const run of [() => proc.cont(), () => proc.step(), () => proc.runTo('bump'), () => proc.finish()]) {
      expect((await rejected(run())).code).toBe('ERR_PROCESS_ENDED')
    }
    expect(await proc.kill()).toBe(result)
    expect(await proc.kill()).toBe(result)
    expect(await proc.wait()).toBe(result)
    expect(proc.exit).toBe(result)
    await expectTracerUsable()
  })

  it('kill() twice is fine, and a killed process is ERR_PROCESS_ENDED saying it was killed', async () => {
    const proc = await start(fixture('counter'), { args: ['1'] })
    const first = await proc.kill()
    expect(first).toEqual({ signal: 'SIGKILL' })
    expect(await proc.kill()).toBe(first)
    expect(await proc.wait()).toBe(first)
    const err = caught(() => proc.regs.rax)
    expect(err.code).toBe('ERR_PROCESS_ENDED')
    expect(err.message).toMatch(/was killed by SIGKILL/)
    expect((await rejected(proc.cont())).code).toBe('ERR_PROCESS_ENDED')
    await expectTracerUsable()
  })

  it('cont() while another cont() is pending is ERR_PROCESS_RUNNING, and the first one still completes', async () => {
    const proc: Process = await start(fixture('forever'))
    const first = proc.cont({ timeout: 300 })
    const err = await rejected(proc.cont())
    expect(err.code).toBe('ERR_PROCESS_RUNNING')
    expect(err.message).toMatch(/Cannot cont while cont\(\) is running: await it first/)
    expect(caught(() => proc.regs.rip).code).toBe('ERR_PROCESS_RUNNING')
    expect(caught(() => proc.readMemory('g_spins', 8)).code).toBe('ERR_PROCESS_RUNNING')
    expect(caught(() => proc.breakAt('spin')).code).toBe('ERR_PROCESS_RUNNING')
    // forever never stops by itself: the first cont times out and leaves it stopped in spin().
    const timeout = await rejected(first)
    expect(timeout.code).toBe('ERR_TIMEOUT')
    expect(proc.symbolize(proc.regs.rip)).toMatch(/^forever!spin\+0x/)
    expect(await proc.kill()).toEqual({ signal: 'SIGKILL' })
    await expectTracerUsable()
  })
})

describe('ptrace refused by the kernel', () => {
  const distBuild = useDist()

  it('a seccomp filter that fails ptrace with EPERM gives ERR_PTRACE_DENIED with what to change, and leaves no process', () => {
    const script = `
import { readdirSync, readFileSync } from 'node:fs'
import { launch, livePids } from './index.js'
const children = () => readdirSync('/proc/self/task').flatMap((t) => readFileSync('/proc/self/task/' + t + '/children', 'latin1').trim().split(' ').filter(Boolean))
try {
  const proc = await launch(${JSON.stringify(fixture('counter'))})
  await proc.kill()
  console.log(JSON.stringify({ launched: true }))
} catch (error) {
  console.log(JSON.stringify({ name: error.name, code: error.code, errno: error.errno, message: error.message, live: livePids(), children: children() }))
}
`
    const child = distBuild().run(script, { prefix: [fixture('noptrace')] })
    expect(child.error).toBeUndefined()
    expect(child.stderr).toBe('')
    expect(child.status).toBe(0)
    const out = JSON.parse(child.stdout) as Record<string, unknown>
    expect(out).toMatchObject({ name: 'PtraceError', code: 'ERR_PTRACE_DENIED', errno: 1, live: [], children: [] })
    expect(out.message).toMatch(/PTRACE_SEIZE: EPERM/)
    expect(out.message).toMatch(/SYS_PTRACE/)
    expect(out.message).toMatch(/seccomp profile allows ptrace/)
    expect(out.message).toMatch(/ptrace_scope/)
    expect(strayChildren()).toEqual([])
  })

  it('the same script without the filter launches (the refusal came from the filter)', () => {
    const child = distBuild().run(`
import { launch } from './index.js'
const proc = await launch(${JSON.stringify(fixture('counter'))}, { args: ['1'] })
console.log(JSON.stringify(await proc.wait()))
`)
    expect(child.stderr).toBe('')
    expect(child.status).toBe(0)
    expect(JSON.parse(child.stdout)).toEqual({ exitCode: 0 })
  })
})

describe('out of file descriptors', () => {
  const distBuild = useDist()

  it('a launch that gets its stdio but not the go pipe is ERR_SPAWN_FAILED (EMFILE) and closes the stdio it opened', () => {
    const script = `
import { closeSync, openSync, readdirSync } from 'node:fs'
import { launch } from './index.js'
const counter = ${JSON.stringify(fixture('counter'))}
await (await launch(counter, { args: ['0'] })).wait() // loads the launcher and the bindings
const before = readdirSync('/proc/self/fd').length
const fill = []
for (;;) {
  try {
    fill.push(openSync('/dev/null', 'r'))
  } catch {
    break
  }
}
// Room for stdout's and stderr's two fds each, none for the launcher's go pipe.
for (let i = 0; i < 4; i++) closeSync(fill.pop())
let error
try {
  await launch(counter, { args: ['0'] })
} catch (e) {
  error = { code: e.code, message: e.message }
}
for (const fd of fill) closeSync(fd)
const leaked = readdirSync('/proc/self/fd').length - before
const after = await launch(counter, { args: ['0'] })
console.log(JSON.stringify({ error, leaked, exit: await after.wait(), stdout: after.stdout }))
`
    const child = distBuild().run(script, { prefix: ['prlimit', '--nofile=128:128', '--'] })
    expect(child.stderr).toBe('')
    expect(child.status).toBe(0)
    expect(JSON.parse(child.stdout)).toEqual({
      error: { code: 'ERR_SPAWN_FAILED', message: 'pipe2 failed (EMFILE): too many open files?' },
      leaked: 0,
      exit: { exitCode: 0 },
      stdout: 'total 0\n',
    })
  })
})
