// A golden too large to review is written, and the test's output says which sections made it large
// and which options shrink it; a small one says nothing. bash's golden (a program we did not write)
// is about 180 KB, mostly its data.
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, expect, it } from 'vitest'
import { largeGoldenNote, REVIEWABLE_BYTES } from '../../src/golden/size.js'
import { fixture } from '../helpers.js'
import { runProject } from '../vitest-project.js'

const project = mkdtempSync(join(tmpdir(), 'procsnap-large-'))
afterAll(() => rmSync(project, { recursive: true, force: true }))

const TEST = `import { expect, test } from 'vitest'
import { launch } from 'procsnap'

test('bash', async () => {
  const proc = await launch('/bin/bash', { args: ['-c', 'true'] })
  proc.breakAt('libc.so.6!exit')
  await proc.cont()
  expect(proc).toMatchProcessSnapshot()
})

test('counter', async () => {
  const proc = await launch(${JSON.stringify(fixture('counter'))}, { args: ['3'] })
  proc.breakAt('bump')
  await proc.cont()
  expect(proc).toMatchProcessSnapshot()
})
`

it('writes a large golden and says what makes it large; says nothing of a small one', async () => {
  writeFileSync(join(project, 'large.test.ts'), TEST)
  const written = await runProject(project, { update: 'new' })
  expect(written.errors).toEqual([])
  expect(written.states).toEqual({ bash: 'pass', counter: 'pass' })
  const dir = join(project, '__process_snapshots__', 'large.test.ts')
  const sizes = Object.fromEntries(readdirSync(dir).map((f) => [f, statSync(join(dir, f)).size]))
  expect(sizes['bash-1.snap']).toBeGreaterThan(REVIEWABLE_BYTES)
  expect(sizes['counter-1.snap']).toBeLessThan(REVIEWABLE_BYTES)
  const notes = written.logs.filter((l) => l.includes('too large to review'))
  expect(notes).toHaveLength(1)
  expect(notes[0]).toMatch(
    /^procsnap: process snapshot `bash 1` \(__process_snapshots__\/large\.test\.ts\/bash-1\.snap\) is \d+ KB, too large to review line by line \(over 100 KB\)\. Largest sections: memory \d+ KB \(include without 'memory'/,
  )
}, 60_000)

it('names the three largest sections and what shrinks each', () => {
  const entries = (n: number, width: number): { label: string; value: string }[] =>
    Array.from({ length: n }, (_, i) => ({ label: `l${i}`, value: 'x'.repeat(width) }))
  const note = largeGoldenNote('t 1', 't-1.snap', 250_000, [
    { title: 'stop', entries: entries(3, 10) },
    { title: 'memory', entries: entries(1000, 150) },
    { title: 'memory [heap]', entries: entries(500, 100) },
    { title: 'maps', entries: entries(100, 20) },
  ])
  expect(note).toContain('is 250 KB')
  expect(note).toContain("Largest sections: memory 159 KB (include without 'memory'")
  expect(note).toContain("memory [heap] 55 KB (drop '[heap]' from the memory option)")
  expect(note).toContain("maps 3 KB (include without 'maps')")
  expect(note).not.toContain('stop')
  expect(largeGoldenNote('t 1', 't-1.snap', REVIEWABLE_BYTES, [])).toBeUndefined()
})
