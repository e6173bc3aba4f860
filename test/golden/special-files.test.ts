// Hostile entries in __process_snapshots__ (issue 11): a golden that is a link to /dev/zero, a FIFO
// or a directory fails its own test at once with a FileError, never read, never rewritten by -u;
// the obsolete check skips such entries named '*.snap' and never reports nor deletes them.
import { execFileSync } from 'node:child_process'
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { MAX_GOLDEN_BYTES, readText } from '../../src/golden/files.js'
import { obsoleteGoldens } from '../../src/golden/obsolete.js'
import { caughtProcsnapError, fixture } from '../helpers.js'
import { runProject } from '../vitest-project.js'

const project = mkdtempSync(join(tmpdir(), 'procsnap-special-'))
afterAll(() => rmSync(project, { recursive: true, force: true }))
const GOLDENS = join(project, '__process_snapshots__', 'counter.test.ts')

const TEST = `import { expect, test } from 'vitest'
import { launch } from 'procsnap'

for (const name of ['a', 'b']) {
  test(name, async () => {
    const proc = await launch(${JSON.stringify(fixture('counter'))}, { args: ['3'] })
    proc.breakAt('bump')
    await proc.cont()
    expect(proc).toMatchProcessSnapshot()
    await proc.kill()
  })
}
`

/** The kinds of entry procsnap never reads, made at `path`. */
const SPECIAL: Record<string, (path: string) => void> = {
  'a link to /dev/zero': (path) => symlinkSync('/dev/zero', path),
  'a FIFO': (path) => execFileSync('mkfifo', [path]),
  'a directory': (path) => mkdirSync(path),
}

function kindAt(path: string): string {
  const s = lstatSync(path)
  return s.isSymbolicLink() ? 'link' : s.isFIFO() ? 'fifo' : s.isDirectory() ? 'dir' : 'file'
}

describe('special files as goldens', () => {
  it.each(Object.keys(SPECIAL))('readText refuses %s within a second, in bounded memory', (kind) => {
    const path = join(project, `unit-${kind.replace(/\W/g, '')}.snap`)
    SPECIAL[kind]?.(path)
    const rss = process.memoryUsage().rss
    const t0 = performance.now()
    expect(caughtProcsnapError(() => readText(path)).code).toBe('ERR_NOT_A_FILE')
    expect(performance.now() - t0).toBeLessThan(1000)
    expect(process.memoryUsage().rss - rss).toBeLessThan(64 << 20)
  })

  it('refuses a golden larger than MAX_GOLDEN_BYTES before reading it', () => {
    const path = join(project, 'huge.snap')
    writeFileSync(path, '')
    execFileSync('truncate', ['-s', String(MAX_GOLDEN_BYTES + 1), path])
    expect(caughtProcsnapError(() => readText(path)).code).toBe('ERR_FILE_TOO_LARGE')
    rmSync(path)
  })

  it('fails only the test whose golden is special, in CI, locally and with -u, and leaves the entry as it was', async () => {
    writeFileSync(join(project, 'counter.test.ts'), TEST)
    expect((await runProject(project, { update: 'new' })).summary.added).toBe(2)
    for (const [kind, make] of Object.entries(SPECIAL)) {
      rmSync(join(GOLDENS, 'a-1.snap'), { recursive: true, force: true })
      make(join(GOLDENS, 'a-1.snap'))
      const before = kindAt(join(GOLDENS, 'a-1.snap'))
      for (const update of ['none', 'new', 'all'] as const) {
        const t0 = performance.now()
        const run = await runProject(project, { update })
        expect(performance.now() - t0, `${kind}, ${update}`).toBeLessThan(30_000)
        expect(run.states, `${kind}, ${update}`).toEqual({ a: 'fail', b: 'pass' })
        expect(run.errorKinds).toEqual(['FileError ERR_NOT_A_FILE'])
        expect(run.errors[0]).toContain('Process snapshot `a 1`: ')
        expect(run.errors[0]).toContain('a-1.snap')
        expect(kindAt(join(GOLDENS, 'a-1.snap'))).toBe(before)
      }
    }
  }, 180_000)

  it('the obsolete check skips special entries named *.snap: never reported, never deleted, never hangs', async () => {
    rmSync(join(GOLDENS, 'a-1.snap'), { recursive: true, force: true })
    expect((await runProject(project, { update: 'new' })).summary.added).toBe(1)
    for (const [kind, make] of Object.entries(SPECIAL)) make(join(GOLDENS, `gone-${kind.replace(/\W/g, '')}-1.snap`))
    writeFileSync(join(GOLDENS, 'empty.snap'), '')
    const names = readdirSync(GOLDENS).sort()
    const unit = obsoleteGoldens(join(project, 'counter.test.ts'), new Set(['a 1', 'b 1']), [], true)
    expect(unit).toEqual([])
    for (const update of ['none', 'all'] as const) {
      const run = await runProject(project, { update })
      expect(run.errors).toEqual([])
      expect(run.summary).toMatchObject({ matched: 2, unchecked: 0, filesRemoved: 0 })
      expect(readdirSync(GOLDENS).sort()).toEqual(names)
    }
  }, 120_000)
})
