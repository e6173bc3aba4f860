// The golden workflow behind toMatchProcessSnapshot: compare a snapshot with its golden file in
// Vitest's snapshot workflow (write missing goldens locally, rewrite changed ones with -u, refuse to
// write in CI) and count into Vitest's own summary through the file's snapshot state.
import { unlinkSync } from 'node:fs'
import { basename, dirname, join, relative } from 'node:path'
import type { MatcherResult, MatcherState } from 'vitest'
import { FileError, GoldenError, ProcsnapError } from '../errors.js'
import type { Snapshot } from '../snapshot/snapshot.js'
import type { SnapshotLevel } from '../snapshot/model.js'
import { compareGolden, summarizeGolden } from './compare.js'
import { checkGoldenDir, goldenPath, headerKey, slugOf, MAX_GOLDEN_BYTES, readText, writeAtomically } from './files.js'
import { ownerOf } from './obsolete.js'
import { parseGolden } from './parse.js'
import type { ProjectModules } from './project.js'
import { largeGoldenNote } from './size.js'
import { applyRedactions, type Redactions } from './redact.js'
import { goldenSections, readableSections, renderGolden, type GoldenOptions, type GoldenSection } from './render.js'

export interface ProcessSnapshotOptions extends GoldenOptions {
  /** Names the snapshot: its key becomes '<test name> > <name> <n>'. */
  readonly name?: string
  /** Capture level when given a live process; default 'writable' (the executable's data needs it). */
  readonly level?: SnapshotLevel
  /** { 'regs.rbx': expect.any(BigInt), 'memory.g_seed': '<seed>' }: see redact.ts. */
  readonly redact?: Redactions
}

type UpdateMode = 'all' | 'new' | 'none'

/** What the plugin knows for every golden: Vitest's root and processSnapshots({ modules }). */
export interface GoldenDefaults {
  readonly root?: string
  readonly modules?: ProjectModules
}

let defaults: GoldenDefaults = {}

/** The project root: Vitest's, from the plugin; without it, the working directory. */
export function goldenRoot(): string {
  return defaults.root ?? process.cwd()
}

/** Called by the plugin's setup file with what processSnapshots() provided. */
export function setGoldenDefaults(value: GoldenDefaults): void {
  defaults = value
}

interface Counter {
  increment(key: string): void
}

/** The parts of Vitest's SnapshotState used here (counters are public; the update mode since 4.1.4). */
export interface SnapshotStateLike {
  readonly added: Counter
  readonly updated: Counter
  readonly matched: Counter
  readonly unmatched: Counter
  readonly snapshotUpdateState?: UpdateMode
  readonly _updateSnapshot?: UpdateMode
}

/** A test or suite of the running file, for the names of the file's tests. */
interface TaskTree {
  readonly type: string
  readonly name: string
  readonly fullTestName?: string
  readonly tasks?: readonly TaskTree[]
}

export interface TaskLike {
  readonly id: string
  readonly result?: { readonly retryCount?: number }
  /** The test file's task (Vitest's File): every test of the file, filtered or not. */
  readonly file?: TaskTree
}

export type Result = Exclude<MatcherResult, Promise<unknown>>

/**
 * With the plugin, goldens are written after their file, as Vitest writes its snapshots: a retried
 * test's earlier attempts leave nothing behind. Without it (expect.extend alone), at once.
 */
let deferred = false
const pending = new Map<string, { attempt: number; writes: Map<string, string> }>()

/** Called by the plugin's setup file. */
export function deferGoldenWrites(): void {
  deferred = true
}

/** Writes what the last attempt of every test asked for (the plugin's afterAll). */
export function flushGoldenWrites(): void {
  for (const { writes } of pending.values()) for (const [path, text] of writes) writeAtomically(path, text)
  pending.clear()
}

/**
 * What this file's run will write at `path` after it: a key that shares its slug with one written
 * earlier in the same run sees that golden, and takes the hash-suffixed name, as it would next run.
 */
function pendingText(path: string, task: TaskLike): string | undefined {
  const attempt = task.result?.retryCount ?? 0
  let text: string | undefined
  // An earlier attempt of a retried test leaves nothing behind: its writes are not seen.
  for (const [id, entry] of pending)
    if (id !== task.id || entry.attempt === attempt) text = entry.writes.get(path) ?? text
  return text
}

function writeGolden(task: TaskLike, path: string, text: string): void {
  if (!deferred) {
    writeAtomically(path, text)
    return
  }
  const attempt = task.result?.retryCount ?? 0
  let entry = pending.get(task.id)
  if (!entry || entry.attempt !== attempt) {
    entry = { attempt, writes: new Map() }
    pending.set(task.id, entry)
  }
  entry.writes.set(path, text)
}

/** A golden a local run found changed is written beside it with this suffix, for `procsnap review`. */
export const REVIEW_SUFFIX = '.new'

/** The golden matches (or was rewritten): a new one left for review by an earlier run is stale. */
function dropReview(path: string): void {
  try {
    unlinkSync(`${path}${REVIEW_SUFFIX}`)
  } catch {
    // none, or not ours to remove
  }
}

/** Calls per test (and retry) and name, for Vitest's 'name 1', 'name 2' keys. */
const callCounts = new Map<string, number>()
/** Keys checked in this worker, by test file: what the obsolete check compares the files against. */
export const checkedKeys = new Map<string, Set<string>>()

/** Vitest's update mode: 'all' with -u, 'none' in CI or with --update=none, else 'new'. */
export function updateMode(state: SnapshotStateLike | undefined): UpdateMode {
  return state?.snapshotUpdateState ?? state?._updateSnapshot ?? (process.env.CI ? 'none' : 'new')
}

/** Says on the test's stderr, when a golden is written, that it is too large to review and why. */
function warnIfLarge(key: string, shown: string, text: string, sections: readonly GoldenSection[]): void {
  const note = largeGoldenNote(key, shown, Buffer.byteLength(text), sections)
  if (note) console.warn(note)
}

/** What checkGolden needs of the running test: Vitest's matcher state, seen through its public parts. */
export interface GoldenContext {
  readonly matcherState: MatcherState
  readonly state: SnapshotStateLike
  readonly task: TaskLike
  readonly testFile: string
}

/** The running test's golden context, or undefined outside a Vitest test. */
export function goldenContext(matcherState: MatcherState): GoldenContext | undefined {
  const state = (matcherState as unknown as { snapshotState?: SnapshotStateLike }).snapshotState
  const task = (matcherState as unknown as { task?: TaskLike }).task
  const testFile = matcherState.testPath
  return state && task && testFile ? { matcherState, state, task, testFile } : undefined
}

/** The full names of every test of the running file, or undefined when Vitest does not say. */
function fileTests(task: TaskLike): { name: string }[] | undefined {
  if (!task.file) return undefined
  const names: string[] = []
  const walk = (t: TaskTree): void => {
    if (t.type === 'test') names.push(t.fullTestName ?? t.name)
    for (const c of t.tasks ?? []) walk(c)
  }
  walk(task.file)
  return names.map((name) => ({ name }))
}

/**
 * Compares a snapshot with its golden file: written when missing (not in CI), rewritten with -u.
 * A golden that cannot be read back (damaged, a header naming another key) or is too large throws
 * its ProcsnapError after being counted as unmatched; -u rewrites a damaged golden, never a FileError's.
 */
export function checkGolden(
  context: GoldenContext,
  source: Snapshot | (() => GoldenSection[]),
  options: ProcessSnapshotOptions,
  caveat?: string,
): Result {
  try {
    return checkGoldenFile(context, source, options, caveat)
  } catch (error) {
    if (error instanceof GoldenError || error instanceof FileError) context.state.unmatched.increment(context.task.id)
    throw error
  }
}

/** The key prefixed to a golden error's message, which names the file and the line. */
function withKey(error: ProcsnapError, key: string): ProcsnapError {
  const message = `Process snapshot \`${key}\`: ${error.message}`
  if (error instanceof GoldenError)
    return new GoldenError(error.code as ConstructorParameters<typeof GoldenError>[0], error.path, error.line, message)
  if (error instanceof FileError)
    return new FileError(error.code as ConstructorParameters<typeof FileError>[0], error.path, message)
  return error
}

function checkGoldenFile(
  context: GoldenContext,
  source: Snapshot | (() => GoldenSection[]),
  options: ProcessSnapshotOptions,
  caveat?: string,
): Result {
  const { matcherState, state, task, testFile } = context
  const testName = [matcherState.currentTestName ?? '', ...(options.name !== undefined ? [options.name] : [])].join(
    ' > ',
  )
  const countKey = `${task.id}:${task.result?.retryCount ?? 0}:${testName}`
  const count = (callCounts.get(countKey) ?? 0) + 1
  callCounts.set(countKey, count)
  const key = `${testName} ${count}`
  const keys = checkedKeys.get(testFile) ?? new Set<string>()
  keys.add(key)
  checkedKeys.set(testFile, keys)

  const modules = options.modules ?? defaults.modules
  const settings = {
    ...options,
    ...(modules !== undefined ? { modules } : {}),
    ...(defaults.root !== undefined ? { root: defaults.root } : {}),
  }
  // A snapshot's golden view, or sections made elsewhere (a crash report's: toMatchCrashReport).
  const snap = typeof source === 'function' ? undefined : source
  const raw = snap
    ? goldenSections(snap.data, snap.modules(), settings, {
        resolve: (l) => snap.memory.resolve(l),
        read: (a, n) => snap.memory.read(a, n),
      })
    : (source as () => GoldenSection[])()
  const { sections, failures } =
    options.redact && snap ? applyRedactions(matcherState, raw, snap, options.redact) : { sections: raw, failures: [] }
  if (failures.length) {
    state.unmatched.increment(task.id)
    return { pass: false, message: () => `Process snapshot \`${key}\`: ${failures.join('; ')}` }
  }
  checkGoldenDir(testFile, goldenRoot())
  // goldenPath reads the file its slug names; that is usually the golden itself: read it once.
  const texts = new Map<string, string | undefined>()
  const read = (p: string): string | undefined => {
    if (!texts.has(p)) {
      try {
        texts.set(p, pendingText(p, task) ?? readText(p))
      } catch (error) {
        throw error instanceof ProcsnapError ? withKey(error, key) : error
      }
    }
    return texts.get(p)
  }
  const tests = fileTests(task)
  const path = goldenPath(
    testFile,
    key,
    (p) => headerKey(read(p) ?? ''),
    (owner) => !tests || ownerOf(owner, tests) !== undefined,
  )
  // Paths in messages and headers are relative to the test file: the same on every machine.
  const shown = relative(dirname(testFile), path)
  const text = renderGolden({ key, test: basename(testFile) }, sections)
  const existing = read(path)
  const mode = updateMode(state)
  if (existing !== text) refuseTooLarge(key, shown, path, text, sections)

  if (existing === undefined) {
    if (mode === 'none') {
      state.unmatched.increment(task.id)
      return {
        pass: false,
        message: () =>
          `Process snapshot \`${key}\` was not written: ${shown} does not exist, and this run may ` +
          `not write goldens (CI, or --update=none). Run vitest locally or with -u, then commit the ` +
          `file.${collisionHint(key, path, read)}`,
      }
    }
    writeGolden(task, path, text)
    warnIfLarge(key, shown, text, sections)
    state.added.increment(task.id)
    return { pass: true, message: () => `Process snapshot \`${key}\` was written to ${shown}` }
  }
  if (existing === text) {
    dropReview(path)
    state.matched.increment(task.id)
    return { pass: true, message: () => `Process snapshot \`${key}\` matches ${shown}` }
  }
  let summary: string
  try {
    summary = compareWithGolden(existing, text, sections, key, shown) ?? 'no differences'
  } catch (error) {
    if (!(error instanceof GoldenError) || mode !== 'all')
      throw error instanceof GoldenError ? withKey(error, key) : error
    summary = 'unreadable golden rewritten'
  }
  if (mode === 'all') {
    writeGolden(task, path, text)
    dropReview(path)
    warnIfLarge(key, shown, text, sections)
    state.updated.increment(task.id)
    return { pass: true, message: () => `Process snapshot \`${key}\` was updated: ${summary}` }
  }
  state.unmatched.increment(task.id)
  // A local run leaves the new golden beside the old one for `procsnap review`; CI writes nothing.
  if (mode === 'new') writeGolden(task, `${path}${REVIEW_SUFFIX}`, text)
  const review =
    mode === 'new' ? `. The new one is in ${shown}${REVIEW_SUFFIX}: accept or reject it with npx procsnap review` : ''
  return {
    pass: false,
    message: () =>
      `Process snapshot \`${key}\` mismatched (${shown}): ${summary}${caveat ? `. ${caveat}` : ''}${review}`,
    actual: text,
    expected: existing,
  }
}

/**
 * How a golden's text compares with the rendered one: undefined when they are the same, else the
 * mismatch summed up. Throws GoldenError when the text cannot be read back as the golden of `key`.
 */
export function compareWithGolden(
  existing: string,
  text: string,
  sections: readonly GoldenSection[],
  key: string,
  shown: string,
): string | undefined {
  if (existing === text) return undefined
  return summarizeGolden(compareGolden(readGolden(existing, shown, key).sections, readableSections(sections)))
}

/** The golden parsed, checked to be the golden of `key`: a header naming another key is a damaged key line, not a second golden. */
function readGolden(text: string, shown: string, key: string): ReturnType<typeof parseGolden> {
  const doc = parseGolden(text, shown)
  if (doc.key !== key)
    throw new GoldenError(
      'ERR_GOLDEN_CORRUPT',
      shown,
      2,
      `${shown}:2: the key line names ${JSON.stringify(doc.key)}, not this snapshot's key ${JSON.stringify(key)}: ` +
        'it is damaged or was edited. Fix the line, or run vitest -u to write the golden again.',
    )
  return doc
}

/** A golden the reader would refuse (over MAX_GOLDEN_BYTES) is not written: ERR_FILE_TOO_LARGE with what shrinks it. */
function refuseTooLarge(
  key: string,
  shown: string,
  path: string,
  text: string,
  sections: readonly GoldenSection[],
): void {
  const bytes = Buffer.byteLength(text)
  if (bytes <= MAX_GOLDEN_BYTES) return
  throw new FileError(
    'ERR_FILE_TOO_LARGE',
    path,
    `Process snapshot \`${key}\` would be ${bytes} bytes, more than the ${MAX_GOLDEN_BYTES} a golden may hold, and was ` +
      `not written to ${shown}. ${largeGoldenNote(key, shown, bytes, sections) ?? ''}`.trim(),
  )
}

/** Why a golden beside the slug's file is missing: the slug's file holds another key, maybe a damaged one. */
function collisionHint(key: string, path: string, read: (path: string) => string | undefined): string {
  const plain = join(dirname(path), `${slugOf(key)}.snap`)
  if (path === plain) return ''
  const other = headerKey(read(plain) ?? '')
  return (
    ` (${basename(plain)} holds another key of the same name without punctuation, ${JSON.stringify(other)}: ` +
    'if its key line is damaged, fix it.)'
  )
}
