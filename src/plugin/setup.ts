// The setup file processSnapshots() adds to every test file: registers the matchers; ends the
// tracees a test left running (after the test, or after the file for test.concurrent); writes the
// goldens after the file, as Vitest writes its snapshots; then finds obsolete goldens (-u deletes
// them, CI fails the file; the reporter counts them in Vitest's summary).
import { unlinkSync } from 'node:fs'
import { FileError, GoldenError } from '../errors.js'
import { relative } from 'node:path'
import { afterAll, afterEach, beforeEach, expect, inject, type TestContext } from 'vitest'
import { onCrash, type Crash } from '../crash/capture.js'
import { formatCrashReport } from '../crash/report.js'
import { encodeSnapshot } from '../snapshot/format-file.js'
import {
  checkedKeys,
  deferGoldenWrites,
  flushGoldenWrites,
  goldenRoot,
  setGoldenDefaults,
  updateMode,
  type SnapshotStateLike,
} from '../golden/workflow.js'
import { checkGoldenDir } from '../golden/files.js'
import { obsoleteGoldens, type TestOutcome } from '../golden/obsolete.js'
import { processMatchers, processSerializer } from '../matchers/index.js'
import { killLiveTracees } from '../process/registry.js'
import { fromProvided, PROVIDED_KEY, type Provided } from './provided.js'

expect.extend(processMatchers)
expect.addSnapshotSerializer(processSerializer)
deferGoldenWrites()
setGoldenDefaults(fromProvided((inject as (key: string) => unknown)(PROVIDED_KEY) as Provided | undefined))

// A crash caught by launch's { crash: 'snapshot' } while a test runs is attached to it with Vitest's
// annotations: the report as text and the snapshot file, which Vitest's reporters show (the default
// one when the test fails, the HTML one always) and keep with the run's attachments. It is attached
// when caught: Vitest takes no annotation once a test has failed. A test.concurrent one shares the
// thread with its neighbours, so which test a crash belongs to is not known: none is attached.
let running: TestContext | undefined
beforeEach((context) => {
  running = context.task.concurrent ? undefined : context
})
afterEach(() => {
  running = undefined
})
onCrash((crash) => {
  if (running) attachCrash(running, crash)
})

/** Both annotations are asked for at once, while the test still runs (Vitest awaits them before it ends). */
function attachCrash(context: TestContext, crash: Crash): void {
  void context.annotate(`crash: ${crash.report.cause}`, 'warning', {
    body: formatCrashReport(crash.report),
    contentType: 'text/plain',
  })
  // The snapshot file's bytes, which Vitest writes into its attachments folder: procsnap show reads it.
  void context.annotate(`crash snapshot crash-${crash.report.signature}.procsnap`, 'notice', {
    body: encodeSnapshot(crash.snapshot.data).toString('base64'),
    bodyEncoding: 'base64',
    contentType: 'application/octet-stream',
  })
}

// A test.concurrent test's tracees may not be ended when it finishes: its neighbours run on, and
// theirs are indistinguishable. Those are ended after the file; a sequential test never overlaps one.
afterEach(async ({ task }) => {
  if (!task.concurrent) await killLiveTracees()
})

interface TaskLike {
  readonly type: string
  readonly mode: string
  readonly fullTestName?: string
  readonly name: string
  readonly result?: { readonly state?: string }
  readonly tasks?: readonly TaskLike[]
  readonly filepath?: string
}

function testsOf(task: TaskLike): TaskLike[] {
  return task.type === 'test' ? [task] : (task.tasks ?? []).flatMap(testsOf)
}

// Vitest passes the hook's fixtures first (an object pattern is required there) and the file second.
afterAll(async ({}, suite) => {
  await killLiveTracees()
  flushGoldenWrites()
  const file = suite as unknown as TaskLike
  const testFile = file.filepath
  if (!testFile) return
  const tests = testsOf(file)
  const outcomes: TestOutcome[] = tests.map((t) => ({
    name: t.fullTestName ?? t.name,
    passed: t.mode === 'run' && t.result?.state === 'pass',
  }))
  const complete = tests.length > 0 && outcomes.every((t) => t.passed)
  // A golden folder linked out of the project, or not a folder, failed its tests: nothing there is ours to list or delete.
  if (!goldenDirAllowed(testFile)) return
  const obsolete = obsoleteGoldens(testFile, checkedKeys.get(testFile) ?? new Set(), outcomes, complete)
  if (obsolete.length === 0) return
  const mode = updateMode((expect.getState() as unknown as { snapshotState?: SnapshotStateLike }).snapshotState)
  const list = obsolete.map((o) => `  ${relative(process.cwd(), o.path)}`).join('\n')
  // For the plugin's reporter, which counts them in Vitest's summary line (obsolete, or files removed).
  ;(file as unknown as { meta: Record<string, unknown> }).meta.procsnap = {
    obsolete,
    removed: mode === 'all',
  }
  if (mode === 'all') {
    for (const { path } of obsolete) removeGolden(path)
  } else if (mode === 'none') {
    throw new GoldenError(
      'ERR_GOLDEN_OBSOLETE',
      obsolete[0]?.path ?? testFile,
      undefined,
      `${obsolete.length} obsolete process snapshot${obsolete.length === 1 ? '' : 's'} (no test ` +
        `takes them any more):\n${list}\nRun vitest -u to remove them, and commit the removal.`,
    )
  }
})

function goldenDirAllowed(testFile: string): boolean {
  try {
    checkGoldenDir(testFile, goldenRoot())
    return true
  } catch (error) {
    if (error instanceof GoldenError || error instanceof FileError) return false
    throw error
  }
}

/** Deletes an obsolete golden; one gone or replaced by a directory since the check is left as it is. */
function removeGolden(path: string): void {
  try {
    unlinkSync(path)
  } catch (error) {
    if (!['ENOENT', 'EISDIR', 'EPERM'].includes((error as NodeJS.ErrnoException).code ?? '')) throw error
  }
}
