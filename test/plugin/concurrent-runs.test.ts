// Two Vitest runs at once, each rewriting the same golden with -u from a process in another state:
// the golden is always one run's whole text, never a mix or a torn file, and no temporary file is
// left beside it (issue 11 keeps this tested; writes go through src/files/write.ts).
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { execa } from 'execa'
import { afterAll, expect, it } from 'vitest'
import { parseGolden } from '../../src/golden/parse.js'
import { fixture } from '../helpers.js'

const REPO = fileURLToPath(new URL('../../', import.meta.url))
const project = mkdtempSync(join(tmpdir(), 'procsnap-runs-'))
afterAll(() => rmSync(project, { recursive: true, force: true }))
const GOLDENS = join(project, '__process_snapshots__', 'counter.test.ts')

const CONFIG = `import { defineConfig } from 'vitest/config'
import { processSnapshots } from ${JSON.stringify(join(REPO, 'src/plugin/index.ts'))}
export default defineConfig({
  plugins: [processSnapshots()],
  resolve: { alias: { procsnap: ${JSON.stringify(join(REPO, 'src/index.ts'))} } },
  test: { include: ['*.test.ts'] },
})
`

// Many goldens per run, so that the two runs' writes interleave.
const TEST = `import { expect, test } from 'vitest'
import { launch } from 'procsnap'

for (let i = 0; i < 6; i++) {
  test(\`bump \${i}\`, async () => {
    const proc = await launch(${JSON.stringify(fixture('counter'))}, { args: ['3'] })
    proc.breakAt('bump')
    await proc.cont()
    proc.writeMemory('g_counter', Uint8Array.of(Number(process.env.POKE), 0, 0, 0))
    expect(proc).toMatchProcessSnapshot()
    await proc.kill()
  })
}
`

async function update(poke: number): Promise<void> {
  const env: Record<string, string | undefined> = { ...process.env, POKE: String(poke), CI: '', NO_COLOR: '1' }
  for (const name of ['VITEST', 'VITEST_WORKER_ID', 'VITEST_POOL_ID', 'NODE_OPTIONS', 'FORCE_COLOR']) delete env[name]
  const run = await execa(
    process.execPath,
    [join(REPO, 'node_modules/vitest/vitest.mjs'), 'run', '-u', '--root', project],
    {
      cwd: project,
      env,
      extendEnv: false,
      reject: false,
      all: true,
    },
  )
  expect(run.exitCode, run.all).toBe(0)
}

function goldens(): Record<string, string> {
  return Object.fromEntries(readdirSync(GOLDENS).map((n) => [n, readFileSync(join(GOLDENS, n), 'utf8')]))
}

it('two runs rewriting the same goldens at once leave whole goldens of one run or the other', async () => {
  mkdirSync(join(project, 'node_modules'))
  for (const entry of readdirSync(join(REPO, 'node_modules')))
    if (!entry.startsWith('.')) symlinkSync(join(REPO, 'node_modules', entry), join(project, 'node_modules', entry))
  writeFileSync(join(project, 'package.json'), '{ "type": "module", "private": true }\n')
  writeFileSync(join(project, 'vitest.config.ts'), CONFIG)
  writeFileSync(join(project, 'counter.test.ts'), TEST)
  await update(1)
  const one = goldens()
  await update(2)
  const two = goldens()
  expect(Object.keys(one)).toHaveLength(6)
  for (let round = 0; round < 2; round++) {
    await Promise.all([update(1), update(2)])
    const after = goldens()
    expect(Object.keys(after).sort()).toEqual(Object.keys(one).sort()) // no temporary file left
    for (const [name, text] of Object.entries(after)) {
      expect([one[name], two[name]]).toContain(text)
      expect(parseGolden(text, name).key).toMatch(/^bump \d 1$/)
    }
  }
}, 240_000)
