// `procsnap review`: as `cargo insta review` does for insta, each golden a local run found changed
// (written beside it as <golden>.snap.new by the golden workflow) is shown as a change from the
// golden — the structured summary, then the lines that differ — and accepted (it replaces the
// golden), rejected (deleted) or skipped, one by one; --accept-all and --reject-all for scripts.
import { readdirSync, readFileSync, renameSync, unlinkSync } from 'node:fs'
import { join, relative } from 'node:path'
import { compareGolden, summarizeGolden } from '../golden/compare.js'
import { GOLDEN_DIR } from '../golden/files.js'
import { parseGolden } from '../golden/parse.js'
import { REVIEW_SUFFIX } from '../golden/workflow.js'
import { EXIT, type Output } from './commands.js'

/** Where a review reads its keys from: a terminal in raw mode (keys arrive one at a time). */
export interface KeyInput {
  readonly isTTY?: boolean
  setRawMode?(raw: boolean): unknown
  on(event: 'data', listener: (chunk: Buffer) => void): unknown
  off(event: 'data', listener: (chunk: Buffer) => void): unknown
  resume(): unknown
  pause(): unknown
}

/** Folders never searched for goldens. */
const SKIPPED = new Set(['node_modules', '.git'])

/** Every pending golden under `root`, in a __process_snapshots__ folder, sorted. */
export function pendingGoldens(root: string): string[] {
  const found: string[] = []
  const walk = (dir: string, inGoldens: boolean, depth: number): void => {
    if (depth > 32) return
    let entries
    try {
      entries = readdirSync(dir, { withFileTypes: true })
    } catch {
      return // unreadable: nothing of ours
    }
    for (const e of entries) {
      const path = join(dir, e.name)
      if (e.isDirectory() && !SKIPPED.has(e.name)) walk(path, inGoldens || e.name === GOLDEN_DIR, depth + 1)
      else if (inGoldens && e.isFile() && e.name.endsWith(`.snap${REVIEW_SUFFIX}`)) found.push(path)
    }
  }
  walk(root, false, 0)
  return found.sort()
}

/** The change from the golden to the new one: the structured summary, then the lines that differ (common head and tail left out). */
export function describeChange(oldText: string, newText: string, shown: string): string {
  let summary: string
  try {
    summary = summarizeGolden(compareGolden(parseGolden(oldText, shown).sections, parseGolden(newText, shown).sections))
  } catch {
    summary = 'the golden cannot be read back: the whole file is shown'
  }
  const a = oldText.split('\n')
  const b = newText.split('\n')
  let head = 0
  while (head < a.length && head < b.length && a[head] === b[head]) head++
  let tail = 0
  while (tail < a.length - head && tail < b.length - head && a[a.length - 1 - tail] === b[b.length - 1 - tail]) tail++
  const lines = [
    ...a.slice(head, a.length - tail).map((l) => `- ${l}`),
    ...b.slice(head, b.length - tail).map((l) => `+ ${l}`),
  ]
  return `${summary}\n@@ line ${head + 1} @@\n${lines.join('\n')}\n`
}

/** Keys typed ahead of their question (a paste, or a script typing fast), answered in order. */
const typedAhead: string[] = []

/** The next key pressed: 'a', 'r', 's' or 'q' (ctrl-c and ctrl-d are 'q'); other keys are ignored. */
function nextKey(input: KeyInput): Promise<string> {
  const take = (): string | undefined => {
    while (typedAhead.length > 0) {
      const key = (typedAhead.shift() ?? '').toLowerCase()
      const choice = key === '\x03' || key === '\x04' ? 'q' : key
      if ('arsq'.includes(choice) && choice.length === 1) return choice
    }
    return undefined
  }
  const ready = take()
  if (ready) return Promise.resolve(ready)
  return new Promise((resolve) => {
    const onData = (chunk: Buffer): void => {
      typedAhead.push(...chunk.toString('latin1'))
      const choice = take()
      if (!choice) return
      input.off('data', onData)
      input.pause()
      resolve(choice)
    }
    input.on('data', onData)
    input.resume()
  })
}

/** Reviews the pending goldens under `root`; `all`: accept or reject them all without asking. */
export async function review(
  out: Output,
  err: Output,
  input: KeyInput,
  root: string,
  all: 'accept' | 'reject' | undefined,
): Promise<number> {
  const pending = pendingGoldens(root)
  if (pending.length === 0) {
    out.write('no pending goldens\n')
    return EXIT.ok
  }
  if (!all && !input.isTTY) {
    err.write('procsnap review: asks on a terminal; from a script, use --accept-all or --reject-all\n')
    return EXIT.usage
  }
  const counts = { accepted: 0, rejected: 0, skipped: 0 }
  input.setRawMode?.(true)
  try {
    for (const [i, path] of pending.entries()) {
      const golden = path.slice(0, -REVIEW_SUFFIX.length)
      const shown = relative(root, golden)
      const newText = readFileSync(path, 'utf8')
      let oldText = ''
      try {
        oldText = readFileSync(golden, 'utf8')
      } catch {
        // gone: accepting writes it
      }
      out.write(`\n${i + 1}/${pending.length} ${shown}\n${describeChange(oldText, newText, shown)}`)
      const choice = all === 'accept' ? 'a' : all === 'reject' ? 'r' : await ask(out, input)
      if (choice === 'q') break
      if (choice === 'a') {
        renameSync(path, golden)
        counts.accepted++
      } else if (choice === 'r') {
        unlinkSync(path)
        counts.rejected++
      } else counts.skipped++
      out.write(`${choice === 'a' ? 'accepted' : choice === 'r' ? 'rejected' : 'skipped'}\n`)
    }
  } finally {
    input.setRawMode?.(false)
  }
  const left = pendingGoldens(root).length
  out.write(`\n${counts.accepted} accepted, ${counts.rejected} rejected, ${counts.skipped} skipped; ${left} pending\n`)
  return EXIT.ok
}

async function ask(out: Output, input: KeyInput): Promise<string> {
  out.write('accept (a), reject (r), skip (s), quit (q)? ')
  return nextKey(input)
}
