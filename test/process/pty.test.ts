// stdout and stderr on pseudo-terminals (the default): what a program printed before a crash is
// captured, the bytes are the bytes written, the program sees an 80x24 terminal, and nothing leaks.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import type { StdioModes } from '../../src/index.js'
import { useDist } from '../dist.js'
import { fixture, start, strayChildren } from '../helpers.js'

const PYTHON = '/usr/bin/python3'

describe('output printed just before a crash', () => {
  it('is in proc.stdout at the SIGSEGV stop: glibc line-buffers a terminal', async () => {
    const proc = await start(fixture('crash_output'))
    const event = await proc.cont()
    expect(event).toMatchObject({ kind: 'signal', signal: 'SIGSEGV' })
    expect(proc.stdout).toBe('Hello, World!\nDeath is coming!\n')
    expect(proc.stdioModes).toEqual({ stdout: 'pty', stderr: 'pty' })
    expect(await proc.kill()).toEqual({ signal: 'SIGKILL' })
    expect(proc.stdout).toBe('Hello, World!\nDeath is coming!\n')
  })

  it("is lost with stdout: 'pipe': glibc buffers a pipe fully and the buffer dies with the process", async () => {
    const proc = await start(fixture('crash_output'), { stdout: 'pipe' })
    expect(await proc.cont()).toMatchObject({ kind: 'signal', signal: 'SIGSEGV' })
    expect(proc.stdout).toBe('')
    expect(proc.stdioModes).toEqual({ stdout: 'pipe', stderr: 'pty' })
    // The lines are still in the program's buffer on the heap, never written.
    const heap = proc.maps.find((m) => m.path === '[heap]')
    if (!heap) throw new Error('no [heap]')
    const bytes = Buffer.from(proc.readMemory(heap.start, Number(heap.end - heap.start)))
    expect(bytes.includes('Hello, World!\nDeath is coming!\n')).toBe(true)
    await proc.cont() // delivers the SIGSEGV
    expect(proc.exit).toEqual({ signal: 'SIGSEGV' })
    expect(proc.stdout).toBe('')
  })
})

describe('pty output', () => {
  it('keeps stdout and stderr apart, each on its own terminal', async () => {
    const proc = await start(fixture('echo'), { stdin: 'hello\nworld\n' })
    expect(await proc.wait()).toEqual({ exitCode: 0 })
    expect(proc.stdout).toBe('hello\nworld\n')
    expect(proc.stderr).toBe('done\n')
  })

  it('passes every byte as written: raw mode, no \\n -> \\r\\n, no echo, control characters intact', async () => {
    const ascii = Uint8Array.from({ length: 128 }, (_, i) => i)
    const proc = await start(fixture('echo'), { stdin: Buffer.concat([ascii, ascii]) })
    expect(await proc.wait()).toEqual({ exitCode: 0 })
    expect(proc.stdout).toBe(Buffer.concat([ascii, ascii]).toString('latin1'))
    expect(proc.stderr).toBe('done\n')
  })

  it('makes the program see a terminal on stdout and stderr (isatty, an 80x24 window); stdin stays /dev/null', async () => {
    const script =
      'import os, sys; print(sys.stdin.isatty(), sys.stdout.isatty(), sys.stderr.isatty(), ' +
      'tuple(os.get_terminal_size(1)), tuple(os.get_terminal_size(2)))'
    const proc = await start(PYTHON, { args: ['-c', script] })
    expect(await proc.wait()).toEqual({ exitCode: 0 })
    expect(proc.stdout).toBe('False True True (80, 24) (80, 24)\n')
    const piped = await start(PYTHON, {
      args: ['-c', 'import sys; print(sys.stdout.isatty(), sys.stderr.isatty())'],
      stdout: 'pipe',
      stderr: 'pipe',
    })
    await piped.wait()
    expect(piped.stdout).toBe('False False\n')
  })

  it('stty (coreutils) reads the window size and raw settings of the terminal', async () => {
    const size = await start('/usr/bin/stty', { args: ['-F', '/dev/stdout', 'size'] })
    expect(await size.wait()).toEqual({ exitCode: 0 })
    expect(size.stdout).toBe('24 80\n')
    const all = await start('/usr/bin/stty', { args: ['-F', '/dev/stdout', '-a'] })
    expect(await all.wait()).toEqual({ exitCode: 0 })
    const flags = all.stdout.split(/\s+/)
    expect(flags).toEqual(expect.arrayContaining(['-opost', '-echo', '-icanon', '-isig', '-icrnl', 'cs8']))
  })

  it('gives the program no controlling terminal and leaves its session alone (its own process group)', async () => {
    // Not isolated: an isolated program is in its init's session (test/process/isolate.test.ts).
    const proc = await start(fixture('crash_output'), { isolate: false })
    await proc.cont()
    // /proc/PID/stat after "(comm)": state ppid pgrp session tty_nr ...
    const stat = (pid: number | 'self'): string[] => {
      const text = readFileSync(`/proc/${pid}/stat`, 'latin1')
      return text.slice(text.lastIndexOf(')') + 2).split(' ')
    }
    const [, , pgrp, session, ttyNr] = stat(proc.pid)
    const [, , , ourSession, ourTty] = stat('self')
    expect(Number(pgrp)).toBe(proc.pid)
    expect(session).toBe(ourSession)
    expect(ttyNr).toBe(ourTty) // the session's terminal (none under CI), not the pty
    expect(readlinkSync(`/proc/${proc.pid}/fd/1`)).toMatch(/^\/dev\/pts\/\d+$/)
    expect(readlinkSync(`/proc/${proc.pid}/fd/2`)).toMatch(/^\/dev\/pts\/\d+$/)
    expect(readlinkSync(`/proc/${proc.pid}/fd/1`)).not.toBe(readlinkSync(`/proc/${proc.pid}/fd/2`))
    expect(readlinkSync(`/proc/${proc.pid}/fd/0`)).toBe('/dev/null')
  })

  it('captures a big output (seq 1 200000, many times the pty buffer) to the last byte, with no hang', async () => {
    // libuv ends a stream after a short read on a hung-up fd; a pty reads 4 KiB at a time, so without
    // reading the rest the last few KiB (still in the kernel's pty buffers) were lost in about 17
    // runs of 20. Five runs make a pass by luck unlikely.
    const expected = Array.from({ length: 200_000 }, (_, i) => `${i + 1}\n`).join('')
    for (let run = 0; run < 5; run++) {
      const proc = await start('/usr/bin/seq', { args: ['1', '200000'] })
      expect(await proc.wait()).toEqual({ exitCode: 0 })
      const out = proc.stdout
      expect(out.length).toBe(expected.length)
      expect(out === expected).toBe(true) // not toBe: a diff of 1.2 MB helps nobody
    }
  })

  it('drains a big stderr too, while stdout stays apart', async () => {
    const script = 'import sys; sys.stderr.write("e" * 300000); sys.stdout.write("out\\n")'
    const proc = await start(PYTHON, { args: ['-c', script] })
    expect(await proc.wait()).toEqual({ exitCode: 0 })
    expect(proc.stderr.length).toBe(300_000)
    expect(/^e*$/.test(proc.stderr)).toBe(true)
    expect(proc.stdout).toBe('out\n')
  })
})

describe('stdio modes', () => {
  it('are what was asked for, and the fds the program holds say so', async () => {
    const proc = await start(fixture('crash_output'), { stdout: 'pipe', stderr: 'ignore' })
    expect(proc.stdioModes).toEqual({ stdout: 'pipe', stderr: 'ignore' })
    expect(readlinkSync(`/proc/${proc.pid}/fd/1`)).toMatch(/^pipe:\[\d+\]$/)
    expect(readlinkSync(`/proc/${proc.pid}/fd/2`)).toBe('/dev/null')
    const inherited = await start(fixture('crash_output'), { stdout: 'inherit', stderr: 'pty' })
    expect(inherited.stdioModes).toEqual({ stdout: 'inherit', stderr: 'pty' })
    expect(readlinkSync(`/proc/${inherited.pid}/fd/1`)).toBe(readlinkSync('/proc/self/fd/1'))
    expect(readlinkSync(`/proc/${inherited.pid}/fd/2`)).toMatch(/^\/dev\/pts\/\d+$/)
  })
})

describe('pty cleanup', () => {
  const ourFds = (): string[] =>
    readdirSync('/proc/self/fd').flatMap((fd) => {
      try {
        return [readlinkSync(`/proc/self/fd/${fd}`)]
      } catch {
        return [] // the directory's own fd, closed by now
      }
    })
  const ptys = (): number => ourFds().filter((t) => t === '/dev/ptmx' || t.startsWith('/dev/pts/')).length

  it('closes both masters when the process exits, crashes, or is killed, and leaves no process', async () => {
    const before = ourFds().length
    const ptysBefore = ptys()
    const exited = await start(fixture('echo'), { stdin: 'x' })
    const killed = await start(fixture('crash_output'))
    const crashed = await start(fixture('crash_output'))
    expect(ptys()).toBe(ptysBefore + 6)
    await exited.wait()
    await killed.cont()
    await killed.kill()
    await crashed.wait()
    expect(crashed.exit).toEqual({ signal: 'SIGSEGV' })
    expect(crashed.stdout).toBe('Hello, World!\nDeath is coming!\n')
    expect(ptys()).toBe(ptysBefore)
    expect(ourFds().length).toBe(before)
    expect(strayChildren()).toEqual([])
  })
})

describe('no pseudo-terminal available', () => {
  const distBuild = useDist()
  const root = process.getuid?.() === 0
  // A mount namespace where /dev/ptmx is /dev/null: posix_openpt opens it, grantpt finds no pty there.
  const hidePtmx = ['unshare', '-m', '--', 'sh', '-c', 'mount --bind /dev/null /dev/ptmx && exec "$0" "$@"']

  it.skipIf(!root)(
    "the default falls back to pipes (said in proc.stdioModes and one warning); an explicit 'pty' throws ERR_PTY_UNAVAILABLE",
    () => {
      const script = `
import { readdirSync } from 'node:fs'
import { launch } from './index.js'
const result = {}
const warnings = []
process.on('warning', (w) => warnings.push({ code: w.code, message: w.message }))
for (let i = 0; i < 2; i++) {
  const proc = await launch(${JSON.stringify(fixture('echo'))}, { stdin: 'hi\\n' })
  await proc.wait()
  result['default' + i] = { modes: proc.stdioModes, stdout: proc.stdout, stderr: proc.stderr }
}
const fds = () => readdirSync('/proc/self/fd').length
const fdsBefore = fds()
for (const stream of ['stdout', 'stderr']) {
  try {
    await launch(${JSON.stringify(fixture('echo'))}, { stdin: 'x', [stream]: 'pty' })
    result[stream] = 'launched'
  } catch (error) {
    result[stream] = { name: error.name, code: error.code, stream: error.stream, errno: error.errno, message: error.message }
  }
}
result.fdsLeaked = fds() - fdsBefore
await new Promise((resolve) => setImmediate(resolve))
result.warnings = warnings
console.log(JSON.stringify(result))
`
      const child = distBuild().run(script, { prefix: hidePtmx })
      expect(child.error).toBeUndefined()
      expect(child.status).toBe(0)
      const out = JSON.parse(child.stdout) as Record<string, unknown> & {
        default0: { modes: StdioModes }
        stdout: { message: string; errno: number }
        warnings: { code: string; message: string }[]
      }
      expect(out.default0).toMatchObject({
        modes: { stdout: 'pipe', stderr: 'pipe' },
        stdout: 'hi\n',
        stderr: 'done\n',
      })
      expect(out.default0.modes.ptyFallback).toMatch(/grantpt failed \(E[A-Z]+\)\. Mount devpts/)
      expect(out.default1).toEqual(out.default0)
      expect(out.stdout).toMatchObject({ name: 'PtyError', code: 'ERR_PTY_UNAVAILABLE', stream: 'stdout' })
      expect(out.stdout.errno).toBeGreaterThan(0)
      expect(out.stdout.message).toMatch(/mount -t devpts devpts \/dev\/pts/)
      expect(out.stdout.message).toMatch(/\{ stdout: 'pipe' \}/)
      expect(out.stderr).toMatchObject({ name: 'PtyError', code: 'ERR_PTY_UNAVAILABLE', stream: 'stderr' })
      expect(out.fdsLeaked).toBe(0)
      expect(out.warnings).toHaveLength(1)
      expect(out.warnings[0]?.code).toBe('PROCSNAP_PTY_FALLBACK')
      expect(child.stderr).toMatch(/PROCSNAP_PTY_FALLBACK/)
      expect(strayChildren()).toEqual([])
    },
  )
})
