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
import { checkOptions } from '../options.js'
import { ProcessSnapshotReporter } from './reporter.js'

/** The setup file next to this module: setup.js once built, setup.ts when run from the sources. */
function setupFile(): string {
  const built = fileURLToPath(new URL('./setup.js', import.meta.url))
  return existsSync(built) ? built : fileURLToPath(new URL('./setup.ts', import.meta.url))
}

/**
 * The Vitest plugin. It takes no options yet: anything passed is refused (ERR_BAD_OPTION) rather than
 * silently ignored.
 */
export function processSnapshots(options?: Readonly<Record<string, never>>): Vite.Plugin {
  checkOptions('processSnapshots', options, {})
  return {
    name: 'procsnap',
    configureVitest({ project, vitest }: VitestPluginContext): void {
      const setup = setupFile()
      if (!project.config.setupFiles.includes(setup)) project.config.setupFiles.push(setup)
      // Reporters are created from the config right after this hook; one per Vitest instance.
      const reporters = vitest.config.reporters as unknown[]
      if (!reporters.some((r) => r instanceof ProcessSnapshotReporter))
        reporters.push(new ProcessSnapshotReporter(vitest))
    },
  }
}
