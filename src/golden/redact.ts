// toMatchProcessSnapshot's `redact`, in the spirit of insta's redactions and Jest's property
// matchers: { 'regs.rbx': expect.any(BigInt), 'memory.g_seed': '<seed>' }. A string replaces the
// value in the golden as is; anything else (an asymmetric matcher, a value) must match the actual
// value, and the golden shows the matcher instead of the value.
import type { MatcherState } from 'vitest'
import type { Snapshot } from '../snapshot/snapshot.js'
import { lineRange, type GoldenEntry } from './memory-lines.js'
import type { GoldenSection } from './render.js'

export type Redactions = Readonly<Record<string, unknown>>

/** What a redaction key names, for its "no such" message. */
function redactedKind(key: string): string {
  if (key.startsWith('regs.')) return 'register'
  if (key.startsWith('memory.')) return 'memory line'
  return "entry (use 'regs.<name>' or 'memory.<symbol>')"
}

/** Byte length of a memory line's value: hex bytes, <pointer> words (8 bytes), <pid>/<tid#n> (4), '00 x n' runs. */
function lineLength(value: string): number {
  const run = /^00 x (\d+)$/.exec(value)
  if (run) return Number(run[1])
  // <pid> and <tid#2> stand for 4-byte ids; any other <name> for an 8-byte pointer.
  const width = (token: string): number => (/^<(pid|tid#\d+)>$/.test(token) ? 4 : token.startsWith('<') ? 8 : 1)
  return value.split(' ').reduce((n, token) => n + width(token), 0)
}

/** The sections with every redaction applied, and what failed to match. */
export function applyRedactions(
  state: MatcherState,
  sections: readonly GoldenSection[],
  snap: Snapshot,
  redact: Redactions,
): { sections: GoldenSection[]; failures: string[] } {
  const failures: string[] = []
  const used = new Set<string>()
  const replace = (key: string, actual: () => unknown, entry: GoldenEntry): GoldenEntry => {
    used.add(key)
    const expected = redact[key]
    if (typeof expected === 'string') return { label: entry.label, value: expected }
    const value = actual()
    if (!state.equals(value, expected))
      failures.push(
        `redact ${key}: expected ${state.utils.stringify(expected)}, received ${state.utils.stringify(value)}`,
      )
    return { label: entry.label, value: `<${state.utils.stringify(expected)}>` }
  }
  const out = sections.map((section) => {
    const thread = /^thread (\d+) registers$/.exec(section.title)?.[1]
    const isMemory = section.title === 'memory' || section.title.startsWith('memory ')
    const entries = section.entries.map((entry) => {
      if (thread !== undefined && `regs.${entry.label}` in redact) {
        return replace(
          `regs.${entry.label}`,
          () => snap.threads.find((t) => t.index === Number(thread))?.regs[entry.label],
          entry,
        )
      }
      if (isMemory) {
        const key = Object.keys(redact).find(
          (k) => k.startsWith('memory.') && (entry.label === k.slice(7) || entry.label.endsWith(`!${k.slice(7)}`)),
        )
        // A line's own address: its label may be a demangled name, which resolve() does not read.
        const range = lineRange(entry)
        const read = (): Uint8Array =>
          range
            ? snap.memory.read(range.address, range.length)
            : snap.memory.read(snap.memory.resolve(entry.label), lineLength(entry.value))
        if (key) return replace(key, read, entry)
      }
      return entry
    })
    return { title: section.title, entries }
  })
  for (const key of Object.keys(redact)) {
    if (!used.has(key)) failures.push(`redact ${key}: no such ${redactedKind(key)} in this snapshot`)
  }
  return { sections: out, failures }
}
