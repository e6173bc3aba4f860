// The key line of a golden's header (issue 11): any test or snapshot name round-trips (newlines,
// carriage returns, U+2028, lone surrogates, a leading quote), plain keys read as they always did,
// and a damaged key line is ERR_GOLDEN_CORRUPT at line 2 (in CI and locally; -u rewrites it in
// place), never a second golden beside it nor an obsolete one. Names never lead outside the folder.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { goldenDir, goldenPath, headerKey } from '../../src/golden/files.js'
import { decodeKey, encodeKey } from '../../src/golden/key.js'
import { parseGolden } from '../../src/golden/parse.js'
import { renderGolden } from '../../src/golden/render.js'
import { fixture } from '../helpers.js'
import { runProject } from '../vitest-project.js'

const HOSTILE = [
  'd > a\nb 1',
  'd > a\r\nb 1',
  'cr\r 1',
  'sep\u2028par\u2029 1',
  'nul\u0000 1',
  'esc\u001b[31m 1',
  'c1\u0085 1',
  'lone \ud800 1',
  '"quoted" 1',
  '"',
  '"a"',
  '\\"',
  '',
  ' lead and trail ',
  'back\\slash 1',
  'tab\there 1',
  'é 😀 1',
]

describe('key encoding', () => {
  it.each(HOSTILE)('%j round-trips through the header and the parser', (key) => {
    const text = renderGolden({ key, test: key }, [{ title: 'stop', entries: [{ label: 'kind', value: 'x' }] }])
    expect(text.split('\n')[1]?.startsWith('# key: ')).toBe(true)
    expect(text.split('\n')).toHaveLength(7) // the key and the test name each stay on their line
    expect(headerKey(text)).toBe(key)
    expect(parseGolden(text, 'k.snap')).toMatchObject({ key, test: key })
  })

  it('writes plain keys as every golden before it did, and reads those back unchanged', () => {
    for (const key of ['counter > bump 1', '"quoted" name 1', 'tab\there 1', 'back\\slash "x" 1', 'é 1', ' lead 1'])
      expect(encodeKey(key)).toBe(key)
    expect(encodeKey('a\nb 1')).toBe('"a\\nb 1"')
    expect(encodeKey('sep\u2028 1')).toBe('"sep\\u2028 1"')
    expect(decodeKey('"quoted" name 1')).toBe('"quoted" name 1')
    expect(decodeKey('"broken\\q"')).toBeUndefined()
    expect(decodeKey('""')).toBe('')
    expect(decodeKey('')).toBeUndefined()
  })

  it('never leads outside the golden folder: ../, absolute paths, NUL, unicode', () => {
    const testFile = '/project/test/x.test.ts'
    for (const key of ['../../etc/passwd 1', '/etc/passwd 1', '..\\..\\x 1', 'a\u0000b 1', 'é/../../ 1', '.. 1', '. 1'])
      expect(dirname(goldenPath(testFile, key, () => undefined))).toBe(goldenDir(testFile))
  })
})

const project = mkdtempSync(join(tmpdir(), 'procsnap-keys-'))
afterAll(() => rmSync(project, { recursive: true, force: true }))
const GOLDENS = join(project, '__process_snapshots__', 'keys.test.ts')

const NAMES = ['line\nbreak', 'line\rreturn', 'para\u2028graph', '"quoted"', 'plain']

const TEST = `import { describe, expect, test } from 'vitest'
import { launch } from 'procsnap'

describe('keys', () => {
  for (const name of ${JSON.stringify(NAMES)}) {
    test(name, async () => {
      const proc = await launch(${JSON.stringify(fixture('counter'))}, { args: ['3'] })
      proc.breakAt('bump')
      await proc.cont()
      expect(proc).toMatchProcessSnapshot({ include: ['stop'], name: 'snap\\n' + name })
      await proc.kill()
    })
  }
})
`

describe('keys through Vitest', () => {
  it('names with line breaks: written once, matched, never obsolete, never deleted by -u', async () => {
    writeFileSync(join(project, 'keys.test.ts'), TEST)
    const first = await runProject(project, { update: 'new' })
    expect(first.errors).toEqual([])
    expect(first.summary).toMatchObject({ added: 5, unchecked: 0 })
    const files = readdirSync(GOLDENS).sort()
    expect(files).toHaveLength(5)
    for (const update of ['none', 'new', 'all'] as const) {
      const run = await runProject(project, { update })
      expect(run.errors).toEqual([])
      expect(run.summary).toMatchObject({ matched: 5, unchecked: 0, filesRemoved: 0, added: 0 })
      expect(readdirSync(GOLDENS).sort()).toEqual(files)
    }
  }, 120_000)

  it('a damaged key line is ERR_GOLDEN_CORRUPT at line 2 in CI and locally, rewritten in place by -u, never a second golden', async () => {
    const path = join(GOLDENS, 'keys-plain-snap-plain-1.snap')
    const good = readFileSync(path, 'utf8')
    const files = readdirSync(GOLDENS).sort()
    const damaged = [
      good.replace('# key: "keys > plain', '# key: "keys > plaim'), // another key, of another slug
      good.replace('# key: "keys > plain', '# key: "keys ) plain'), // the same slug, a key no test takes
      good.replace('# key: "keys > plain > snap\\nplain 1"', '# key: keys > plain > snap'), // cut at the newline
      good.replace('# key: "keys > plain', '# key: "keys > plain\\q'), // a broken quoted key
      good.replace('# key: ', '# kez: '),
      good.split('\n').slice(0, 1).join('\n'), // truncated after the first line
    ]
    for (const text of damaged) {
      writeFileSync(path, text)
      for (const update of ['none', 'new'] as const) {
        const run = await runProject(project, { update })
        expect(run.states.plain, `${update}: ${text.slice(0, 60)}`).toBe('fail')
        expect(run.errorKinds).toEqual(['GoldenError ERR_GOLDEN_CORRUPT'])
        expect(run.errors[0]).toMatch(
          /^Process snapshot `keys > plain > snap\nplain 1`: .*keys-plain-snap-plain-1\.snap:\d: /,
        )
        expect(readFileSync(path, 'utf8')).toBe(text)
        expect(readdirSync(GOLDENS).sort()).toEqual(files)
      }
      const fixed = await runProject(project, { update: 'all' })
      expect(fixed.errors).toEqual([])
      expect(fixed.summary).toMatchObject({ updated: 1, filesRemoved: 0 })
      expect(readFileSync(path, 'utf8')).toBe(good)
      expect(readdirSync(GOLDENS).sort()).toEqual(files)
    }
    expect(existsSync(GOLDENS)).toBe(true)
  }, 240_000)
})

describe('keys of the same slug', () => {
  const dir = mkdtempSync(join(tmpdir(), 'procsnap-slug-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))
  const COLLIDE = `import { expect, test } from 'vitest'
import { launch } from 'procsnap'

for (const [name, hits] of [['x.y', 1], ['x y', 2]] as const) {
  test(name, async () => {
    const proc = await launch(${JSON.stringify(fixture('counter'))}, { args: ['3'] })
    proc.breakAt('bump')
    for (let i = 0; i < hits; i++) await proc.cont()
    expect(proc).toMatchProcessSnapshot({ include: ['regs'] })
    await proc.kill()
  })
}
`

  it('written in the same run: each its own file (the second hash-suffixed), matched in CI after', async () => {
    writeFileSync(join(dir, 'collide.test.ts'), COLLIDE)
    const first = await runProject(dir, { update: 'new' })
    expect(first.errors).toEqual([])
    const folder = join(dir, '__process_snapshots__', 'collide.test.ts')
    expect(readdirSync(folder).sort()).toEqual([expect.stringMatching(/^x-y-1-[0-9a-f]{8}\.snap$/), 'x-y-1.snap'])
    const ci = await runProject(dir, { update: 'none' })
    expect(ci.errors).toEqual([])
    expect(ci.summary).toMatchObject({ matched: 2, unchecked: 0 })
  }, 60_000)
})
