// Reading a golden file back into its header and sections, so that a mismatch is reported as a
// structured diff. Every problem names the file and the line.
import { GoldenError } from '../errors.js'
import { decodeKey } from './key.js'
import type { GoldenEntry } from './memory-lines.js'
import { GOLDEN_VERSION, type GoldenSection } from './render.js'

export interface GoldenDocument {
  readonly version: number
  readonly key: string
  readonly test: string
  readonly sections: readonly GoldenSection[]
}

const HEADER = /^# procsnap golden (\d+)$/
const ENTRY = /^ {2}(\S+(?: \S+)*?)(?: {2,}(.*))?$/

export function parseGolden(text: string, path: string): GoldenDocument {
  const lines = text.split('\n')
  if (lines.at(-1) === '') lines.pop()
  const fail = (line: number, message: string): never => {
    throw new GoldenError(
      'ERR_GOLDEN_CORRUPT',
      path,
      line,
      `${path}:${line}: ${message}. Fix the file or delete it and run vitest -u to write it again.`,
    )
  }
  const version = HEADER.exec(lines[0] ?? '')?.[1]
  if (version === undefined) fail(1, "not a procsnap golden file (the first line must be '# procsnap golden 1')")
  if (Number(version) > GOLDEN_VERSION) {
    throw new GoldenError(
      'ERR_GOLDEN_VERSION',
      path,
      1,
      `${path}:1: written by a newer procsnap (golden format ${version}; this one reads ${GOLDEN_VERSION}). Upgrade procsnap.`,
    )
  }
  const keyLine = lines[1] ?? ''
  const key =
    (keyLine.startsWith('# key: ') ? decodeKey(keyLine.slice('# key: '.length)) : undefined) ??
    fail(2, `expected '# key: <test name> <n>' (or a JSON string after '# key: '), found '${keyLine.slice(0, 60)}'`)
  const testLine = lines[2] ?? ''
  const test =
    (testLine.startsWith('# test: ') ? decodeKey(testLine.slice('# test: '.length)) : undefined) ??
    fail(3, "expected '# test: <test file>'")
  const sections: { title: string; entries: GoldenEntry[]; labels: Set<string> }[] = []
  const titles = new Set<string>()
  for (let i = 3; i < lines.length; i++) {
    const line = lines[i] ?? ''
    const n = i + 1
    if (line === '') continue
    const title = /^(\S.*):$/.exec(line)?.[1]
    if (title !== undefined) {
      if (titles.has(title)) fail(n, `section '${title}' appears twice`)
      titles.add(title)
      sections.push({ title, entries: [], labels: new Set() })
      continue
    }
    const section = sections.at(-1)
    if (!section) fail(n, `expected a section title such as 'memory:', found '${line.slice(0, 40)}'`)
    const entry = ENTRY.exec(line)
    if (!section || !entry)
      return fail(n, `expected '  <label>  <value>' in section '${section?.title ?? ''}', found '${line.slice(0, 40)}'`)
    const label = entry[1] ?? ''
    // A set per section: a golden of python3 has 70,000 lines, and a scan per line took 95 s.
    if (section.labels.has(label)) fail(n, `'${label}' appears twice in section '${section.title}'`)
    section.labels.add(label)
    section.entries.push({ label, value: entry[2] ?? '' })
  }
  return {
    version: Number(version),
    key,
    test,
    sections: sections.map(({ title, entries }) => ({ title, entries })),
  }
}
