// processSnapshots() end to end through createVitest: nothing to wire but the plugin; tracees a test
// leaves running are ended; obsolete goldens are listed, removed by -u, never by a filtered run,
// and fail the file in CI.
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { fixture } from '../helpers.js'
import { runProject, type ProjectRun } from '../vitest-project.js'

const project = mkdtempSync(join(tmpdir(), 'procsnap-plugin-'))
afterAll(() => rmSync(project, { recursive: true, force: true }))

function testFile(snapshotName: string): string {
  return `import { describe, expect, test } from 'vitest'
import { launch, livePids } from 'procsnap'

describe('counter', () => {
  test('bump', async () => {
    const proc = await launch(${JSON.stringify(fixture('counter'))}, { args: ['3'] })
    proc.breakAt('bump')
    await proc.cont()
    expect(proc).toHaveRegister('edi', 1)
    expect(proc).toMatchProcessSnapshot(${JSON.stringify(snapshotName)})
    // left running on purpose: the plugin ends it after the test
  })

  test('nothing is left running', () => {
    expect(livePids()).toEqual([])
  })
})
`
}

async function run(
  update: 'new' | 'all' | 'none',
  testNamePattern?: string,
): Promise<ProjectRun & { obsolete: number; obsoleteKeys: string[]; removed: number }> {
  const r = await runProject(project, { update, ...(testNamePattern ? { testNamePattern } : {}) })
  return { ...r, obsolete: r.summary.unchecked, obsoleteKeys: r.summary.obsoleteKeys, removed: r.summary.filesRemoved }
}

const GOLDENS = join(project, '__process_snapshots__', 'counter.test.ts')

describe('processSnapshots()', () => {
  it('registers the matchers, ends leftover tracees, and handles obsolete goldens as Vitest does', async () => {
    writeFileSync(join(project, 'counter.test.ts'), testFile('old name'))
    const first = await run('new')
    expect(first.errors).toEqual([])
    expect(first.states).toEqual({ bump: 'pass', 'nothing is left running': 'pass' })
    expect(readdirSync(GOLDENS)).toEqual(['counter-bump-old-name-1.snap'])

    // the test now takes another snapshot: the old golden is obsolete
    writeFileSync(join(project, 'counter.test.ts'), testFile('new name'))
    const local = await run('new')
    expect(local.states.bump).toBe('pass')
    expect(readdirSync(GOLDENS).sort()).toEqual(['counter-bump-new-name-1.snap', 'counter-bump-old-name-1.snap']) // kept
    // counted in Vitest's summary line, and listed as Vitest lists obsolete snapshots
    expect(local).toMatchObject({
      obsolete: 1,
      obsoleteKeys: [
        'counter > bump > old name 1 (__process_snapshots__/counter.test.ts/counter-bump-old-name-1.snap)',
      ],
      removed: 0,
    })

    const filtered = await run('all', 'nothing is left')
    expect(filtered.states).toEqual({ bump: undefined, 'nothing is left running': 'pass' }) // bump filtered out: never ran
    expect(filtered).toMatchObject({ obsolete: 0, removed: 0 })
    expect(existsSync(join(GOLDENS, 'counter-bump-old-name-1.snap'))).toBe(true) // a filtered run never removes

    const ci = await run('none')
    expect(ci.errors.join('\n')).toContain('1 obsolete process snapshot (no test takes them any more)')
    expect(ci.errorKinds).toEqual(['GoldenError ERR_GOLDEN_OBSOLETE'])
    expect(existsSync(join(GOLDENS, 'counter-bump-old-name-1.snap'))).toBe(true)

    const updated = await run('all')
    expect(updated.errors).toEqual([])
    expect(updated).toMatchObject({ removed: 1, obsolete: 0 })
    expect(readdirSync(GOLDENS)).toEqual(['counter-bump-new-name-1.snap']) // -u removes it
  }, 120_000)
})
