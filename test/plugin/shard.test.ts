// Goldens under Vitest's --shard: each shard runs whole files, writes only its own goldens, and
// never calls another shard's goldens obsolete; a CI shard fails only on the obsolete goldens of
// the files it ran.
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, expect, it } from 'vitest'
import { fixture } from '../helpers.js'
import { runProject } from '../vitest-project.js'

const project = mkdtempSync(join(tmpdir(), 'procsnap-shard-'))
afterAll(() => rmSync(project, { recursive: true, force: true }))

function testFile(names: readonly string[]): string {
  return `import { expect, test } from 'vitest'
import { launch } from 'procsnap'
${names
  .map(
    (name) => `test(${JSON.stringify(name)}, async () => {
  const proc = await launch(${JSON.stringify(fixture('counter'))}, { args: ['2'] })
  proc.breakAt('bump')
  await proc.cont()
  expect(proc).toMatchProcessSnapshot()
})`,
  )
  .join('\n')}
`
}

const FILES = ['a', 'b', 'c', 'd']

/** Golden files per test file, as 'file/golden'. */
function goldens(): string[] {
  return FILES.flatMap((f) => {
    try {
      return readdirSync(join(project, '__process_snapshots__', `${f}.test.ts`)).map((g) => `${f}/${g}`)
    } catch {
      return []
    }
  }).sort()
}

it('two shards write, match and judge obsolete goldens only for the files each ran', async () => {
  for (const f of FILES) writeFileSync(join(project, `${f}.test.ts`), testFile([`${f} one`, `${f} two`]))
  const written = [await runProject(project, { update: 'new', shard: '1/2' })]
  const afterFirst = goldens()
  expect(afterFirst).toHaveLength(4) // two files of four, two goldens each
  written.push(await runProject(project, { update: 'new', shard: '2/2' }))
  expect(goldens()).toHaveLength(8)
  expect(written.map((r) => r.summary.added)).toEqual([4, 4])
  expect(written.every((r) => r.passed && r.summary.unchecked === 0)).toBe(true)

  // CI, each shard: everything matches, nothing obsolete, nothing written.
  for (const shard of ['1/2', '2/2']) {
    const ci = await runProject(project, { update: 'none', shard })
    expect(ci.errors).toEqual([])
    expect(ci.summary).toMatchObject({ matched: 4, added: 0, unchecked: 0 })
  }

  // One file drops a test: only the shard that runs that file reports its golden obsolete.
  const [dropped] = afterFirst
  const file = (dropped ?? '').split('/')[0] ?? ''
  writeFileSync(join(project, `${file}.test.ts`), testFile([`${file} one`]))
  const outcomes: Record<string, { passed: boolean; obsolete: number }> = {}
  for (const shard of ['1/2', '2/2']) {
    const ci = await runProject(project, { update: 'none', shard })
    outcomes[shard] = { passed: ci.passed, obsolete: ci.summary.unchecked }
  }
  expect(outcomes).toEqual({ '1/2': { passed: false, obsolete: 1 }, '2/2': { passed: true, obsolete: 0 } })

  // The same two CI shards as blob reports, merged as --merge-reports does: one obsolete golden, once.
  const blobs = join(project, '.vitest-reports')
  for (const [i, shard] of ['1/2', '2/2'].entries())
    await runProject(project, { update: 'none', shard, blob: join(blobs, `blob-${i + 1}.json`) })
  const merged = await runProject(project, { update: 'none', mergeReports: blobs })
  // (Vitest replays no snapshot counts when merging, its own neither: they come from live workers.
  // The obsolete golden travels in the file's meta and is counted by procsnap's reporter, once.)
  expect(merged.summary).toMatchObject({ unchecked: 1, filesRemoved: 0 })
  expect(merged.passed).toBe(false)
  expect(goldens()).toHaveLength(8) // CI removes nothing
  const removed = await runProject(project, { update: 'all', shard: '1/2' })
  expect(removed.summary.filesRemoved).toBe(1)
  expect(goldens()).toHaveLength(7)
}, 120_000)
