// A golden of a run whose thread order was decided by a time slice (a thread busy-waited without a
// syscall) is not deterministic: a mismatch says so, so that nobody hunts for a change in the program.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { fixture } from '../helpers.js'
import { runProject } from '../vitest-project.js'

const project = mkdtempSync(join(tmpdir(), 'procsnap-schedule-note-'))
afterAll(() => rmSync(project, { recursive: true, force: true }))

const TEST = (binary: string, args: string[]): string => `import { expect, test } from 'vitest'
import { launch } from 'procsnap'
test('stop', async () => {
  const proc = await launch(${JSON.stringify(binary)}, { args: ${JSON.stringify(args)} })
  proc.breakAt(${JSON.stringify(binary.endsWith('spin') ? 'spun' : 'bump')})
  await proc.cont()
  if (process.env.POKE) proc.regs.r12 = 0x5a5an // the stopped thread's registers are in the golden
  expect(proc).toMatchProcessSnapshot({ include: ['regs'] })
  await proc.kill()
})
`

async function mismatch(binary: string, args: string[]): Promise<string> {
  writeFileSync(join(project, 'stop.test.ts'), TEST(binary, args))
  const first = await runProject(project, { update: 'all' })
  expect(first.errors).toEqual([])
  const second = await runProject(project, { update: 'none', env: { POKE: '1' } })
  expect(second.states.stop).toBe('fail')
  return second.errors.join('\n')
}

describe('a golden taken after a time slice', () => {
  mkdirSync(join(project, 'node_modules'), { recursive: true })

  it('says in its mismatch that the schedule was not deterministic', async () => {
    const message = await mismatch(fixture('spin'), ['join'])
    expect(message).toMatch(/mismatched .*Note: this run switched threads \d+ times? at the end of a time slice/s)
  }, 60_000)

  it('says nothing of the kind for a run decided at deterministic points only', async () => {
    const message = await mismatch(fixture('counter'), ['3'])
    expect(message).toContain('mismatched')
    expect(message).not.toContain('time slice')
  }, 60_000)
})
