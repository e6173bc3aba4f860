// Throwaway Vitest projects run as a real `vitest` child process (so that its main process and its
// workers can be SIGKILLed), with 'procsnap' resolved to this repository's src/, as test/e2e does.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync, mkdtempSync, readdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { allProcesses, killProcs, ROOT, type ProcInfo } from './procs.js'

const VITEST = join(ROOT, 'node_modules', 'vitest', 'vitest.mjs')

export interface ProjectConfig {
  readonly pool: 'forks' | 'threads'
  /** processSnapshots() in the config, whose cleanup kills the tracees a test leaves. */
  readonly plugin: boolean
  readonly testTimeout?: number
}

function configSource(config: ProjectConfig): string {
  const plugin = join(ROOT, 'src/plugin/index.ts')
  return [
    "import { defineConfig } from 'vitest/config'",
    ...(config.plugin ? [`import { processSnapshots } from ${JSON.stringify(plugin)}`] : []),
    'export default defineConfig({',
    ...(config.plugin ? ['  plugins: [processSnapshots()],'] : []),
    `  resolve: { alias: { procsnap: ${JSON.stringify(join(ROOT, 'src/index.ts'))} } },`,
    `  test: { include: ['*.test.ts'], pool: '${config.pool}', testTimeout: ${config.testTimeout ?? 60_000}, maxConcurrency: 16 },`,
    '})',
    '',
  ].join('\n')
}

/** A project in a new temporary directory holding `test.test.ts`; remove it with removeProject. */
export function writeProject(config: ProjectConfig, testSource: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'procsnap-stress-'))
  // A node_modules of its own whose packages link to ours: Vite writes its temp files there.
  mkdirSync(join(dir, 'node_modules'))
  for (const entry of readdirSync(join(ROOT, 'node_modules')))
    if (!entry.startsWith('.')) symlinkSync(join(ROOT, 'node_modules', entry), join(dir, 'node_modules', entry))
  writeFileSync(join(dir, 'package.json'), '{ "type": "module", "private": true }\n')
  writeFileSync(join(dir, 'vitest.config.ts'), configSource(config))
  writeFileSync(join(dir, 'test.test.ts'), testSource)
  return dir
}

export function removeProject(dir: string): void {
  rmSync(dir, { recursive: true, force: true })
}

/** `vitest run` in `dir`, in a process group of its own (so that the whole run can be killed). */
export function startVitest(dir: string): ChildProcess {
  return spawn(process.execPath, [VITEST, 'run', '--reporter', 'dot'], {
    cwd: dir,
    detached: true,
    stdio: 'ignore',
    env: { ...process.env, CI: 'true', NO_COLOR: '1' },
  })
}

/** Resolves with the milliseconds until `child` exits, or undefined if it still runs after `ms`. */
export async function exitWithin(child: ChildProcess, ms: number): Promise<number | undefined> {
  const t0 = performance.now()
  if (child.exitCode !== null || child.signalCode !== null) return 0
  const exited = new Promise<number>((resolve) => child.once('exit', () => resolve(performance.now() - t0)))
  return Promise.race([exited, sleep(ms).then(() => undefined)])
}

/** Processes whose working directory is `dir`: Vitest's main process and its fork workers. */
export function processesIn(dir: string): ProcInfo[] {
  return allProcesses().filter((p) => {
    try {
      return readlinkSync(`/proc/${p.pid}/cwd`) === dir
    } catch {
      return false
    }
  })
}

/** Kills the Vitest run in `dir` (main process, workers, whatever else runs there) and waits for it. */
export async function killVitest(child: ChildProcess, dir: string): Promise<void> {
  try {
    if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL')
  } catch {
    // the group is gone
  }
  killProcs(processesIn(dir).filter((p) => p.state !== 'Z'))
  await exitWithin(child, 5000)
}
