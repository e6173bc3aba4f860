// Pretty printing of a snapshot diff: a summary line first, then each change, old -> new, with the
// old value in red and the new one in green when colors are on.
import { archInfo } from './arch-info.js'
import type {
  BacktraceChange,
  Frame,
  MapChange,
  MapState,
  MemoryChange,
  RegisterChange,
  SnapshotArch,
  SnapshotDiffData,
  SnapshotStop,
} from './model.js'
import { describeStop, hexLanes, hexShort, paint, plural, type RenderStyle } from './pprint-style.js'

/** Bytes shown per side of a memory change; the rest is counted. */
export const MAX_BYTES_SHOWN = 16

/** 'stop, 2 registers, 1 memory range, 1 map, 1 thread, backtrace of thread 1 changed', 'backtrace unchanged', or 'no differences'. */
export function diffSummary(d: SnapshotDiffData): string {
  if (d.isEmpty) return 'no differences'
  const parts: string[] = []
  if (d.stop) parts.push('stop')
  if (d.regs.length) parts.push(plural(d.regs.length, 'register'))
  if (d.memory.length) parts.push(plural(d.memory.length, 'memory range'))
  if (d.maps.length) parts.push(plural(d.maps.length, 'map'))
  if (d.threads.length) parts.push(plural(d.threads.length, 'thread'))
  const threads = d.backtrace.map((b) => b.thread)
  parts.push(
    threads.length
      ? `backtrace of thread${threads.length === 1 ? '' : 's'} ${threads.join(', ')} changed`
      : 'backtrace unchanged',
  )
  return parts.join(', ')
}

/** 'a -> b', with a in red and b in green; `a` padded to `width` (before painting) so arrows line up. */
function change(style: RenderStyle, before: string, after: string, width = 0): string {
  return `${paint(style, 'red', before)}${' '.repeat(Math.max(0, width - before.length))} -> ${paint(style, 'green', after)}`
}

function stopText(stop: SnapshotStop | undefined): string {
  return stop ? `${describeStop(stop)} in thread ${stop.thread}` : 'none'
}

/** Up to 64 bits in short hex (0x2); wider registers at full width, lanes separated, so lanes line up. */
function registerValue(arch: SnapshotArch, r: RegisterChange, value: bigint): string {
  const bits = archInfo(arch).registerInfo(r.name)?.bits ?? 64
  return bits > 64 ? hexLanes(value, bits) : hexShort(value)
}

function registerLines(arch: SnapshotArch, regs: readonly RegisterChange[], style: RenderStyle): string[] {
  const threads = [...new Set(regs.map((r) => r.thread))]
  const labelled = threads.length > 1 || threads.some((t) => t !== 1)
  const lines: string[] = []
  for (const thread of threads) {
    const mine = regs.filter((r) => r.thread === thread)
    const names = mine.reduce((w, r) => Math.max(w, r.name.length), 0)
    const befores = mine.map((r) => registerValue(arch, r, r.before))
    const width = befores.reduce((w, b) => Math.max(w, b.length), 0)
    lines.push(paint(style, 'bold', labelled ? `registers of thread ${thread}:` : 'registers:'))
    mine.forEach((r, i) =>
      lines.push(
        `  ${r.name.padEnd(names)}  ${change(style, befores[i] ?? '', registerValue(arch, r, r.after), width)}`,
      ),
    )
  }
  return lines
}

/** Bytes in hex, those that differ from the other side painted; past MAX_BYTES_SHOWN, a count. */
function bytesText(style: RenderStyle, bytes: Uint8Array, other: Uint8Array, color: 'red' | 'green'): string {
  const shown = Array.from(bytes.subarray(0, MAX_BYTES_SHOWN), (b, i) => {
    const text = b.toString(16).padStart(2, '0')
    return b === other[i] ? text : paint(style, color, text)
  })
  const more =
    bytes.length > MAX_BYTES_SHOWN ? ` … +${bytes.length - MAX_BYTES_SHOWN} more (${bytes.length} bytes)` : ''
  return `${shown.join(' ')}${more}`
}

function memoryLine(m: MemoryChange, style: RenderStyle): string {
  const moved = m.addressBefore !== m.addressAfter ? ` (was ${hexShort(m.addressBefore)})` : ''
  const where = paint(style, 'dim', `@ ${hexShort(m.addressAfter)}${moved}`)
  return (
    `  ${paint(style, 'yellow', m.location)} ${where}: ` +
    `${bytesText(style, m.before, m.after, 'red')} -> ` +
    `${bytesText(style, m.after, m.before, 'green')}`
  )
}

function range(m: MapState | undefined): string {
  return m ? `${hexShort(m.start)}-${hexShort(m.end)} ${m.perms}` : ''
}

function mapLine(c: MapChange, style: RenderStyle): string {
  if (c.kind === 'added') return `  ${paint(style, 'green', `+ ${c.identity}`)}  ${range(c.after)}`
  if (c.kind === 'removed') return `  ${paint(style, 'red', `- ${c.identity}`)}  ${range(c.before)}`
  const size = (m: MapState | undefined): string => hexShort(m ? m.end - m.start : 0n)
  const fields = c.fields.map((f) => {
    if (f === 'perms') return `perms ${change(style, c.before?.perms ?? '-', c.after?.perms ?? '-')}`
    if (f === 'size') return `size ${change(style, size(c.before), size(c.after))}`
    if (f === 'buildId') return `build-id ${change(style, c.before?.buildId ?? '-', c.after?.buildId ?? '-')}`
    return f
  })
  return `  ~ ${c.identity}  ${fields.join(', ')}`
}

/** Appends without spreading: a diff of 300k maps or frames would pass more arguments than the stack holds. */
function append(lines: string[], ...parts: readonly (readonly string[])[]): void {
  for (const part of parts) for (const line of part) lines.push(line)
}

/**
 * A changed backtrace as a unified diff of frames: the frames both sides share at the outer end
 * (main, __libc_start_call_main, ...) are context; the inner ones are removed (-, numbered as in the
 * old backtrace) and added (+, numbered as in the new one).
 */
function backtraceLines(b: BacktraceChange, style: RenderStyle): string[] {
  let common = 0
  while (
    common < b.before.length &&
    common < b.after.length &&
    b.before[b.before.length - 1 - common]?.location === b.after[b.after.length - 1 - common]?.location
  )
    common++
  const gone = b.before.slice(0, b.before.length - common)
  const kept = b.after.slice(0, b.after.length - common)
  const width = Math.max(3, `#${Math.max(b.before.length, b.after.length) - 1}`.length)
  const frame = (f: Frame, i: number): string =>
    `${`#${i}`.padEnd(width)} ${f.location}${f.via === 'fp' ? ' [fp]' : ''}`
  return [
    paint(style, 'bold', `backtrace of thread ${b.thread}:`),
    ...gone.map((f, i) => `  ${paint(style, 'red', `- ${frame(f, i)}`)}`),
    ...kept.map((f, i) => `  ${paint(style, 'green', `+ ${frame(f, i)}`)}`),
    ...b.after.slice(b.after.length - common).map((f, i) => `    ${frame(f, kept.length + i)}`),
  ]
}

/**
 * The diff as text: the summary line (diffSummary), the level note, then stop, registers (short hex;
 * per thread when other threads than 1 changed), memory ranges (symbolized, at their address in the
 * new snapshot), maps (+ added, - removed, ~ changed fields), threads, and backtraces.
 */
export function renderDiff(d: SnapshotDiffData, arch: SnapshotArch, style: RenderStyle): string {
  const lines = [paint(style, 'bold', diffSummary(d))]
  if (d.levelNote) lines.push(paint(style, 'dim', `(${d.levelNote})`))
  if (d.stop)
    lines.push(`${paint(style, 'bold', 'stop:')} ${change(style, stopText(d.stop.before), stopText(d.stop.after))}`)
  if (d.regs.length) append(lines, registerLines(arch, d.regs, style))
  if (d.memory.length)
    append(
      lines,
      [paint(style, 'bold', 'memory:')],
      d.memory.map((m) => memoryLine(m, style)),
    )
  if (d.maps.length)
    append(
      lines,
      [paint(style, 'bold', 'maps:')],
      d.maps.map((c) => mapLine(c, style)),
    )
  if (d.threads.length) {
    lines.push(paint(style, 'bold', 'threads:'))
    for (const t of d.threads)
      lines.push(
        `  ${paint(style, t.kind === 'added' ? 'green' : 'red', `${t.kind === 'added' ? '+' : '-'} thread ${t.index}`)} (tid ${t.tid})`,
      )
  }
  for (const b of d.backtrace) append(lines, backtraceLines(b, style))
  return `${lines.join('\n')}\n`
}
