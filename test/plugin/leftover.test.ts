// An operation a test leaves running (a cont() nobody awaited) is ended with its tracee after the
// test, and settles then: it never surfaces later as an unhandled rejection blamed on another test.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, expect, it } from 'vitest'
import { fixture } from '../helpers.js'
import { runProject } from '../vitest-project.js'

const project = mkdtempSync(join(tmpdir(), 'procsnap-leftover-'))
afterAll(() => rmSync(project, { recursive: true, force: true }))

const LEFTOVER = `import { expect, test } from 'vitest'
import { launch, livePids } from 'procsnap'

test('leaves a runTo running', async () => {
  const proc = await launch(${JSON.stringify(fixture('forever'))})
  void proc.runTo('main') // never reached again: forever spins
})

test('leaves a cont running in bash', async () => {
  const proc = await launch('/bin/bash', { args: ['-c', 'for i in $(seq 2000); do /bin/true; done'] })
  void proc.cont()
  await new Promise((resolve) => setTimeout(resolve, 3))
})

test('the next test is not blamed', async () => {
  await new Promise((resolve) => setTimeout(resolve, 50))
  expect(livePids()).toEqual([])
})
`

it('the plugin ends tracees a test left running, and their pending operations resolve quietly', async () => {
  writeFileSync(join(project, 'leftover.test.ts'), LEFTOVER)
  const run = await runProject(project, { update: 'new' })
  expect(run.unhandled).toEqual([])
  expect(run.errors).toEqual([])
  expect(run.states).toEqual({
    'leaves a runTo running': 'pass',
    'leaves a cont running in bash': 'pass',
    'the next test is not blamed': 'pass',
  })
  expect(run.passed).toBe(true)
}, 60_000)
