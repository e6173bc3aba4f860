// examples/counter works as shipped: its test file, run through the plugin as its config says
// (with 'procsnap' resolved to src/), writes its goldens and then matches them.
import { cpSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, expect, it } from 'vitest'
import { fixture } from './helpers.js'
import { runProject } from './vitest-project.js'

const copy = mkdtempSync(join(tmpdir(), 'procsnap-example-'))
afterAll(() => rmSync(copy, { recursive: true, force: true }))

async function runExample(): Promise<{ passed: boolean; summary: { added: number; matched: number } }> {
  const { passed, summary } = await runProject(copy, { update: 'new', env: { COUNTER: fixture('counter') } })
  return { passed, summary }
}

it('examples/counter passes: the first run writes two goldens, the second matches them', async () => {
  cpSync(fileURLToPath(new URL('../examples/counter/', import.meta.url)), copy, { recursive: true })
  const first = await runExample()
  expect(first).toMatchObject({ passed: true, summary: { added: 2, matched: 0 } })
  expect(readdirSync(join(copy, '__process_snapshots__', 'counter.test.ts')).sort()).toEqual([
    'bump-increments-the-counter-1.snap',
    'bump-increments-the-counter-second-call-1.snap',
  ])
  const second = await runExample()
  expect(second).toMatchObject({ passed: true, summary: { added: 0, matched: 2 } })
}, 60_000)
