// toMatchProcessSnapshot's options end to end: extra memory (a symbol, the heap), redactions that
// replace or check a value, a redaction that fails, sections left out.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, expect, it } from 'vitest'
import { fixture } from '../helpers.js'
import { runProject } from '../vitest-project.js'

const project = mkdtempSync(join(tmpdir(), 'procsnap-options-'))
afterAll(() => rmSync(project, { recursive: true, force: true }))

const TEST = `import { expect, test } from 'vitest'
import { launch } from 'procsnap'

async function atSecondBump() {
  const proc = await launch(${JSON.stringify(fixture('counter'))}, { args: ['3'] })
  proc.breakAt('bump')
  await proc.cont()
  await proc.cont()
  return proc
}

test('options', async () => {
  const proc = await atSecondBump()
  expect(proc).toMatchProcessSnapshot({
    name: 'options',
    include: ['regs', 'memory'],
    memory: ['g_message', '[heap]'],
    redact: { 'regs.rsi': expect.any(BigInt), 'regs.rdi': '<argument>', 'memory.g_counter': '<counter>' },
  })
  await proc.kill()
})

test('a redaction that does not match', async () => {
  const proc = await atSecondBump()
  expect(proc).toMatchProcessSnapshot({ include: ['regs'], redact: { 'regs.rdi': 99n, 'regs.nosuch': 'x' } })
  await proc.kill()
})
`

it('writes extra memory sections and redactions, and fails on a redaction that does not match', async () => {
  writeFileSync(join(project, 'opts.test.ts'), TEST)
  const { states, errors } = await runProject(project, { update: 'new' })
  expect(states).toEqual({ options: 'pass', 'a redaction that does not match': 'fail' })
  expect(errors).toEqual([
    'Process snapshot `a redaction that does not match 1`: redact regs.rdi: expected 99n, ' +
      'received 2n; redact regs.nosuch: no such register in this snapshot',
  ])
  const golden = readFileSync(join(project, '__process_snapshots__', 'opts.test.ts', 'options-options-1.snap'), 'utf8')
  expect(golden).not.toContain('\nstop:')
  expect(golden).toMatch(/\n {2}rsi +<Any<BigInt>>\n/)
  expect(golden).toMatch(/\n {2}rdi +<argument>\n/)
  expect(golden).toMatch(/\n {2}counter!g_counter +<counter>\n/)
  expect(golden).toContain(
    '\nmemory g_message:\n  counter!g_message  68 65 6c 6c 6f 00 00 00 00 00 00 00 00 00 00 00\n',
  )
  expect(golden).toMatch(/\nmemory \[heap\]:\n {2}\[heap\]\+0x0 /)
  expect(golden).toContain(' 62 75 6d 70 20 ') // 'bump ': the program's last printf, in stdout's buffer on the heap
})
