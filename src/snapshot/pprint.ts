// Pretty printing of snapshots in the style of gdb (`info registers`, `info proc mappings`, `bt`,
// `x/32xb`) and libdebug's pprint_*: aligned hex, symbolized pointers, ANSI colors only when asked.
import { heldSize } from './content.js'
import type { Frame, MapState, SnapshotData } from './model.js'
import { threadStacks } from './regions.js'
import { columns, hexShort, hexWidth, paint, type Paint, type RenderStyle, type Symbolizer } from './pprint-style.js'

export { renderDiff, diffSummary } from './pprint-diff.js'
export { renderRegisters } from './pprint-registers.js'
export { shouldColor, type RenderStyle, type Symbolizer } from './pprint-style.js'

function pathColor(m: MapState): Paint | undefined {
  if (m.path === '[stack]') return 'yellow'
  if (m.path === '[heap]') return 'blue'
  if (m.perms[2] === 'x') return 'red'
  if (m.perms[1] === 'w') return 'magenta'
  return undefined
}

/**
 * `info proc mappings`: a title (pid, count, level), then start, end, perms, offset, size, what the
 * snapshot holds of the map's contents ('held', 'part held' or 'unreadable' with the reason after
 * the path, or nothing: this level does not keep them), and path; a thread's stack, anonymous memory,
 * shows as '[stack thread 2]'. Numbers are right-aligned like gdb's.
 */
export function renderMaps(data: SnapshotData, style: RenderStyle): string {
  const marks = data.maps.map(holding)
  const count = (mark: string): number => marks.filter((x) => x === mark).length
  const counts = [
    `${count('held')} held`,
    ...(count('part held') ? [`${count('part held')} part held`] : []),
    ...(count('unreadable') ? [`${count('unreadable')} unreadable`] : []),
  ].join(', ')
  const untouched = data.maps.reduce((n, m) => n + (m.untouched ?? []).reduce((k, [f, t]) => k + t - f, 0), 0)
  const zeros = untouched > 0 ? `; ${bytesText(untouched)} never touched: zeros, not read` : ''
  const title = `process ${data.pid}: ${data.maps.length} map${data.maps.length === 1 ? '' : 's'}, ${data.level} snapshot (${counts}${zeros})`
  const header = ['start', 'end', 'perms', 'offset', 'size', 'contents', 'path']
  const stacks = threadStacks(data)
  const paths = data.maps.map((m) => stacks.get(m) ?? m.path)
  const rows = data.maps.map((m, i) => [
    hexShort(m.start),
    hexShort(m.end),
    m.perms,
    hexShort(m.offset),
    hexShort(m.end - m.start),
    marks[i] ?? '',
    paths[i] ?? '',
  ])
  const laid = columns(
    [header, ...rows],
    ['right', 'right', 'left', 'right', 'right', 'left', 'left'],
    (r, c, text) => {
      if (r === 0) return paint(style, 'bold', text)
      const m = data.maps[r - 1]
      if (!m) return text
      if (c === 6) {
        const color = stacks.has(m) ? 'yellow' : pathColor(m)
        return color ? paint(style, color, text) : text
      }
      if (c === 5) return paint(style, HOLDING_COLOR[marks[r - 1] ?? ''] ?? 'red', text)
      return text
    },
  )
  const lines = laid.map((line, r) => {
    const reason = r > 0 ? data.maps[r - 1]?.unreadable : undefined
    return reason === undefined ? line : `${line}  ${paint(style, 'dim', `(${reason})`)}`
  })
  return `${[title, ...lines].join('\n')}\n`
}

/** 4096 -> '4 KiB', 3 << 30 -> '3 GiB', 1 GiB less 3 pages -> '1.0 GiB'. */
function bytesText(n: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB']
  let i = 0
  let x = n
  while (x >= 1000 && i < units.length - 1) {
    x /= 1024
    i++
  }
  return `${i === 0 || Number.isInteger(x) ? x : x.toFixed(1)} ${units[i]}`
}

const HOLDING_COLOR: Record<string, Paint> = { held: 'green', 'part held': 'yellow' }

/** What a snapshot holds of a map: 'held', 'part held' (up to a page it could not read), 'unreadable', or ''. */
function holding(m: MapState): string {
  if (heldSize(m) > 0) return m.unreadable === undefined ? 'held' : 'part held'
  return m.unreadable !== undefined ? 'unreadable' : ''
}

/**
 * `bt`: '#0  0x000055555555513d in counter!bump+0x4', newest first; frames found by the frame-pointer
 * chain (not CFI) end with a dim '[fp]': they are a guess where CFI was missing.
 */
export function renderBacktrace(frames: readonly Frame[], style: RenderStyle): string {
  if (frames.length === 0) return 'no frames\n'
  const width = Math.max(3, `#${frames.length - 1}`.length)
  const lines = frames.map((f, i) => {
    const fp = f.via === 'fp' ? `  ${paint(style, 'dim', '[fp]')}` : ''
    return `${`#${i}`.padEnd(width)} ${paint(style, 'cyan', hexWidth(f.pc, 64))} in ${paint(style, 'yellow', f.location)}${fp}`
  })
  return `${lines.join('\n')}\n`
}

function byteColor(b: number): Paint | undefined {
  if (b === 0) return 'dim'
  if (b >= 0x20 && b < 0x7f) return 'green'
  return undefined
}

/** Joins the texts of `bytes` with `separator`, each run of bytes of one color painted once. */
function paintRuns(style: RenderStyle, bytes: Uint8Array, text: (b: number) => string, separator: string): string {
  let out = ''
  for (let i = 0; i < bytes.length;) {
    const color = byteColor(bytes[i] ?? 0)
    let j = i + 1
    while (j < bytes.length && byteColor(bytes[j] ?? 0) === color) j++
    const run = Array.from(bytes.subarray(i, j), text).join(separator)
    out += `${i > 0 ? separator : ''}${color ? paint(style, color, run) : run}`
    i = j
  }
  return out
}

/**
 * A hexdump like `xxd` or `hexdump -C`: a header ('16 bytes at 0x... (counter!g_counter)'), then
 * 16 bytes a line in two groups of 8, and the ASCII column ('.' for what is not printable). Lines
 * equal to the one before are folded into one '*' (as hexdump does); the last line always shows.
 */
export function renderMemory(address: bigint, bytes: Uint8Array, style: RenderStyle, symbolize: Symbolizer): string {
  const where = symbolize(address)
  const lines = [
    paint(
      style,
      'bold',
      `${bytes.length} byte${bytes.length === 1 ? '' : 's'} at ${hexWidth(address, 64)}${where ? ` (${where})` : ''}`,
    ),
  ]
  let folded = false
  for (let at = 0; at < bytes.length; at += 16) {
    const row = bytes.subarray(at, at + 16)
    const last = at + 16 >= bytes.length
    if (at > 0 && !last && row.every((b, i) => b === bytes[at - 16 + i])) {
      if (!folded) lines.push('*')
      folded = true
      continue
    }
    folded = false
    const hex = (b: number): string => b.toString(16).padStart(2, '0')
    const pad = '   '.repeat(16 - row.length) + (row.length <= 8 ? ' ' : '')
    const left = paintRuns(style, row.subarray(0, 8), hex, ' ')
    const right = paintRuns(style, row.subarray(8), hex, ' ')
    const text = paintRuns(style, row, (b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.'), '')
    lines.push(
      `${paint(style, 'cyan', hexWidth(address + BigInt(at), 64))}  ${left}${right ? `  ${right}` : ''}${pad}  |${text}|`,
    )
  }
  return `${lines.join('\n')}\n`
}
