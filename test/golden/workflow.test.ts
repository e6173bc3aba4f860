// toMatchProcessSnapshot end to end, through createVitest on a small project: the first run writes
// the goldens, the next matches, a change fails with the structured summary, -u updates, CI refuses
// to write, a corrupt golden fails only its own test; Vitest's summary counts all of it.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { fixture } from '../helpers.js'
import { runProject, type ProjectRun } from '../vitest-project.js'

const project = mkdtempSync(join(tmpdir(), 'procsnap-e2e-'))
afterAll(() => rmSync(project, { recursive: true, force: true }))

const COUNTER_TEST = `import { describe, expect, test } from 'vitest'
import { launch } from 'procsnap'
import { processMatchers } from 'procsnap/matchers'
expect.extend(processMatchers)

describe('counter', () => {
  test('bump', async () => {
    const proc = await launch(process.env.PROCSNAP_E2E_BIN ?? ${JSON.stringify(fixture('counter'))}, { args: ['3'] })
    try {
      proc.breakAt('bump')
      await proc.cont()
      if (process.env.PROCSNAP_E2E_POKE) proc.writeMemory('g_counter', Uint8Array.of(7, 0, 0, 0))
      expect(proc).toMatchProcessSnapshot()
      await proc.cont()
      expect(proc).toMatchProcessSnapshot('second call')
    } finally {
      await proc.kill()
    }
  })
})
`

const OTHER_TEST = `import { expect, test } from 'vitest'
test('unrelated', () => { expect(1 + 1).toBe(2) })
`

/** Without the plugin: the project's test registers the matchers itself. */
async function run(update: 'new' | 'all' | 'none', env: Record<string, string> = {}): Promise<ProjectRun> {
  return runProject(project, { update, env, plugin: false })
}

const GOLDENS = join(project, '__process_snapshots__', 'counter.test.ts')
const FIRST = join(GOLDENS, 'counter-bump-1.snap')
const SECOND = join(GOLDENS, 'counter-bump-second-call-1.snap')

describe('toMatchProcessSnapshot through Vitest', () => {
  it('writes, matches, reports a change as structure, updates with -u, refuses to write in CI, survives a corrupt golden', async () => {
    writeFileSync(join(project, 'counter.test.ts'), COUNTER_TEST)
    writeFileSync(join(project, 'other.test.ts'), OTHER_TEST)
    mkdirSync(join(project, 'node_modules'), { recursive: true })

    // 1. first run: both goldens written, counted as added
    const first = await run('new')
    expect(first.errors).toEqual([])
    expect(first.states.bump).toBe('pass')
    expect(first.summary).toMatchObject({ added: 2, matched: 0, unmatched: 0 })
    expect(readdirSync(GOLDENS).sort()).toEqual(['counter-bump-1.snap', 'counter-bump-second-call-1.snap'])
    const golden = readFileSync(FIRST, 'utf8')
    expect(golden.startsWith('# procsnap golden 1\n# key: counter > bump 1\n# test: counter.test.ts\n')).toBe(true)
    expect(golden).toMatch(/\n {2}counter!g_counter +00 00 00 00\n/)
    expect(readFileSync(SECOND, 'utf8')).toMatch(/\n {2}counter!g_counter +01 00 00 00\n/)

    // 2. second run: both match, nothing rewritten
    const second = await run('new')
    expect(second.summary).toMatchObject({ added: 0, matched: 2, unmatched: 0 })
    expect(readFileSync(FIRST, 'utf8')).toBe(golden)

    // 2b. another binary (the same source built with -O2): the module first, then what moved with it
    const rebuilt = await run('new', { PROCSNAP_E2E_BIN: fixture('counter-O2') })
    expect(rebuilt.states.bump).toBe('fail')
    expect(rebuilt.errors[0]).toMatch(
      /^Process snapshot `counter > bump 1` mismatched \(__process_snapshots__\/counter\.test\.ts\/counter-bump-1\.snap\): counter gone, counter-O2 loaded, stop \(at: counter!bump -> counter-O2!bump\), \d+ registers, \d+ memory ranges? \(.*\), \d+ maps, backtrace of thread 1 changed/,
    )
    expect(readFileSync(FIRST, 'utf8')).toBe(golden)

    // 3. the process changed: the failure names the change first (and the second call sees 7 + 1)
    const changed = await run('new', { PROCSNAP_E2E_POKE: '1' })
    expect(changed.states.bump).toBe('fail')
    expect(changed.errors[0]).toContain(
      'Process snapshot `counter > bump 1` mismatched ' +
        '(__process_snapshots__/counter.test.ts/counter-bump-1.snap): 1 memory range ' +
        '(counter!g_counter: 00 00 00 00 -> 07 00 00 00), backtrace unchanged',
    )
    expect(changed.summary).toMatchObject({ unmatched: 1 })
    expect(readFileSync(FIRST, 'utf8')).toBe(golden)

    // 4. -u rewrites it
    const updated = await run('all', { PROCSNAP_E2E_POKE: '1' })
    expect(updated.states.bump).toBe('pass')
    expect(updated.summary).toMatchObject({ updated: 2, matched: 0 }) // the poke shows at the second call too: 7 + 1
    expect(readFileSync(FIRST, 'utf8')).toMatch(/\n {2}counter!g_counter +07 00 00 00\n/)

    // 5. CI (--update=none): a missing golden fails and is not written
    rmSync(SECOND)
    const ci = await run('none', { PROCSNAP_E2E_POKE: '1' })
    expect(ci.states.bump).toBe('fail')
    expect(ci.errors[0]).toContain(
      'Process snapshot `counter > bump > second call 1` was not written: ' +
        '__process_snapshots__/counter.test.ts/counter-bump-second-call-1.snap does not exist, and ' +
        'this run may not write goldens',
    )
    expect(existsSync(SECOND)).toBe(false)

    // 6. a corrupt golden fails its own test with path and line; the other file's test passes
    writeFileSync(
      FIRST,
      '# procsnap golden 1\n# key: counter > bump 1\n# test: counter.test.ts\n\nmemory:\n  ' +
        'counter!g_counter  07 00 00 00\n  counter!g_counter  again\n',
    )
    const corrupt = await run('new', { PROCSNAP_E2E_POKE: '1' })
    expect(corrupt.states.bump).toBe('fail')
    expect(corrupt.states.unrelated).toBe('pass')
    expect(corrupt.errors[0]).toContain(
      "__process_snapshots__/counter.test.ts/counter-bump-1.snap:7: 'counter!g_counter' appears twice in section 'memory'",
    )
  }, 120_000)
})
