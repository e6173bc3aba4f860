// A golden too large to review is written, and the test's output says which sections made it large
// and which options shrink it; a small one says nothing. bash's golden (a program we did not write)
// is about 180 KB, mostly its data.
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { compareGolden, summarizeGolden } from '../../src/golden/compare.js'
import { parseGolden } from '../../src/golden/parse.js'
import { goldenSections, readableSections, renderGolden } from '../../src/golden/render.js'
import { largeGoldenNote, REVIEWABLE_BYTES } from '../../src/golden/size.js'
import { ProcessSnapshot } from '../../src/index.js'
import { fixture } from '../helpers.js'
import { aarch64CounterData } from '../snapshot/aarch64-data.js'
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

describe('300,000 maps and labels (issue 11: renderGolden overflowed the stack)', () => {
  it('render, parse back, compare and size a golden of 300,000 maps of the executable', () => {
    const base = aarch64CounterData()
    const maps = Array.from({ length: 300_000 }, (_, i) => ({
      start: 0x100000000n + BigInt(i) * 0x2000n,
      end: 0x100001000n + BigInt(i) * 0x2000n,
      perms: 'r--p',
      offset: BigInt(i) * 0x1000n,
      path: base.exe,
      inode: 1234,
    }))
    const snap = new ProcessSnapshot({ ...base, maps: [...base.maps, ...maps] })
    const t0 = performance.now()
    const sections = goldenSections(snap.data, snap.modules(), { modules: 'all' })
    const text = renderGolden({ key: 'maps 1', test: 'maps.test.ts' }, sections)
    const parsed = parseGolden(text, 'maps-1.snap')
    expect(parsed.sections.find((s) => s.title === 'maps')?.entries.length).toBeGreaterThan(300_000)
    expect(summarizeGolden(compareGolden(parsed.sections, sections))).toBe('no differences')
    expect(largeGoldenNote('maps 1', 'maps-1.snap', Buffer.byteLength(text), sections)).toContain('maps ')
    expect(performance.now() - t0).toBeLessThan(20_000)
  }, 30_000)

  it('numbers 300,000 equal labels in linear time', () => {
    const entries = Array.from({ length: 300_000 }, () => ({ label: 'same', value: '00' }))
    const t0 = performance.now()
    const [section] = readableSections([{ title: 'memory', entries }])
    expect(section?.entries.at(-1)?.label).toBe('same#300000')
    expect(performance.now() - t0).toBeLessThan(5_000)
  })
})
