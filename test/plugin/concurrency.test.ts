// test.concurrent (through the test context's expect) and retries: each snapshot keeps its own key,
// a failed attempt leaves nothing behind (the final one adds the golden), and the next run matches all.
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, expect, it } from 'vitest'
import { fixture } from '../helpers.js'
import { runProject } from '../vitest-project.js'

const project = mkdtempSync(join(tmpdir(), 'procsnap-concurrency-'))
afterAll(() => rmSync(project, { recursive: true, force: true }))
const MARKER = join(project, 'attempted')

const CONCURRENT = `import { test } from 'vitest'
import { launch } from 'procsnap'

for (const hits of [1, 2, 3]) {
  test.concurrent(\`bump call \${hits}\`, async ({ expect }) => {
    const proc = await launch(${JSON.stringify(fixture('counter'))}, { args: ['3'] })
    proc.breakAt('bump')
    for (let i = 0; i < hits; i++) await proc.cont()
    expect(proc).toHaveRegister('edi', hits)
    expect(proc).toMatchProcessSnapshot()
    await proc.kill()
  })
}
`

const RETRY = `import { existsSync, writeFileSync } from 'node:fs'
import { expect, test } from 'vitest'
import { launch } from 'procsnap'

test('passes on its second attempt', { retry: 1 }, async () => {
  const proc = await launch(${JSON.stringify(fixture('counter'))}, { args: ['3'] })
  proc.breakAt('bump')
  await proc.cont()
  expect(proc).toMatchProcessSnapshot()
  await proc.kill()
  if (!existsSync(${JSON.stringify(MARKER)})) {
    writeFileSync(${JSON.stringify(MARKER)}, '')
    throw new Error('first attempt fails after its snapshot')
  }
})
`

async function run(): Promise<{ passed: boolean; added: number; matched: number; unmatched: number }> {
  const { passed, summary } = await runProject(project, { update: 'new' })
  return { passed, added: summary.added, matched: summary.matched, unmatched: summary.unmatched }
}

it('keeps one key per concurrent test and per retried test, and counts only the final attempt', async () => {
  writeFileSync(join(project, 'concurrent.test.ts'), CONCURRENT)
  writeFileSync(join(project, 'retry.test.ts'), RETRY)
  expect(await run()).toEqual({ passed: true, added: 4, matched: 0, unmatched: 0 })
  expect(existsSync(MARKER)).toBe(true) // the retry did happen
  expect(readdirSync(join(project, '__process_snapshots__', 'concurrent.test.ts')).sort()).toEqual([
    'bump-call-1-1.snap',
    'bump-call-2-1.snap',
    'bump-call-3-1.snap',
  ])
  expect(readdirSync(join(project, '__process_snapshots__', 'retry.test.ts'))).toEqual([
    'passes-on-its-second-attempt-1.snap',
  ])
  expect(await run()).toEqual({ passed: true, added: 0, matched: 4, unmatched: 0 })
}, 60_000)
