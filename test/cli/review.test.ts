// `procsnap review` as a user drives it: a local run that fails two crash goldens writes the new ones
// beside them (.snap.new; CI writes none), and review, in a pseudo-terminal (util-linux `script`),
// shows each change and takes keystrokes: skip one, accept the other; then --reject-all.
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { CRASH_TEST } from '../crash/crash-project.js'
import { useDist } from '../dist.js'
import { runProject } from '../vitest-project.js'

const dist = useDist()
const project = mkdtempSync(join(tmpdir(), 'procsnap-review-'))
afterAll(() => rmSync(project, { recursive: true, force: true }))
const GOLDENS = join(project, '__process_snapshots__', 'crash.test.ts')
const CHANGED = { PROCSNAP_E2E_CRASH: 'read', PROCSNAP_E2E_CLEAN: 'abort' }

/** review in a pseudo-terminal: `answer(output)` gives the keys to type when the output so far calls for them. */
function reviewInPty(
  answer: (output: string, asked: number) => string | undefined,
): Promise<{ code: number | null; output: string }> {
  const command = `${JSON.stringify(process.execPath)} ${JSON.stringify(join(dist().dir, 'cli/main.js'))} review`
  const child = spawn('script', ['-qfec', command, '/dev/null'], { cwd: project, stdio: ['pipe', 'pipe', 'pipe'] })
  let output = ''
  let asked = 0
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString()
    const prompts = output.split('accept (a), reject (r), skip (s), quit (q)?').length - 1
    while (asked < prompts) {
      asked++
      const keys = answer(output, asked)
      if (keys) child.stdin.write(keys)
    }
  })
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, output })
    })
  })
}

const pendingFiles = (): string[] =>
  readdirSync(GOLDENS)
    .filter((f) => f.endsWith('.snap.new'))
    .sort()

describe('procsnap review', () => {
  it('a local run leaves changed goldens for review (CI none); review skips, accepts, rejects them', async () => {
    writeFileSync(join(project, 'crash.test.ts'), CRASH_TEST)
    mkdirSync(join(project, 'node_modules'), { recursive: true })
    expect((await runProject(project, { update: 'new' })).summary).toMatchObject({ added: 2 })
    const before = readFileSync(join(GOLDENS, 'clean-run-1.snap'), 'utf8')

    const ci = await runProject(project, { update: 'none', env: CHANGED })
    expect(ci.states).toEqual({ 'parser crash': 'fail', 'clean run': 'fail' })
    expect(pendingFiles()).toEqual([]) // CI never writes them
    const local = await runProject(project, { update: 'new', env: CHANGED })
    expect(local.errors.join('\n')).toMatch(
      /The new one is in .*\.snap\.new: accept or reject it with npx procsnap review/,
    )
    expect(pendingFiles()).toEqual(['clean-run-1.snap.new', 'parser-crash-1.snap.new'])

    const piped = spawnSync(process.execPath, [join(dist().dir, 'cli/main.js'), 'review'], {
      cwd: project,
      encoding: 'utf8',
    })
    expect(piped.status).toBe(2) // no terminal to ask on
    expect(piped.stderr).toMatch(/use --accept-all or --reject-all/)

    // clean-run first (sorted): skip it; parser-crash second: accept it
    const first = await reviewInPty((_out, asked) => (asked === 1 ? 's' : 'a'))
    expect(first.code).toBe(0)
    expect(first.output).toMatch(/1\/2 __process_snapshots__\/crash\.test\.ts\/clean-run-1\.snap/)
    expect(first.output).toMatch(/^- +none +it exited with 0\r?$/m)
    expect(first.output).toMatch(/^\+ +signal +SIGABRT/m)
    expect(first.output).toMatch(
      /2\/2 .*parser-crash-1\.snap\r?\ncrash \(access, at, signature\)[\s\S]*^\+ +at +crashes!load_low/m,
    )
    expect(first.output).toMatch(/1 accepted, 0 rejected, 1 skipped; 1 pending/)
    expect(pendingFiles()).toEqual(['clean-run-1.snap.new'])
    expect(readFileSync(join(GOLDENS, 'parser-crash-1.snap'), 'utf8')).toMatch(/at +crashes!load_low/)

    const rejected = spawnSync(process.execPath, [join(dist().dir, 'cli/main.js'), 'review', '--reject-all'], {
      cwd: project,
      encoding: 'utf8',
    })
    expect(rejected.status).toBe(0)
    expect(rejected.stdout).toMatch(/0 accepted, 1 rejected, 0 skipped; 0 pending/)
    expect(readFileSync(join(GOLDENS, 'clean-run-1.snap'), 'utf8')).toBe(before)
    expect(existsSync(join(GOLDENS, 'clean-run-1.snap.new'))).toBe(false)
    const none = spawnSync(process.execPath, [join(dist().dir, 'cli/main.js'), 'review'], {
      cwd: project,
      encoding: 'utf8',
    })
    expect(none.stdout).toBe('no pending goldens\n')

    // the accepted golden matches the changed run now; the rejected one still fails it
    const after = await runProject(project, { update: 'none', env: CHANGED })
    expect(after.states).toEqual({ 'parser crash': 'pass', 'clean run': 'fail' })
  })
})
