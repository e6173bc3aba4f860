// A linked golden folder (issue 11): __process_snapshots__, or the folder of one test file under it,
// may be a symbolic link to a place inside the project; one that leads out of the project, or
// dangles, fails every snapshot of the file with ERR_GOLDEN_OUTSIDE, and nothing there is read,
// written or deleted (not even by -u's obsolete check).
import { execFileSync } from 'node:child_process'
import {
  cpSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { fixture } from '../helpers.js'
import { runProject } from '../vitest-project.js'

const project = mkdtempSync(join(tmpdir(), 'procsnap-link-'))
const outside = mkdtempSync(join(tmpdir(), 'procsnap-link-outside-'))
afterAll(() => {
  rmSync(project, { recursive: true, force: true })
  rmSync(outside, { recursive: true, force: true })
})
const SNAPSHOTS = join(project, '__process_snapshots__')

const TEST = `import { expect, test } from 'vitest'
import { launch } from 'procsnap'

test('bump', async () => {
  const proc = await launch(${JSON.stringify(fixture('counter'))}, { args: ['3'] })
  proc.breakAt('bump')
  await proc.cont()
  expect(proc).toMatchProcessSnapshot({ include: ['stop'] })
  await proc.kill()
})
`

/** Every file under `dir`, with its content. */
function contents(dir: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const e of readdirSync(dir, { recursive: true, withFileTypes: true }))
    if (e.isFile()) out[join(e.parentPath, e.name)] = readFileSync(join(e.parentPath, e.name), 'utf8')
  return out
}

describe('a linked golden folder', () => {
  it('inside the project: goldens are written and matched through the link', async () => {
    writeFileSync(join(project, 'counter.test.ts'), TEST)
    mkdirSync(join(project, 'store'))
    symlinkSync(join(project, 'store'), SNAPSHOTS)
    const first = await runProject(project, { update: 'new' })
    expect(first.errors).toEqual([])
    expect(readdirSync(join(project, 'store', 'counter.test.ts'))).toEqual(['bump-1.snap'])
    expect((await runProject(project, { update: 'none' })).summary.matched).toBe(1)
  }, 60_000)

  it.each([
    ['__process_snapshots__ leads out of the project', () => symlinkSync(outside, SNAPSHOTS)],
    [
      "a test file's folder under it leads out",
      () => {
        mkdirSync(SNAPSHOTS)
        symlinkSync(outside, join(SNAPSHOTS, 'counter.test.ts'))
      },
    ],
    ['__process_snapshots__ dangles', () => symlinkSync(join(outside, 'nowhere'), SNAPSHOTS)],
  ])(
    '%s: ERR_GOLDEN_OUTSIDE in every mode, nothing outside read, written or deleted',
    async (_, link) => {
      rmSync(SNAPSHOTS, { recursive: true, force: true })
      link()
      // a golden of this test, and an obsolete one, where the link leads
      cpSync(join(project, 'store'), outside, { recursive: true })
      cpSync(join(project, 'store', 'counter.test.ts'), outside, { recursive: true })
      writeFileSync(join(outside, 'counter.test.ts', 'gone-1.snap'), '# procsnap golden 1\n# key: gone 1\n# test: x\n')
      const before = contents(outside)
      for (const update of ['none', 'new', 'all'] as const) {
        const run = await runProject(project, { update })
        expect(run.states, update).toEqual({ bump: 'fail' })
        expect(run.errorKinds).toEqual(['GoldenError ERR_GOLDEN_OUTSIDE'])
        expect(run.errors[0]).toContain('outside the project')
        expect(run.summary).toMatchObject({ filesRemoved: 0, unchecked: 0 })
        expect(contents(outside)).toEqual(before)
      }
      rmSync(outside, { recursive: true, force: true })
      mkdirSync(outside)
    },
    120_000,
  )
})

it('a golden folder that is a file or a FIFO: ERR_NOT_A_FILE in every mode, left as it was', async () => {
  for (const make of [
    () => writeFileSync(SNAPSHOTS, 'not a folder'),
    () => {
      mkdirSync(SNAPSHOTS)
      execFileSync('mkfifo', [join(SNAPSHOTS, 'counter.test.ts')])
    },
  ]) {
    rmSync(SNAPSHOTS, { recursive: true, force: true })
    make()
    for (const update of ['none', 'new', 'all'] as const) {
      const run = await runProject(project, { update })
      expect(run.states, update).toEqual({ bump: 'fail' })
      expect(run.errorKinds).toEqual(['FileError ERR_NOT_A_FILE'])
      expect(run.errors[0]).toContain('is not a folder')
      expect(lstatSync(SNAPSHOTS).isFile() || lstatSync(join(SNAPSHOTS, 'counter.test.ts')).isFIFO()).toBe(true)
    }
  }
  rmSync(SNAPSHOTS, { recursive: true, force: true })
}, 120_000)
