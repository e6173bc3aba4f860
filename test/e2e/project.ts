// A throwaway project holding the end-to-end golden suite (programs.test.ts, below), run by a real
// `vitest` child process so that it can run as another user, from another path, with another env.
import { cpSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { execa } from 'execa'

const REPO = fileURLToPath(new URL('../../', import.meta.url))
const VITEST = join(REPO, 'node_modules', 'vitest', 'vitest.mjs')

/** The programs and their stops: each test takes one golden with the default options. */
export const PROGRAMS_TEST = (threads: string): string => `import { expect, test } from 'vitest'
import { launch, type LaunchOptions } from 'procsnap'

// The 'hwcaps' condition hides AVX-512 and AVX2 from glibc's ifunc resolvers with a tunable of the
// same length as the default, so that only the CPU features the program sees differ.
const TUNABLES_DEFAULT = 'glibc.pthread.rseq=0:glibc.cpu.hwcaps=-XXXXXXX,-XXXXXXXX,-XXXX'
const TUNABLES_MASKED = 'glibc.pthread.rseq=0:glibc.cpu.hwcaps=-AVX512F,-AVX512VL,-AVX2'
const env = { GLIBC_TUNABLES: process.env.E2E_HWCAPS ? TUNABLES_MASKED : TUNABLES_DEFAULT }
const changed = process.env.E2E_CHANGE === '1'

async function atExit(file: string, options: LaunchOptions): Promise<void> {
  const proc = await launch(file, { ...options, env: { ...env, ...options.env } })
  await proc.runTo('libc.so.6!exit', { timeout: 30_000 })
  expect(proc).toMatchProcessSnapshot()
  await proc.kill()
}

test('sort', () => atExit('sort', { args: changed ? ['-r'] : [], stdin: 'pear\\napple\\nfig\\n' }))
test('cat', () => atExit('cat', { stdin: 'one\\ntwo\\n' }))
test('gzip', () => atExit('gzip', { args: ['-c'], stdin: 'hello hello hello\\n' }))
test('bash -c', () => atExit('bash', { args: ['-c', 'x=$((6*7)); echo "$x $HOSTNAME $PWD"; date'] }))
test('date', () => atExit('date', {}))
test('python3 -c', () => atExit('/usr/bin/python3', { args: ['-c', 'import os, time; print(sum(range(10)), time.time() > 0, os.getcwd())'] }))
test('node -e', () => atExit(process.execPath, { args: ['-e', 'console.log(6 * 7)'] }))
test('threads at a worker\\'s first call', async () => {
  const proc = await launch(${JSON.stringify(threads)}, { args: ['3', '20'], env })
  await proc.runTo('thread_started')
  expect(proc).toMatchProcessSnapshot()
  await proc.kill()
})
test('threads after the joins', () => atExit(${JSON.stringify(threads)}, { args: ['3', '20'] }))
`

const CONFIG = `import { defineConfig } from 'vitest/config'
import { processSnapshots } from ${JSON.stringify(join(REPO, 'src/plugin/index.ts'))}
export default defineConfig({
  plugins: [processSnapshots()],
  resolve: { alias: { procsnap: ${JSON.stringify(join(REPO, 'src/index.ts'))} } },
  test: { include: ['*.test.ts'], testTimeout: 120_000, hookTimeout: 120_000 },
})
`

/** Writes the project at `root`, with the threads fixture copied in (so a copy of the project carries it). */
export function writeProject(root: string): void {
  mkdirSync(join(root, 'bin'), { recursive: true })
  cpSync(join(REPO, 'fixtures/c/bin/threads'), join(root, 'bin/threads'))
  // A node_modules of its own, whose packages link to ours: Vite writes its temp files there, which
  // must be writable by whoever runs the suite.
  mkdirSync(join(root, 'node_modules'))
  for (const entry of readdirSync(join(REPO, 'node_modules')))
    if (!entry.startsWith('.')) symlinkSync(join(REPO, 'node_modules', entry), join(root, 'node_modules', entry))
  writeFileSync(join(root, 'package.json'), '{ "type": "module", "private": true }\n')
  writeFileSync(join(root, 'vitest.config.ts'), CONFIG)
  writeFileSync(join(root, 'programs.test.ts'), PROGRAMS_TEST('bin/threads'))
}

export interface SuiteRun {
  readonly ok: boolean
  readonly output: string
}

export interface SuiteConditions {
  /** Run as this user and group (through setpriv, with no supplementary groups). */
  readonly uid?: number
  /** Added to the runner's environment. */
  readonly env?: Readonly<Record<string, string>>
  /** CI mode: a missing golden fails instead of being written. */
  readonly ci: boolean
}

/** Runs the project's suite in a `vitest run` child process; never throws for a failing suite. */
export async function runSuite(root: string, conditions: SuiteConditions): Promise<SuiteRun> {
  const base: Record<string, string | undefined> = { ...process.env, ...conditions.env }
  delete base.FORCE_COLOR
  delete base.VITEST
  delete base.VITEST_WORKER_ID
  delete base.VITEST_POOL_ID
  delete base.NODE_OPTIONS
  const env = { ...base, CI: conditions.ci ? 'true' : '', NO_COLOR: '1' }
  const args = [VITEST, 'run', '--root', root, ...(conditions.ci ? [] : ['--update=new'])]
  const command =
    conditions.uid === undefined
      ? { file: process.execPath, args }
      : {
          file: 'setpriv',
          args: [
            '--reuid',
            String(conditions.uid),
            '--regid',
            String(conditions.uid),
            '--clear-groups',
            process.execPath,
            ...args,
          ],
        }
  const result = await execa(command.file, command.args, {
    cwd: root,
    env,
    extendEnv: false,
    reject: false,
    all: true,
    timeout: 600_000,
  })
  return { ok: result.exitCode === 0, output: result.all ?? '' }
}
