// toMatchCrashReport end to end, through createVitest on a small project: the first run writes the
// crash goldens (a crash, and a clean exit as 'none'), the next matches, and a crash that changes,
// disappears or appears fails its golden; CI refuses to write a missing one.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { runProject, type ProjectRun } from '../vitest-project.js'
import { CRASH_TEST } from './crash-project.js'

const project = mkdtempSync(join(tmpdir(), 'procsnap-crash-golden-'))
afterAll(() => rmSync(project, { recursive: true, force: true }))

async function run(update: 'new' | 'all' | 'none', env: Record<string, string> = {}): Promise<ProjectRun> {
  return runProject(project, { update, env, plugin: false })
}

const GOLDENS = join(project, '__process_snapshots__', 'crash.test.ts')

describe('toMatchCrashReport through Vitest', () => {
  it('writes the crash and the clean exit, matches them, fails when a crash changes, disappears or appears', async () => {
    writeFileSync(join(project, 'crash.test.ts'), CRASH_TEST)
    mkdirSync(join(project, 'node_modules'), { recursive: true })

    const ci = await run('none')
    expect(ci.states['parser crash']).toBe('fail')
    expect(ci.errors.join('\n')).toMatch(/was not written/)

    const first = await run('new')
    expect(first.errors).toEqual([])
    expect(first.summary).toMatchObject({ added: 2, unmatched: 0 })
    expect(readdirSync(GOLDENS).sort()).toEqual(['clean-run-1.snap', 'parser-crash-1.snap'])
    const golden = readFileSync(join(GOLDENS, 'parser-crash-1.snap'), 'utf8')
    expect(golden).toMatch(/signal +SIGSEGV SEGV_MAPERR \(address not mapped\)/)
    expect(golden).toMatch(/at +crashes!store_null/)
    expect(golden).toMatch(
      /signature +[0-9a-f]{16} SIGSEGV\/SEGV_MAPERR crashes!store_null < crashes!run < crashes!main/,
    )
    expect(golden).toMatch(/#0 +crashes!store_null\n +#1 +crashes!run\n +#2 +crashes!main\n\n?$/) // the program's frames only
    expect(golden).not.toMatch(/0x[0-9a-f]{5,}/) // no address, no pid
    expect(readFileSync(join(GOLDENS, 'clean-run-1.snap'), 'utf8')).toMatch(/none +it exited with 0/)

    const again = await run('none')
    expect(again.errors).toEqual([])
    expect(again.summary).toMatchObject({ matched: 2, unmatched: 0 })

    const changed = await run('none', { PROCSNAP_E2E_CRASH: 'read' })
    expect(changed.states['parser crash']).toBe('fail')
    expect(changed.states['clean run']).toBe('pass')
    expect(changed.errors.join('\n')).toMatch(/mismatched/)

    const gone = await run('none', { PROCSNAP_E2E_CRASH: 'none' })
    expect(gone.states['parser crash']).toBe('fail')

    const appeared = await run('none', { PROCSNAP_E2E_CLEAN: 'abort' })
    expect(appeared.states['clean run']).toBe('fail')
    expect(appeared.states['parser crash']).toBe('pass')
  })
})
