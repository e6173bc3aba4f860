// Runs a throwaway Vitest project in-process (createVitest), with 'procsnap' resolved to src/: the
// end-to-end tests of the matchers, the goldens and the plugin share it.
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { TestError } from '@vitest/utils'
import { createVitest } from 'vitest/node'
import { processSnapshots, type ProcessSnapshotsOptions } from '../src/plugin/index.js'

const SRC = fileURLToPath(new URL('../src/', import.meta.url))
/** .ts under Vitest; .js once compiled (npm run stress runs build/test/...). */
const EXT = existsSync(`${SRC}index.ts`) ? 'ts' : 'js'

export interface ProjectOptions {
  /** Always explicit: this suite itself runs with CI=true in CI, where an unset mode means 'none'. */
  readonly update: 'new' | 'all' | 'none'
  /** Add processSnapshots() (default true); without it the project's tests call expect.extend. */
  readonly plugin?: boolean
  /** processSnapshots(pluginOptions). */
  readonly pluginOptions?: ProcessSnapshotsOptions
  readonly pool?: 'forks' | 'threads'
  /** Vitest's -t. */
  readonly testNamePattern?: string
  /** Vitest's --shard, '1/2'. */
  readonly shard?: string
  /** Also write Vitest's blob report to this file (--reporter=blob), for a later merge. */
  readonly blob?: string
  /** Run nothing: merge the blob reports of this directory (--merge-reports). */
  readonly mergeReports?: string
  /** Set for the run (the project's workers inherit them), removed after. */
  readonly env?: Readonly<Record<string, string>>
}

export interface ProjectRun {
  /** Test name -> 'pass' | 'fail' | undefined (never ran), for tests at most one describe deep. */
  readonly states: Record<string, string | undefined>
  /** Errors of the files (a failing afterAll), then of the tests. */
  readonly errors: string[]
  /** The same errors' name and `code` ('GoldenError ERR_GOLDEN_CORRUPT'; 'AssertionError' for a failed matcher). */
  readonly errorKinds: string[]
  /** Per test (at most one describe deep): its errors' name and code, as errorKinds. */
  readonly failures: Record<string, string[]>
  /** Errors no test caught (unhandled rejections), which Vitest reports apart and which fail the run. */
  readonly unhandled: string[]
  /** Every file passed. */
  readonly passed: boolean
  /** What the tests wrote with console.log/console.warn, in order. */
  readonly logs: string[]
  /** Per test (at most one describe deep): its annotations (context.annotate), message, type and attachment. */
  readonly annotations: Record<
    string,
    {
      message: string
      type: string
      attachment?: { path?: string; body?: unknown; bodyEncoding?: string; contentType?: string }
    }[]
  >
  readonly summary: {
    added: number
    matched: number
    unmatched: number
    updated: number
    unchecked: number
    filesRemoved: number
    obsoleteKeys: string[]
  }
}

export async function runProject(root: string, options: ProjectOptions): Promise<ProjectRun> {
  const env = options.env ?? {}
  Object.assign(process.env, env)
  // Vitest sets process.exitCode when the project's tests fail: those failures are the caller's
  // results, not this process's (`npm run stress -- goldens` exited 1 with no failure of its own).
  const exitCode = process.exitCode
  const logs: string[] = []
  const vitest = await createVitest(
    'test',
    {
      root,
      config: false,
      watch: false,
      reporters: [
        { onUserConsoleLog: (log: { content: string }) => void logs.push(log.content) },
        ...(options.blob ? [['blob', { outputFile: options.blob }] as ['blob', { outputFile: string }]] : []),
      ],
      update: options.update,
      include: ['*.test.ts'],
      ...(options.pool ? { pool: options.pool } : {}),
      ...(options.testNamePattern ? { testNamePattern: options.testNamePattern } : {}),
      ...(options.shard ? { shard: options.shard } : {}),
      ...(options.mergeReports ? { mergeReports: options.mergeReports } : {}),
    },
    {
      plugins: options.plugin === false ? [] : [processSnapshots(options.pluginOptions)],
      resolve: { alias: { 'procsnap/matchers': `${SRC}matchers/index.${EXT}`, procsnap: `${SRC}index.${EXT}` } },
    },
  )
  try {
    if (options.mergeReports) await vitest.mergeReports()
    else await vitest.start()
    const states: Record<string, string | undefined> = {}
    const failures: Record<string, string[]> = {}
    const annotations: ProjectRun['annotations'] = {}
    const fileErrors: TestError[] = []
    const testErrors: TestError[] = []
    for (const file of vitest.state.getFiles()) {
      fileErrors.push(...(file.result?.errors ?? []))
      for (const task of file.tasks.flatMap((t) => ('tasks' in t ? t.tasks : [t]))) {
        states[task.name] = task.result?.state
        testErrors.push(...(task.result?.errors ?? []))
        failures[task.name] = (task.result?.errors ?? []).map(kindOf)
        annotations[task.name] = [...((task as { annotations?: ProjectRun['annotations'][string] }).annotations ?? [])]
      }
    }
    const errors = [...fileErrors, ...testErrors]
    const s = vitest.snapshot.summary
    return {
      states,
      errors: errors.map((e) => e.message),
      errorKinds: errors.map(kindOf),
      failures,
      unhandled: vitest.state
        .getUnhandledErrors()
        .map((e) => `${(e as { name?: string }).name ?? 'Error'}: ${(e as { message?: string }).message ?? ''}`),
      passed: vitest.state.getFiles().every((f) => f.result?.state === 'pass'),
      logs,
      annotations,
      summary: {
        added: s.added,
        matched: s.matched,
        unmatched: s.unmatched,
        updated: s.updated,
        unchecked: s.unchecked,
        filesRemoved: s.filesRemoved,
        obsoleteKeys: s.uncheckedKeysByFile.flatMap((f) => f.keys),
      },
    }
  } finally {
    await vitest.close()
    for (const key of Object.keys(env)) Reflect.deleteProperty(process.env, key)
    process.exitCode = exitCode
  }
}

/** 'GoldenError ERR_GOLDEN_CORRUPT', or the name alone of an error without a code ('AssertionError'). */
function kindOf(error: TestError): string {
  const code = (error as { code?: unknown }).code
  const name = error.name ?? 'Error'
  return typeof code === 'string' ? `${name} ${code}` : name
}
