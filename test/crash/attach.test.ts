// With the plugin, a test that fails after a process it launched with { crash: 'snapshot' } crashed
// carries the crash as Vitest annotations: the report as text, and the snapshot file, which loads.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { crashReport, loadSnapshot } from '../../src/index.js'
import { fixture } from '../helpers.js'
import { runProject } from '../vitest-project.js'

const project = mkdtempSync(join(tmpdir(), 'procsnap-crash-attach-'))
afterAll(() => rmSync(project, { recursive: true, force: true }))

const TEST = `import { expect, test } from 'vitest'
import { launch } from 'procsnap'

test('parser survives', async () => {
  const proc = await launch(${JSON.stringify(fixture('crashes'))}, { args: ['assert'], crash: 'snapshot', stdout: 'ignore', stderr: 'ignore' })
  expect(await proc.wait()).toEqual({ exitCode: 0 })
})

test('clean', async () => {
  const proc = await launch(${JSON.stringify(fixture('crashes'))}, { args: ['none'], crash: 'snapshot' })
  expect(await proc.wait()).toEqual({ exitCode: 0 })
})
`

describe('crash attachments (plugin)', () => {
  it('attaches the report and the snapshot to a test that failed after a crash, and nothing to one that passed', async () => {
    writeFileSync(join(project, 'crash.test.ts'), TEST)
    mkdirSync(join(project, 'node_modules'), { recursive: true })
    const run = await runProject(project, { update: 'none' })
    expect(run.states).toEqual({ 'parser survives': 'fail', clean: 'pass' })
    const notes = run.annotations['parser survives'] ?? []
    const report = notes.find((n) => n.message.startsWith('crash: '))
    expect(report?.message).toMatch(/^crash: SIGABRT: assertion failed: .* in crashes!check_input$/)
    expect(report?.type).toBe('warning')
    const attached = notes.find((n) => n.message.startsWith('crash snapshot crash-'))?.attachment
    expect(attached?.bodyEncoding).toBe('base64') // the snapshot file's bytes, kept with the run's attachments
    const file = join(project, 'attached.procsnap') // as a user saves it from the report
    writeFileSync(file, Buffer.from(String(attached?.body), 'base64'))
    expect(crashReport(loadSnapshot(file)).at).toBe('crashes!check_input')
    expect(run.annotations.clean).toEqual([])
  })
})
