/// <reference types="vitest/config" />
// procsnap/plugin: processSnapshots() for vitest.config's plugins. Through Vitest's configureVitest
// hook it adds the setup file that registers the matchers, ends leftover tracees after each test
// and handles obsolete goldens, and a reporter that counts those in Vitest's summary: nothing else
// for the user to wire.
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { Vite, VitestPluginContext } from 'vitest/node'
// The matchers' types on expect(), for projects that only name the plugin: an export, because a
// type-only import that names nothing is dropped from the emitted .d.ts (and the types with it).
export type { ExpectedMemory, ProcessMatchers, ProcessSnapshotOptions } from '../matchers/index.js'
import type { ProjectModules } from '../golden/project.js'
import { MODULES_OPTION } from '../matchers/snapshot-matcher.js'
import { checkOptions } from '../options.js'
import { ProcessSnapshotReporter } from './reporter.js'
import { PROVIDED_KEY, toProvided } from './provided.js'

export interface ProcessSnapshotsOptions {
  /** Default of toMatchProcessSnapshot's `modules`: the libraries every golden shows in full. */
  readonly modules?: ProjectModules
}

/** The setup file next to this module: setup.js once built, setup.ts when run from the sources. */
function setupFile(): string {
  const built = fileURLToPath(new URL('./setup.js', import.meta.url))
  return existsSync(built) ? built : fileURLToPath(new URL('./setup.ts', import.meta.url))
}

/** The Vitest plugin. Unknown options are refused (ERR_BAD_OPTION) rather than silently ignored. */
export function processSnapshots(options: ProcessSnapshotsOptions = {}): Vite.Plugin {
  checkOptions('processSnapshots', options, { modules: MODULES_OPTION })
  return {
    name: 'procsnap',
    configureVitest({ project, vitest }: VitestPluginContext): void {
      const setup = setupFile()
      if (!project.config.setupFiles.includes(setup)) project.config.setupFiles.push(setup)
      // The project root decides which libraries are the project's; the workers learn it from here.
      const provide = project.provide as (key: string, value: unknown) => void
      provide(PROVIDED_KEY, toProvided(project.config.root, options.modules))
      // Reporters are created from the config right after this hook; one per Vitest instance.
      const reporters = vitest.config.reporters as unknown[]
      if (!reporters.some((r) => r instanceof ProcessSnapshotReporter))
        reporters.push(new ProcessSnapshotReporter(vitest))
    },
  }
}
