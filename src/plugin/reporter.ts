// The plugin's reporter: obsolete goldens, found by the setup file after each test file, counted
// in Vitest's own summary line ('1 obsolete', or '1 file removed' with -u) and listed as Vitest
// lists its obsolete snapshots.
import { relative } from 'node:path'
import type { Reporter, TestModule, Vitest } from 'vitest/node'
import { reapOrphans } from '../process/orphans.js'

interface ObsoleteMeta {
  readonly obsolete: ReadonlyArray<{ readonly path: string; readonly key: string }>
  readonly removed: boolean
}

export class ProcessSnapshotReporter implements Reporter {
  private readonly vitest: Vitest

  constructor(vitest: Vitest) {
    this.vitest = vitest
  }

  onTestModuleEnd(testModule: TestModule): void {
    // The threads pool's workers are threads of this process: reap what a terminated one left.
    reapOrphans()
    const info = (testModule.meta() as { procsnap?: ObsoleteMeta }).procsnap
    if (!info || info.obsolete.length === 0) return
    const summary = this.vitest.snapshot.summary
    if (info.removed) {
      summary.filesRemoved += info.obsolete.length
      for (const o of info.obsolete) summary.filesRemovedList.push(o.path) // not push(...): no bound on the count
      return
    }
    summary.unchecked += info.obsolete.length
    summary.uncheckedKeysByFile.push({
      filePath: testModule.moduleId,
      keys: info.obsolete.map((o) => `${o.key} (${relative(this.vitest.config.root, o.path)})`),
    })
  }
}
