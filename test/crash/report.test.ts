// Crash reports and signatures from snapshots taken at fatal signals: every way the crashes fixture
// dies, python3 dying in libc, gdb as the oracle of the signal and the frame, and signatures that
// hold across ASLR and a rebuild but tell different crashes apart.
import { execFileSync } from 'node:child_process'
import { copyFileSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { crashReport, formatCrashReport, loadSnapshot, ProcsnapError, type CrashReport } from '../../src/index.js'
import { fixture, start } from '../helpers.js'

/** Runs `exe mode` to its crash and reports it (the snapshot at the signal stop, 'writable'). */
async function crashOf(mode: string, exe = fixture('crashes'), aslr = false): Promise<CrashReport> {
  const proc = await start(exe, { args: [mode], aslr, stderr: 'pipe' })
  const ev = await proc.cont()
  expect(ev.kind).toBe('signal')
  const report = crashReport(proc.createSnapshot({ level: 'writable' }))
  await proc.kill()
  return report
}

const EXPECTED: readonly (readonly [mode: string, cause: RegExp, signature: string])[] = [
  ['write', /^SIGSEGV: write to 0x0 \(address not mapped\) in crashes!store_null$/, 'SIGSEGV/SEGV_MAPERR crashes!store_null < crashes!run < crashes!main'],
  ['read', /^SIGSEGV: read from 0x10 \(address not mapped\) in crashes!load_low$/, 'SIGSEGV/SEGV_MAPERR crashes!load_low < crashes!run < crashes!main'],
  ['exec', /^SIGSEGV: jump to 0x0 \(address not mapped\), called from crashes!call_null$/, 'SIGSEGV/SEGV_MAPERR ?!? < crashes!call_null'],
  ['fpe', /^SIGFPE: integer divide by zero in crashes!divide$/, 'SIGFPE/FPE_INTDIV crashes!divide < crashes!run < crashes!main'],
  ['int3', /^SIGTRAP: a stray int3 .* in crashes!stray_int3$/, 'SIGTRAP/SI_KERNEL crashes!stray_int3 < crashes!run < crashes!main'],
  ['ill', /^SIGILL: illegal operand in crashes!undefined_insn$/, 'SIGILL/ILL_ILLOPN crashes!undefined_insn < crashes!run < crashes!main'],
  ['assert', /^SIGABRT: assertion failed: crashes: crashes\.c:\d+: check_input: Assertion `n > 5 && "input too short"' failed\. in crashes!check_input$/, 'SIGABRT crashes!check_input < crashes!run < crashes!main'],
  ['smash', /^SIGABRT: stack smashing detected \(the stack protector\): \*\*\* stack smashing detected \*\*\*: terminated in crashes!smash$/, 'SIGABRT crashes!smash'],
  ['fortify', /^SIGABRT: buffer overflow detected \(_FORTIFY_SOURCE\): \*\*\* buffer overflow detected \*\*\*: terminated in crashes!overflow$/, 'SIGABRT crashes!overflow < crashes!run < crashes!main'],
  ['abort', /^SIGABRT: abort\(\) in crashes!give_up$/, 'SIGABRT crashes!give_up < crashes!run < crashes!main'],
  ['stack', /^SIGSEGV: stack overflow: write at 0x[0-9a-f]+, below the stack \(address not mapped\) in crashes!recurse$/, 'SIGSEGV/SEGV_MAPERR crashes!recurse < crashes!recurse < crashes!recurse'],
  ['bus', /^SIGBUS: write to 0x[0-9a-f]+ \(nonexistent physical address: past the end of a mapped file\) in crashes!bus$/, 'SIGBUS/BUS_ADRERR crashes!bus < crashes!run < crashes!main'],
] // prettier-ignore

describe('crashReport', () => {
  it('says how each crash happened, and signs each differently', async () => {
    const signatures = new Set<string>()
    for (const [mode, cause, signature] of EXPECTED) {
      const report = await crashOf(mode)
      expect(report.cause, mode).toMatch(cause)
      expect(report.signatureText, mode).toBe(signature)
      expect(report.signature, mode).toMatch(/^[0-9a-f]{16}$/)
      signatures.add(report.signature)
    }
    expect(signatures.size).toBe(EXPECTED.length)
  })

  it('agrees with gdb on the signal and the faulting function', async () => {
    const gdb = execFileSync(
      'gdb',
      ['-nx', '-batch', '-ex', 'run', '-ex', 'bt 1', '--args', fixture('crashes'), 'write'],
      {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    )
    expect(gdb).toMatch(/Program received signal SIGSEGV, Segmentation fault\./)
    const frame = /#0 +(?:0x[0-9a-f]+ in )?(\w+) /.exec(gdb)?.[1]
    const report = await crashOf('write')
    expect(report.signal).toBe('SIGSEGV')
    expect(`crashes!${frame ?? ''}`).toBe(report.backtrace[0]?.location.replace(/\+0x[0-9a-f]+$/, ''))
  })

  it('gives the same signature across ASLR and a rebuild with other code and offsets, not across crash sites', async () => {
    const plain = await crashOf('write')
    const randomized = await crashOf('write', fixture('crashes'), true)
    expect(randomized.backtrace[0]?.pc).not.toBe(plain.backtrace[0]?.pc)
    expect(randomized.signature).toBe(plain.signature)
    // crashes-O0 is the same source built -O0: copied under the program's name, it is a rebuild
    const rebuilt = join(mkdtempSync(join(tmpdir(), 'procsnap-crash-')), 'crashes')
    copyFileSync(fixture('crashes-O0'), rebuilt)
    const other = await crashOf('write', rebuilt)
    expect(other.backtrace[0]?.offset).not.toBe(plain.backtrace[0]?.offset)
    expect(other.signature).toBe(plain.signature)
    expect((await crashOf('assert', rebuilt)).signature).toBe((await crashOf('assert')).signature)
    expect((await crashOf('read')).signature).not.toBe(plain.signature)
  })

  it('reports the crashing thread of a multi-threaded program with the others backtraces', async () => {
    const report = await crashOf('thread')
    expect(report.thread).toBe(2)
    expect(report.cause).toBe('SIGSEGV: write to 0x0 (address not mapped) in crashes!store_null')
    expect(report.signatureText).toMatch(/^SIGSEGV\/SEGV_MAPERR crashes!store_null < crashes!worker/)
    const main = report.threads.find((t) => t.index === 1)
    expect(main?.backtrace.map((f) => f.location).join(' ')).toMatch(/crashes!in_thread/)
  })

  it('reports python3 (a program we did not write) dying in libc, from a snapshot saved and loaded', async () => {
    const runs: CrashReport[] = []
    for (const aslr of [false, true]) {
      const proc = await start('/usr/bin/python3', { args: ['-c', 'import ctypes; ctypes.string_at(0)'], aslr })
      const ev = await proc.cont()
      expect(ev.kind).toBe('signal')
      const path = join(mkdtempSync(join(tmpdir(), 'procsnap-crash-')), 'py.procsnap')
      proc.createSnapshot({ level: 'writable' }).save(path)
      await proc.kill()
      runs.push(crashReport(loadSnapshot(path)))
    }
    const [a, b] = runs
    expect(a?.cause).toMatch(/^SIGSEGV: read from 0x0 \(address not mapped\) in libc\.so\.6!\S+, called from \S+!\S+$/)
    expect(a?.signature).toBe(b?.signature)
    expect(a?.modules.some((m) => m.name === 'libc.so.6' && /^[0-9a-f]{40}$/.test(m.buildId ?? ''))).toBe(true)
    const text = formatCrashReport(a as CrashReport)
    expect(text.split('\n')[0]).toBe(a?.cause)
    expect(text).toContain(`signature ${a?.signature ?? ''}`)
    expect(text).toMatch(/memory at the stack\n {2}0x[0-9a-f]+ {2}([0-9a-f]{2} ){15}[0-9a-f]{2}\n/)
  })

  it('refuses a snapshot that is not of a crash, with a typed error saying what to take', async () => {
    const proc = await start(fixture('crashes'), { args: ['write'] })
    proc.breakAt('run')
    await proc.cont()
    const atBreakpoint = proc.createSnapshot({ level: 'writable' })
    const expectBad = (f: () => unknown): void => {
      try {
        f()
        expect.unreachable()
      } catch (error) {
        expect(error).toBeInstanceOf(ProcsnapError)
        expect((error as ProcsnapError).code).toBe('ERR_BAD_ARGUMENT')
        expect((error as Error).message).toMatch(/crash/)
      }
    }
    expectBad(() => crashReport(atBreakpoint))
    expectBad(() => crashReport(proc.thread.createSnapshot({ level: 'writable' })))
    await proc.kill()
  })
})
