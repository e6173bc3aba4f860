// Goldens are deterministic where users run them: 20 launches of the same stop write 20 goldens
// with one body, byte for byte, and the next run matches them all; with ASLR off and on, in the
// forks and the threads pools.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { fixture } from '../helpers.js'
import { runProject } from '../vitest-project.js'

const roots: string[] = []
afterAll(() => roots.forEach((r) => rmSync(r, { recursive: true, force: true })))

const TEST = (aslr: boolean): string => `import { expect, test } from 'vitest'
import { launch } from 'procsnap'

test.each(Array.from({ length: 20 }, (_, i) => i))('run %i', async () => {
  const proc = await launch(${JSON.stringify(fixture('counter'))}, { args: ['3'], aslr: ${aslr} })
  proc.breakAt('bump')
  await proc.cont()
  await proc.cont()
  expect(proc).toMatchProcessSnapshot()
  await proc.kill()
})
`

async function run(
  root: string,
  pool: 'forks' | 'threads',
): Promise<{ passed: boolean; added: number; matched: number }> {
  const { passed, summary } = await runProject(root, { update: 'new', pool })
  return { passed, added: summary.added, matched: summary.matched }
}

describe('golden determinism', () => {
  for (const pool of ['forks', 'threads'] as const) {
    for (const aslr of [false, true]) {
      it(`20 runs, one body, matched again (${pool}, ASLR ${aslr ? 'on' : 'off'})`, async () => {
        const root = mkdtempSync(join(tmpdir(), 'procsnap-determinism-'))
        roots.push(root)
        writeFileSync(join(root, 'stop.test.ts'), TEST(aslr))
        expect(await run(root, pool)).toEqual({ passed: true, added: 20, matched: 0 })
        const dir = join(root, '__process_snapshots__', 'stop.test.ts')
        const bodies = new Set(
          readdirSync(dir).map((f) => readFileSync(join(dir, f), 'utf8').split('\n').slice(3).join('\n')),
        )
        expect(bodies.size).toBe(1)
        expect(await run(root, pool)).toEqual({ passed: true, added: 0, matched: 20 })
      }, 60_000)
    }
  }
})
