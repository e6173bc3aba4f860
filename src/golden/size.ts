// A golden too large to review is still written, and the test's output says which sections made it
// large and which options shrink it.
import { LABEL_COLUMN, type GoldenSection } from './render.js'

/** Above this a golden is not read line by line in review (issue 10 says "say, over 100 KB"). */
export const REVIEWABLE_BYTES = 100_000

function kb(bytes: number): string {
  return bytes >= 1e6 ? `${(bytes / 1e6).toFixed(1)} MB` : `${Math.ceil(bytes / 1000)} KB`
}

/** Which options leave a section out or make it smaller. */
function shrinking(title: string): string {
  if (title === 'memory') return "include without 'memory' leaves out the program's data"
  if (title.startsWith('memory ')) return `drop '${title.slice('memory '.length)}' from the memory option`
  if (title === 'maps' || title === 'modules') return "include without 'maps'"
  if (title.endsWith(' backtrace')) return "include without 'backtrace'"
  if (title.endsWith(' registers')) return "include without 'regs', or vectorRegs: false"
  return 'the include option'
}

/** Bytes of a section as renderGolden writes it: '  label' padded to the column, two spaces, the value. */
function sectionBytes(section: GoldenSection): number {
  const width = section.entries.reduce((w, e) => Math.max(w, Math.min(LABEL_COLUMN, e.label.length)), 0)
  return section.entries.reduce((n, e) => n + 2 + Math.max(width, e.label.length) + 2 + e.value.length + 1, 0)
}

/** The note for a golden of `bytes` bytes, or undefined when it is small enough to review. */
export function largeGoldenNote(
  key: string,
  shown: string,
  bytes: number,
  sections: readonly GoldenSection[],
): string | undefined {
  if (bytes <= REVIEWABLE_BYTES) return undefined
  const sizes = sections
    .map((s) => ({ title: s.title, bytes: sectionBytes(s) }))
    .sort((a, b) => b.bytes - a.bytes)
    .slice(0, 3)
  const parts = sizes.map((s) => `${s.title} ${kb(s.bytes)} (${shrinking(s.title)})`)
  return (
    `procsnap: process snapshot \`${key}\` (${shown}) is ${kb(bytes)}, too large to review line by line ` +
    `(over ${kb(REVIEWABLE_BYTES)}). Largest sections: ${parts.join('; ')}.`
  )
}
