// The library compiled to plain JavaScript in a temp dir, for tests that run it in a child node
// process (a tracer that crashes, a tracer under seccomp): no tsx, no Vitest in the child.
import { execFileSync, spawnSync, type SpawnSyncReturns } from 'node:child_process'
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll } from 'vitest'

export const ROOT = fileURLToPath(new URL('..', import.meta.url))

export interface Dist {
  /** Directory holding index.js and the rest of the build. */
  dir: string
  /** Writes an ES module script (its text) next to index.js and returns its path. */
  write(script: string): string
  /** Runs an ES module script (its text) in a child node (after `prefix`, with `node` flags); the script imports `./index.js`. */
  run(
    script: string,
    options?: { prefix?: readonly string[]; node?: readonly string[]; timeout?: number },
  ): SpawnSyncReturns<string>
  remove(): void
}

/** Compiles src/ with tsconfig.build.json into a fresh temp dir whose node_modules is the repo's. */
export function buildDist(): Dist {
  const dir = mkdtempSync(join(tmpdir(), 'procsnap-dist-'))
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')
  execFileSync(
    process.execPath,
    [tsc, '-p', join(ROOT, 'tsconfig.build.json'), '--outDir', dir, '--sourceMap', 'false', '--declaration', 'false'],
    {
      cwd: ROOT,
      stdio: 'pipe',
    },
  )
  writeFileSync(join(dir, 'package.json'), '{"type":"module"}\n')
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'))
  let scripts = 0
  const write = (script: string): string => {
    const file = join(dir, `script-${++scripts}.js`)
    writeFileSync(file, script)
    return file
  }
  return {
    dir,
    write,
    run(script, options = {}) {
      const file = write(script)
      const [command = process.execPath, ...rest] = [
        ...(options.prefix ?? []),
        process.execPath,
        ...(options.node ?? []),
        file,
      ]
      return spawnSync(command, rest, { cwd: dir, encoding: 'utf8', timeout: options.timeout ?? 30_000 })
    },
    remove() {
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** Builds the dist once for the enclosing describe block and removes it after; call the result inside tests. */
export function useDist(): () => Dist {
  let dist: Dist | undefined
  beforeAll(() => {
    dist = buildDist()
  }, 60_000)
  afterAll(() => {
    dist?.remove()
  })
  return () => {
    if (!dist) throw new Error('the dist is built in beforeAll')
    return dist
  }
}
