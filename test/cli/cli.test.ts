// `procsnap` as a user runs it: the built command line in a child node, real programs and real
// files, exit codes scripts can use, gdb reading the core it writes, and no colour through a pipe.
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { useDist } from '../dist.js'
import { fixture } from '../helpers.js'

const dist = useDist()

/** Runs `procsnap ARGS` in `cwd`; its exit code, stdout and stderr. */
function procsnap(cwd: string, ...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [join(dist().dir, 'cli/main.js'), ...args], {
    cwd,
    encoding: 'utf8',
    timeout: 60_000,
  })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

describe('procsnap (command line)', () => {
  it('has --help for itself and every command, and exit 2 for a wrong command line', () => {
    const cwd = mkdtempSync(join(tmpdir(), 'procsnap-cli-'))
    const help = procsnap(cwd, '--help')
    expect(help.code).toBe(0)
    const commands = ['show', 'diff', 'report', 'signature', 'core', 'import', 'review', 'run']
    for (const c of commands) {
      expect(help.stdout).toMatch(new RegExp(`^  ${c} `, 'm'))
      const own = procsnap(cwd, c, '--help')
      expect(own.code, c).toBe(0)
      expect(own.stdout, c).toMatch(new RegExp(`^Usage: procsnap ${c}`))
    }
    expect(procsnap(cwd).code).toBe(2)
    expect(procsnap(cwd, 'frobnicate').stderr).toMatch(/no command frobnicate/)
    const badOption = procsnap(cwd, 'show', '--bogus', 'x')
    expect(badOption.code).toBe(2)
    expect(badOption.stderr).toMatch(/Unknown option '--bogus'[\s\S]*Usage: procsnap show/)
    expect(procsnap(cwd, 'diff', 'only-one').code).toBe(2)
    expect(procsnap(cwd, 'show', 'x', '--thread', 'two').stderr).toMatch(/--thread takes a whole number/)
  })

  it('runs a program to its crash: report, snapshot file, signature, JSON, a core gdb reads, the exit status', () => {
    const cwd = mkdtempSync(join(tmpdir(), 'procsnap-cli-'))
    const ran = procsnap(cwd, 'run', '-o', 'out', '--', fixture('crashes'), 'write')
    expect(ran.code).toBe(139) // 128 + SIGSEGV
    expect(ran.stdout).toContain('SIGSEGV: write to 0x0 (address not mapped) in crashes!store_null')
    const [file] = readdirSync(join(cwd, 'out'))
    expect(file).toMatch(/^crash-[0-9a-f]{16}\.procsnap$/)
    const path = join('out', file ?? '')
    const id = /^crash-([0-9a-f]{16})/.exec(file ?? '')?.[1]
    expect(procsnap(cwd, 'signature', path)).toEqual({ code: 0, stdout: `${id ?? ''}\n`, stderr: '' })
    expect(procsnap(cwd, 'signature', '-v', path).stdout).toMatch(
      /SIGSEGV\/SEGV_MAPERR crashes!store_null < crashes!run/,
    )
    const json = JSON.parse(procsnap(cwd, 'report', '--json', path).stdout) as Record<string, unknown>
    expect(json).toMatchObject({ signal: 'SIGSEGV', faultAddress: '0x0', access: 'write', signature: id })
    expect(procsnap(cwd, 'core', path, '-o', 'crash.core').code).toBe(0)
    const gdb = execFileSync('gdb', ['-nx', '-batch', '-ex', 'bt 1', fixture('crashes'), join(cwd, 'crash.core')], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    expect(gdb).toMatch(/Program terminated with signal SIGSEGV/)
    expect(gdb).toMatch(/#0 .*store_null/)
    // the core read back: signed the same, and imported as a snapshot file
    expect(procsnap(cwd, 'signature', 'crash.core').stdout).toBe(`${id ?? ''}\n`)
    expect(procsnap(cwd, 'import', 'crash.core', '-o', 'imported.procsnap')).toMatchObject({ code: 0 })
    expect(procsnap(cwd, 'report', 'imported.procsnap').stdout.split('\n')[0]).toBe(
      'SIGSEGV: write to 0x0 (address not mapped) in crashes!store_null',
    )
  })

  it('snapshots at a symbol, shows it (no colour through a pipe), diffs it (exit 1 when different), exits with the program', () => {
    const cwd = mkdtempSync(join(tmpdir(), 'procsnap-cli-'))
    const ran = procsnap(cwd, 'run', '--snapshot-on', 'bump', '-o', '.', '--', fixture('counter'), '2')
    expect(ran.code).toBe(0)
    expect(ran.stdout).toContain('snapshot at counter!bump written to bump.procsnap')
    const shown = procsnap(cwd, 'show', 'bump.procsnap')
    expect(shown.code).toBe(0)
    expect(shown.stdout).toMatch(/stopped: breakpoint at counter!bump in thread 1/)
    expect(shown.stdout).toMatch(/counter!main/)
    expect(shown.stdout).not.toContain('\x1b[')
    expect(procsnap(cwd, 'show', 'bump.procsnap', '--memory', 'g_message', '--length', '16').stdout).toMatch(
      /\|hello\./,
    )
    expect(procsnap(cwd, 'diff', 'bump.procsnap', 'bump.procsnap')).toMatchObject({
      code: 0,
      stdout: 'no differences\n',
    })
    procsnap(cwd, 'run', '-o', 'crash', '--', fixture('crashes'), 'write')
    const crash = join('crash', readdirSync(join(cwd, 'crash'))[0] ?? '')
    const differ = procsnap(cwd, 'diff', 'bump.procsnap', crash)
    expect(differ.code).toBe(1)
    expect(differ.stdout).toMatch(/breakpoint at counter!bump .* -> SIGSEGV at crashes!store_null/)
    const failed = spawnSync(
      process.execPath,
      [join(dist().dir, 'cli/main.js'), 'run', '--', '/bin/sh', '-c', 'exit 7'],
      {
        cwd,
        encoding: 'utf8',
      },
    )
    expect(failed.status).toBe(7)
  })

  it('shows a golden file after checking it, and refuses a damaged one with its line', () => {
    const cwd = mkdtempSync(join(tmpdir(), 'procsnap-cli-'))
    const golden =
      '# procsnap golden 1\n# key: clean run 1\n# test: crash.test.ts\n\ncrash:\n  none  it exited with 0\n'
    writeFileSync(join(cwd, 'clean-run-1.snap'), golden)
    const shown = procsnap(cwd, 'show', 'clean-run-1.snap')
    expect(shown.code).toBe(0)
    expect(shown.stdout).toBe(`golden of "clean run 1" (crash.test.ts), 1 sections\n\n${golden}`)
    writeFileSync(join(cwd, 'bad.snap'), '# procsnap golden 1\n# key: x 1\n# test: t.ts\n\nno section header\n')
    const bad = procsnap(cwd, 'show', 'bad.snap')
    expect(bad.code).toBe(3)
    expect(bad.stderr).toMatch(/bad\.snap:\d+: .*\(ERR_GOLDEN_CORRUPT\)/)
  })

  it('exits 3 with the typed error for a file it cannot use: missing, corrupt, not a crash', () => {
    const cwd = mkdtempSync(join(tmpdir(), 'procsnap-cli-'))
    const missing = procsnap(cwd, 'show', 'nope.procsnap')
    expect(missing.code).toBe(3)
    expect(missing.stderr).toMatch(/\(ERR_SNAPSHOT_NOT_FOUND\)/)
    writeFileSync(join(cwd, 'junk.procsnap'), 'not a snapshot')
    expect(procsnap(cwd, 'report', 'junk.procsnap').code).toBe(3)
    procsnap(cwd, 'run', '--snapshot-on', 'bump', '-o', '.', '--', fixture('counter'), '1')
    const notCrash = procsnap(cwd, 'report', 'bump.procsnap')
    expect(notCrash.code).toBe(3)
    expect(notCrash.stderr).toMatch(/not at a crash .*\(ERR_BAD_ARGUMENT\)/)
  })
})
