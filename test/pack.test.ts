// The published package works: `npm pack` (which builds through prepack), install the tarball into
// a fresh project from the registry, import 'procsnap' from plain Node, and trace a real binary.
import { execFile } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ROOT } from './dist.js'
import { fixture } from './helpers.js'

const run = promisify(execFile)

const [nodeMajor = 0, nodeMinor = 0] = process.versions.node.split('.').map(Number)
/** Vitest 5 needs Node >= 22.12: its test runs in CI's Node 24 pass of the suite, and is skipped under Node 20. */
const canRunVitest5 = nodeMajor > 22 || (nodeMajor === 22 && nodeMinor >= 12)

/** This process's environment without npm's per-script variables (set when run through `npm test`). */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  // Nor Vitest's own variables: a Vitest started from here must not believe it runs inside a worker.
  const env = Object.fromEntries(
    Object.entries(process.env).filter(
      ([k]) => !k.toLowerCase().startsWith('npm_') && k !== 'VITEST' && !k.startsWith('VITEST_'),
    ),
  )
  return { ...env, ...extra }
}

/** The files of the README's "In Vitest" example: its code block, split at the `// file.ts` comments. */
function readmeVitestFiles(): Record<string, string> {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
  const section = readme.slice(readme.indexOf('## In Vitest'))
  const block = /```ts\n([\s\S]*?)```/.exec(section)?.[1] ?? ''
  const files: Record<string, string> = {}
  let current: string | undefined
  for (const line of block.split('\n')) {
    const name = /^\/\/ ([\w.-]+\.ts)$/.exec(line)?.[1]
    if (name) current = name
    else if (current) files[current] = `${files[current] ?? ''}${line}\n`
  }
  if (!files['vitest.config.ts'] || !files['counter.test.ts'])
    throw new Error("README's In Vitest section lost its vitest.config.ts / counter.test.ts example")
  return files
}

describe('npm pack', () => {
  let tmp = ''
  let tarball = ''
  let project = ''
  let packStarted = 0

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'procsnap-pack-'))
    packStarted = Date.now()
    const packed = await run('npm', ['pack', '--json', '--pack-destination', tmp], {
      cwd: ROOT,
      env: cleanEnv(),
      maxBuffer: 16 << 20,
    })
    const [info] = JSON.parse(packed.stdout) as Array<{ filename: string }>
    if (!info) throw new Error(`npm pack printed no result: ${packed.stdout}`)
    tarball = join(tmp, info.filename)
    project = join(tmp, 'consumer')
    mkdirSync(project)
    writeFileSync(
      join(project, 'package.json'),
      JSON.stringify({ name: 'procsnap-consumer', private: true, type: 'module' }),
    )
    await run('npm', ['install', '--no-audit', '--no-fund', tarball], {
      cwd: project,
      env: cleanEnv(),
      maxBuffer: 16 << 20,
    })
  }, 120_000)

  afterAll(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true })
  })

  it('packing builds first (prepack): dist/ was just rewritten', () => {
    expect(statSync(join(ROOT, 'dist/index.js')).mtimeMs).toBeGreaterThanOrEqual(packStarted - 5)
  })

  it('the tarball holds the build and its types, and no sources or tests', async () => {
    const { stdout } = await run('tar', ['-tzf', tarball])
    const files = stdout.trim().split('\n')
    expect(files).toContain('package/package.json')
    expect(files).toContain('package/dist/index.js')
    expect(files).toContain('package/dist/index.d.ts')
    expect(files).toContain('package/dist/process/launch.js')
    expect(files).toContain('package/dist/matchers/index.js')
    expect(files).toContain('package/dist/matchers/index.d.ts')
    expect(files).toContain('package/dist/plugin/index.js')
    expect(files).toContain('package/dist/plugin/setup.js')
    expect(files.filter((f) => /^package\/(src|test|fixtures|bench|demo)\//.test(f))).toEqual([])
    expect(files.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))).toEqual([])
  })

  it('installs with koffi from the registry and without vitest (an optional peer)', () => {
    expect(existsSync(join(project, 'node_modules/procsnap/dist/index.js'))).toBe(true)
    expect(existsSync(join(project, 'node_modules/koffi/package.json'))).toBe(true)
    expect(existsSync(join(project, 'node_modules/vitest'))).toBe(false)
  })

  it("`import { launch } from 'procsnap'` in plain Node traces counter to two breakpoints and its exit", async () => {
    writeFileSync(
      join(project, 'smoke.js'),
      `import { launch } from 'procsnap'
import { processMatchers } from 'procsnap/matchers'
if (typeof processMatchers.toHaveRegister !== 'function') throw new Error('procsnap/matchers has no toHaveRegister')
const proc = await launch(${JSON.stringify(fixture('counter'))}, { args: ['2'] })
const bp = proc.breakAt('bump')
const rdi = []
for (let i = 0; i < 2; i++) {
  const ev = await proc.cont()
  if (ev.kind !== 'breakpoint') throw new Error('expected a breakpoint, got ' + ev.kind)
  rdi.push(proc.regs.rdi.toString())
}
const end = await proc.cont()
console.log(JSON.stringify({ rdi, hits: bp.hits, end, exit: proc.exit, stdout: proc.stdout }))
`,
    )
    const { stdout } = await run(process.execPath, ['smoke.js'], { cwd: project, timeout: 30_000 })
    expect(JSON.parse(stdout)).toEqual({
      rdi: ['1', '2'],
      hits: 2,
      end: { kind: 'exited', exitCode: 0 },
      exit: { exitCode: 0 },
      stdout: 'bump 1 -> 1\nbump 2 -> 3\ntotal 4\n',
    })
  })

  it('`npx procsnap` runs the installed command line: --help, and a crash caught, signed and reported', async () => {
    // npm's variables stripped: under `npm exec --package=node@24` (CI's second pass) they would make
    // this npx run that package's bin instead of the project's
    const help = await run('npx', ['--no-install', 'procsnap', '--help'], {
      cwd: project,
      env: cleanEnv(),
      timeout: 30_000,
    })
    expect(help.stdout).toMatch(/^procsnap: snapshots of Linux processes/)
    // run exits with the program's status: 128 + SIGSEGV, as a shell reports it (execFile rejects: not 0)
    const crashed = await run(
      'npx',
      ['--no-install', 'procsnap', 'run', '-o', 'crash', '--', fixture('crashes'), 'write'],
      {
        cwd: project,
        env: cleanEnv(),
        timeout: 30_000,
      },
    ).then(
      () => ({ code: 0, stdout: '' }),
      (error: { code?: number; stdout?: string }) => ({ code: error.code, stdout: error.stdout ?? '' }),
    )
    expect(crashed.code).toBe(139)
    const id = /signature ([0-9a-f]{16})/.exec(crashed.stdout)?.[1] ?? ''
    const signed = await run('npx', ['--no-install', 'procsnap', 'signature', `crash/crash-${id}.procsnap`], {
      cwd: project,
      env: cleanEnv(),
      timeout: 30_000,
    })
    expect(signed.stdout).toBe(`${id}\n`)
  })

  it('its types resolve for a TypeScript consumer (NodeNext, strict)', async () => {
    writeFileSync(
      join(project, 'check.ts'),
      `import { launch, ProcsnapError, type Process, type StopEvent } from 'procsnap'
const proc: Process = await launch('/bin/true')
const event: StopEvent = await proc.cont()
const rdi: bigint = proc.regs.rdi
export const checked: [StopEvent, bigint, boolean] = [event, rdi, new Error() instanceof ProcsnapError]
`,
    )
    writeFileSync(
      join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          strict: true,
          target: 'es2022',
          module: 'nodenext',
          moduleResolution: 'nodenext',
          noEmit: true,
          typeRoots: [join(ROOT, 'node_modules/@types')],
          types: ['node'],
        },
        files: ['check.ts'],
      }),
    )
    const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')
    // tsc prints its diagnostics on stdout and exits non-zero: show them in the failure.
    const result = await run(process.execPath, [tsc, '-p', project], { cwd: project }).catch(
      (error: Error & { stdout?: string }) => ({
        stdout: error.stdout || error.message,
      }),
    )
    expect(result.stdout).toBe('')
  }, 60_000)

  // The README's Vitest setup, taken from the README itself, type-checks in a fresh project with the
  // TypeScript of this repository (5.9) and the registry's TypeScript 7: the matchers' types come with
  // the plugin alone, and with `types: ['procsnap/matchers']` for a tsconfig that leaves vitest.config.ts out.
  it("the README's Vitest setup type-checks under strict TypeScript 5.9 and 7", async () => {
    const readme = join(tmp, 'readme')
    mkdirSync(readme)
    writeFileSync(
      join(readme, 'package.json'),
      JSON.stringify({ name: 'procsnap-readme', private: true, type: 'module' }),
    )
    for (const [file, text] of Object.entries(readmeVitestFiles())) writeFileSync(join(readme, file), text)
    await run('npm', ['install', '--no-audit', '--no-fund', tarball, 'vitest@^4', '@types/node@^20', 'typescript@^7'], {
      cwd: readme,
      env: cleanEnv(),
      maxBuffer: 16 << 20,
    })
    const strict = { strict: true, target: 'es2022', module: 'nodenext', moduleResolution: 'nodenext', noEmit: true }
    writeFileSync(join(readme, 'tsconfig.json'), JSON.stringify({ compilerOptions: strict }))
    writeFileSync(
      join(readme, 'tsconfig.tests.json'),
      JSON.stringify({
        compilerOptions: { ...strict, types: ['node', 'procsnap/matchers'] },
        include: ['counter.test.ts'],
      }),
    )
    const tsc5 = createRequire(import.meta.url).resolve('typescript/bin/tsc')
    const tsc7 = join(readme, 'node_modules/typescript/bin/tsc')
    const check = async (tsc: string, args: string[]): Promise<string> =>
      run(process.execPath, [tsc, ...args], { cwd: readme }).then(
        (r) => r.stdout,
        (error: Error & { stdout?: string }) => error.stdout || error.message,
      )
    expect((await check(tsc7, ['--version'])).trim()).toMatch(/^Version 7\./)
    for (const tsc of [tsc5, tsc7]) {
      expect(await check(tsc, ['-p', 'tsconfig.json'])).toBe('')
      expect(await check(tsc, ['-p', 'tsconfig.tests.json'])).toBe('')
    }
    // The check can fail: a matcher that does not exist is an error.
    writeFileSync(
      join(readme, 'wrong.test.ts'),
      "import { expect } from 'vitest'\nexpect(1).toHaveRegisterz('rax', 1)\n",
    )
    expect(await check(tsc5, ['-p', 'tsconfig.json'])).toContain("Property 'toHaveRegisterz' does not exist")
  }, 240_000)

  // The plugin under Vitest 5, the peer range's newer major, installed from the registry next to the tarball.
  it.skipIf(!canRunVitest5)(
    'under Vitest 5, processSnapshots() writes the goldens, matches them in both pools, refuses to write in CI',
    async () => {
      const v5 = join(tmp, 'vitest5')
      mkdirSync(v5)
      writeFileSync(
        join(v5, 'package.json'),
        JSON.stringify({ name: 'procsnap-vitest5', private: true, type: 'module' }),
      )
      await run('npm', ['install', '--no-audit', '--no-fund', 'vitest@5', tarball], {
        cwd: v5,
        env: cleanEnv(),
        maxBuffer: 16 << 20,
      })
      writeFileSync(
        join(v5, 'vitest.config.ts'),
        "import { defineConfig } from 'vitest/config'\nimport { processSnapshots } from " +
          "'procsnap/plugin'\nexport default defineConfig({ plugins: [processSnapshots()] })\n",
      )
      writeFileSync(
        join(v5, 'counter.test.ts'),
        `import { expect, test } from 'vitest'
import { launch } from 'procsnap'
test('bump', async () => {
  const proc = await launch(${JSON.stringify(fixture('counter'))}, { args: ['3'] })
  proc.breakAt('bump')
  await proc.cont()
  expect(proc).toHaveRegister('edi', 1)
  expect(proc).toMatchProcessSnapshot()
})
`,
      )
      const vitest = async (
        args: string[],
        env: Record<string, string> = {},
      ): Promise<{ code: number; out: string }> => {
        try {
          const r = await run(process.execPath, ['node_modules/vitest/vitest.mjs', 'run', ...args], {
            cwd: v5,
            env: cleanEnv({ NO_COLOR: '1', ...env }),
            maxBuffer: 16 << 20,
          })
          return { code: 0, out: r.stdout + r.stderr }
        } catch (error) {
          const e = error as { code?: number; stdout?: string; stderr?: string }
          return { code: e.code ?? 1, out: (e.stdout ?? '') + (e.stderr ?? '') }
        }
      }
      const written = await vitest(['--update=new'])
      expect(written.out).toMatch(/RUN\s+v5\./)
      expect(written.out).toMatch(/Snapshots\s+1 written/)
      expect(written.code).toBe(0)
      expect(readdirSync(join(v5, '__process_snapshots__', 'counter.test.ts'))).toEqual(['bump-1.snap'])
      for (const pool of ['forks', 'threads']) expect((await vitest(['--update=none', `--pool=${pool}`])).code).toBe(0)
      rmSync(join(v5, '__process_snapshots__'), { recursive: true })
      const ci = await vitest([], { CI: 'true' })
      expect(ci.code).not.toBe(0)
      expect(ci.out).toContain('was not written')
    },
    240_000,
  )
})
