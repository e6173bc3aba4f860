// A golden mismatch as structure first: which registers, memory ranges, maps and frames differ,
// summed up in one line ('2 registers, 1 memory range (counter!g_counter: 03 00 00 00 -> 04 00 00 00),
// backtrace unchanged') before the line diff of the file.
import type { GoldenSection } from './render.js'

export interface GoldenChange {
  readonly section: string
  readonly label: string
  /** Absent when the entry is new. */
  readonly before?: string
  /** Absent when the entry is gone. */
  readonly after?: string
}

/** Memory ranges spelled out in the summary; more are counted. */
const SHOWN_MEMORY = 3

export function compareGolden(expected: readonly GoldenSection[], actual: readonly GoldenSection[]): GoldenChange[] {
  const changes: GoldenChange[] = []
  const titles = [...new Set([...expected.map((s) => s.title), ...actual.map((s) => s.title)])]
  for (const title of titles) {
    const a = new Map((expected.find((s) => s.title === title)?.entries ?? []).map((e) => [e.label, e.value]))
    const b = new Map((actual.find((s) => s.title === title)?.entries ?? []).map((e) => [e.label, e.value]))
    for (const [label, before] of a) {
      const after = b.get(label)
      if (after === undefined) changes.push({ section: title, label, before })
      else if (after !== before) changes.push({ section: title, label, before, after })
    }
    for (const [label, after] of b) if (!a.has(label)) changes.push({ section: title, label, after })
  }
  return changes
}

const BUILD_ID = /^[0-9a-f]{8,}$/

function short(value: string): string {
  return BUILD_ID.test(value) ? `build-id ${value.slice(0, 8)}` : value
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`
}

export function summarizeGolden(changes: readonly GoldenChange[]): string {
  if (changes.length === 0) return 'no differences'
  const parts: string[] = []
  const rebuilt = changes.filter((c) => c.section === 'modules')
  if (rebuilt.length)
    parts.push(
      rebuilt
        .map((c) => {
          if (c.before === undefined) return `${c.label} loaded`
          if (c.after === undefined) return `${c.label} gone`
          if (BUILD_ID.test(c.before) && BUILD_ID.test(c.after))
            return `${c.label} rebuilt (build-id ${c.before.slice(0, 8)} -> ${c.after.slice(0, 8)})`
          // Shown in full on one side and by symbol on the other (the modules option changed), or no build-id.
          return `${c.label} ${short(c.before)} -> ${short(c.after)}`
        })
        .join(', '),
    )
  const stop = changes.filter((c) => c.section === 'stop')
  if (stop.length)
    parts.push(`stop (${stop.map((c) => `${c.label}: ${c.before ?? '-'} -> ${c.after ?? '-'}`).join(', ')})`)
  const regs = changes.filter((c) => c.section.endsWith(' registers'))
  if (regs.length) parts.push(plural(regs.length, 'register'))
  const memory = changes.filter((c) => c.section === 'memory' || c.section.startsWith('memory '))
  if (memory.length) {
    const shown = memory
      .slice(0, SHOWN_MEMORY)
      .map((c) => `${c.label}: ${c.before ?? '(none)'} -> ${c.after ?? '(none)'}`)
    parts.push(
      `${plural(memory.length, 'memory range')} (${shown.join('; ')}${memory.length > SHOWN_MEMORY ? '; …' : ''})`,
    )
  }
  const maps = changes.filter((c) => c.section === 'maps')
  if (maps.length) parts.push(plural(maps.length, 'map'))
  const frames = new Set(
    changes.filter((c) => c.section.endsWith(' backtrace')).map((c) => c.section.replace(/ backtrace$/, '')),
  )
  // Sections of other goldens (a crash report's): each named with the labels that changed.
  const known = (section: string): boolean =>
    ['modules', 'stop', 'memory', 'maps'].includes(section) ||
    section.endsWith(' registers') ||
    section.startsWith('memory ') ||
    section.endsWith(' backtrace')
  const others = new Map<string, Set<string>>()
  for (const c of changes.filter((c) => !known(c.section)))
    others.set(c.section, (others.get(c.section) ?? new Set()).add(c.label))
  for (const [section, labels] of others) parts.push(`${section} (${[...labels].join(', ')})`)
  if (frames.size > 0) parts.push(`backtrace of ${[...frames].join(', ')} changed`)
  else if (others.size === 0) parts.push('backtrace unchanged')
  return parts.join(', ')
}
