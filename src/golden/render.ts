// The golden file's text: the normalized, reviewable view of a snapshot. Line-oriented sections of
// '  label  value' entries, every address written relative to what contains it, nothing that varies
// between two runs of the same binary (pids, tids, absolute addresses, vector registers by default).
import { basename } from 'node:path'
import { archInfo } from '../snapshot/arch-info.js'
import type { SnapshotData } from '../snapshot/model.js'
import { hex, type SnapshotModule } from '../snapshot/regions.js'
import { encodeKey } from './key.js'
import { memoryEntries, namedRangeEntries, withText, type GoldenEntry } from './memory-lines.js'
import { AddressNamer } from './names.js'
import { projectPaths, type ProjectModules } from './project.js'

export const GOLDEN_VERSION = 1

export type GoldenPart = 'stop' | 'regs' | 'backtrace' | 'maps' | 'memory'

export interface GoldenOptions {
  /** Sections to write; default all of them. */
  readonly include?: readonly GoldenPart[]
  /** Also the x87, SSE, AVX and AVX-512 registers (off by default: they vary with the CPU). */
  readonly vectorRegs?: boolean
  /** More memory, each in its own section: symbols with a size ('g_table') or regions ('[heap]'). */
  readonly memory?: readonly string[]
  /**
   * The libraries shown in full beside the executable (offsets, build-ids, map sizes, data), by base
   * name or pattern, or 'all'. Default: those whose file lies inside the project root. The others
   * are written by symbol only.
   */
  readonly modules?: ProjectModules
}

/** goldenSections' options: the user's, and the project root for the default of `modules` (Vitest's; else the working directory). */
export interface GoldenSettings extends GoldenOptions {
  readonly root?: string
}

/** How goldenSections reaches a snapshot's memory beyond the executable's data (the `memory` option). */
export interface GoldenMemoryAccess {
  resolve(location: string): bigint
  read(address: bigint, length: number): Uint8Array
}

export interface GoldenHeader {
  /** Vitest's key: 'describe > test 1', or 'describe > test: name' for a named snapshot. */
  readonly key: string
  /** The test file, relative to the project root. */
  readonly test: string
}

export interface GoldenSection {
  readonly title: string
  readonly entries: readonly GoldenEntry[]
}

export const ALL_PARTS: readonly GoldenPart[] = ['stop', 'regs', 'backtrace', 'maps', 'memory']

/** The sections of a snapshot's golden view, in file order. */
export function goldenSections(
  data: SnapshotData,
  modules: readonly SnapshotModule[],
  options: GoldenSettings = {},
  access?: GoldenMemoryAccess,
): GoldenSection[] {
  const parts = new Set(options.include ?? ALL_PARTS)
  const project = projectPaths(data, modules, options.modules, options.root ?? process.cwd())
  const namer = new AddressNamer(data, modules, project)
  const sections: GoldenSection[] = []
  const stop = data.stop
  if (parts.has('stop') && stop) {
    const entries: GoldenEntry[] = [
      { label: 'kind', value: stop.kind === 'signal' ? `signal ${stop.signal}` : stop.kind },
      { label: 'at', value: namer.stop(stop) },
      { label: 'thread', value: String(stop.thread) },
    ]
    if (stop.kind === 'signal') {
      entries.push({ label: 'code', value: String(stop.code) })
      if (stop.faultAddress !== undefined) entries.push({ label: 'address', value: namer.value(stop.faultAddress) })
    }
    sections.push({ title: 'stop', entries })
  }
  const info = archInfo(data.arch)
  for (const t of data.threads) {
    if (parts.has('regs')) {
      const names = options.vectorRegs
        ? [...info.general, ...Object.keys(t.regs).filter((n) => !info.general.includes(n))]
        : info.general
      const entries = names.flatMap((name) => {
        const value = t.regs[name]
        return value === undefined
          ? []
          : [
              {
                label: name,
                value:
                  info.registerInfo(name)?.group === 'general' || info.registerInfo(name)?.group === 'segment'
                    ? namer.value(value)
                    : hex(value),
              },
            ]
      })
      sections.push({ title: `thread ${t.index} registers`, entries })
    }
    if (parts.has('backtrace'))
      sections.push({
        title: `thread ${t.index} backtrace`,
        entries: t.backtrace.map((f, i) => ({ label: `#${i}`, value: namer.frame(f, i) })),
      })
  }
  if (parts.has('maps')) {
    sections.push({ title: 'modules', entries: moduleEntries(data, modules, project) })
    sections.push({ title: 'maps', entries: mapEntries(data, modules, project) })
  }
  if (parts.has('memory')) sections.push({ title: 'memory', entries: memoryEntries(data, modules, namer, project) })
  for (const location of options.memory ?? []) {
    if (!access) throw new TypeError("goldenSections needs the snapshot's memory for the memory option")
    sections.push({
      title: `memory ${location}`,
      entries: namedRangeEntries(
        location,
        data,
        modules,
        namer,
        (l) => access.resolve(l),
        (a, n) => access.read(a, n),
      ),
    })
  }
  return readableSections(sections)
}

/** What the modules section says of a library that is not the project's: it is loaded, and written by symbol. */
export const BY_SYMBOL = 'by symbol'

/**
 * The executable and the project's libraries by build-id: when one is rebuilt, the summary says so
 * first, before the offsets and sizes that moved with it. Other libraries are listed as loaded, by
 * symbol, without a build-id: another machine's libc is not a change of the program.
 */
function moduleEntries(
  data: SnapshotData,
  modules: readonly SnapshotModule[],
  project: ReadonlySet<string>,
): GoldenEntry[] {
  return modules.map((m) => ({
    label: m.name,
    value: !project.has(m.path)
      ? BY_SYMBOL
      : (data.maps.find((x) => x.path === m.path && x.buildId !== undefined)?.buildId ?? 'no build-id'),
  }))
}

/** The maps of the executable and the project's libraries: file, offset, perms and size, never an address. */
function mapEntries(
  data: SnapshotData,
  modules: readonly SnapshotModule[],
  project: ReadonlySet<string>,
): GoldenEntry[] {
  const paths = new Set(modules.filter((m) => project.has(m.path)).map((m) => m.path))
  const seen = new Map<string, number>()
  return data.maps.flatMap((m) => {
    if (!paths.has(m.path)) return []
    const base = `${basename(m.path)}@${hex(m.offset)}`
    const n = (seen.get(base) ?? 0) + 1
    seen.set(base, n)
    return [{ label: n > 1 ? `${base}#${n}` : base, value: `${m.perms} ${hex(m.end - m.start)}` }]
  })
}

/** Labels are padded to the longest in their section, up to this: a long C++ name does not pad every line. */
export const LABEL_COLUMN = 48

/**
 * What the reader accepts, made so: a label is non-empty, has no run of spaces (two spaces end it)
 * and is unique in its section (a second '_ZL7_module' becomes '_ZL7_module#2'); a value is one line, without surrounding spaces.
 * Idempotent, so the writer never writes what the reader rejects.
 */
export function readableSections(sections: readonly GoldenSection[]): GoldenSection[] {
  return sections.map((s) => {
    if (readable.has(s)) return s
    const seen = new Set<string>()
    // The next number to try per label: 300,000 equal labels would otherwise try 2, 3, ... each time.
    const next = new Map<string, number>()
    const entries = s.entries.map((e) => {
      // What procsnap writes is readable already: the regular expressions below cost 3 µs an entry.
      if (READABLE_LABEL.test(e.label) && !seen.has(e.label) && READABLE_VALUE.test(e.value)) {
        seen.add(e.label)
        return e
      }
      const base = e.label.replace(/\s+/g, ' ').trim() || '?'
      let label = base
      let n = next.get(base) ?? 2
      while (seen.has(label)) label = `${base}#${n++}`
      next.set(base, n)
      seen.add(label)
      const value = oneLine(e.value.replace(/\r?\n/g, '\\n')).trim()
      if (label === e.label && value === e.value) return e
      return withText(e, label, value)
    })
    const section = { title: oneLine(s.title), entries }
    readable.add(section)
    return section
  })
}

/** Sections readableSections made: made again, they are the same (renderGolden gets goldenSections' output). */
const readable = new WeakSet<GoldenSection>()

/** A label as the reader reads it: words of non-space characters, one space between them. */
const READABLE_LABEL = /^\S+(?: \S+)*$/
/** A value as the reader reads it: empty, or no line break and no space at either end. */
const READABLE_VALUE = /^(?:\S(?:[^\n\r\u2028\u2029]*\S)?)?$/

/** The line breaks other than '\n' that the reader's lines cannot hold ('\r', U+2028, U+2029), escaped. */
function oneLine(text: string): string {
  return text.replace(/[\n\r\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
}

/** The whole file: a header naming the key, the test file and the format version, then the sections. */
export function renderGolden(header: GoldenHeader, sections: readonly GoldenSection[]): string {
  const lines = [
    `# procsnap golden ${GOLDEN_VERSION}`,
    `# key: ${encodeKey(header.key)}`,
    `# test: ${encodeKey(header.test)}`,
  ]
  for (const s of readableSections(sections)) {
    lines.push('', `${s.title}:`)
    const width = s.entries.reduce((w, e) => Math.max(w, Math.min(LABEL_COLUMN, e.label.length)), 0)
    for (const e of s.entries) lines.push(`  ${e.label.padEnd(width)}  ${e.value}`.trimEnd())
  }
  return `${lines.join('\n')}\n`
}
