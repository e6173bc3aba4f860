// Pretty printing of snapshots in the style of gdb (`info registers`, `info proc mappings`, `bt`,
// `x/32xb`) and libdebug's pprint_*: aligned hex, symbolized pointers, colors only when asked.
import { archInfo } from './arch-info.js'
import type { Frame, SnapshotData, ThreadState } from './model.js'
import { hexWidth, paint, type RenderStyle, type Symbolizer } from './pprint-style.js'

export { renderDiff } from './pprint-diff.js'
export { hexWidth, paint, shouldColor, type RenderStyle, type Symbolizer } from './pprint-style.js'

const HIGH_BIT = 1n << 63n

function describeGeneral(value: bigint, symbolize: Symbolizer): string {
  const symbol = value >= 0x1000n ? symbolize(value) : undefined
  if (symbol) return symbol
  return value >= HIGH_BIT ? String(value - (1n << 64n)) : String(value)
}

function stopLine(data: SnapshotData, thread: ThreadState): string {
  const stop = data.stop
  const where = stop && stop.thread === thread.index ? `, stopped at ${stop.location} (${stop.kind === 'signal' ? stop.signal : stop.kind})` : ''
  return `thread ${thread.index} (tid ${thread.tid})${where}`
}

/** `info registers`: the general registers; with `all`, every other register the snapshot holds, by group. */
export function renderRegisters(data: SnapshotData, thread: ThreadState, style: RenderStyle, symbolize: Symbolizer, all = false): string {
  const info = archInfo(data.arch)
  const general = info.general.filter((name) => thread.regs[name] !== undefined)
  const rest = all ? Object.keys(thread.regs).filter((name) => !info.general.includes(name)) : []
  const width = Math.max(...[...general, ...rest].map((n) => n.length))
  const lines = [paint(style, 'bold', stopLine(data, thread))]
  for (const name of general) {
    const value = thread.regs[name] ?? 0n
    lines.push(`${paint(style, 'cyan', name.padEnd(width))}  ${hexWidth(value, 64)}  ${describeGeneral(value, symbolize)}`)
  }
  let group: string | undefined
  for (const name of rest) {
    const reg = info.registerInfo(name)
    const value = thread.regs[name] ?? 0n
    if (reg?.group !== group) {
      group = reg?.group
      lines.push(paint(style, 'dim', `-- ${group ?? 'other'}`))
    }
    lines.push(`${paint(style, 'cyan', name.padEnd(width))}  ${value === 0n ? '0x0' : hexWidth(value, reg?.bits ?? 64)}`)
  }
  return `${lines.join('\n')}\n`
}

/** `info proc mappings`, with what the snapshot holds of each map. */
export function renderMaps(data: SnapshotData, style: RenderStyle): string {
  const rows = data.maps.map((m) => {
    const held = m.content ? 'held' : m.unreadable ? `unreadable: ${m.unreadable}` : ''
    return [hexWidth(m.start, 48), hexWidth(m.end, 48), m.perms, `0x${m.offset.toString(16)}`, `0x${(m.end - m.start).toString(16)}`, m.path, held]
  })
  const header = ['start', 'end', 'perms', 'offset', 'size', 'path', `contents (${data.level})`]
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (cells: readonly string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ').trimEnd()
  return `${[paint(style, 'bold', line(header)), ...rows.map(line)].join('\n')}\n`
}

/** `bt`: one line per frame, newest first. */
export function renderBacktrace(frames: readonly Frame[], style: RenderStyle): string {
  const width = String(frames.length - 1).length
  const lines = frames.map((f, i) => `#${String(i).padEnd(width)}  ${hexWidth(f.pc, 64)} in ${paint(style, 'yellow', f.location)}${f.via === 'fp' ? paint(style, 'dim', '  [frame pointer]') : ''}`)
  return `${lines.join('\n')}\n`
}

/** A hexdump: 16 bytes a line, address and symbolized start, ASCII column. */
export function renderMemory(address: bigint, bytes: Uint8Array, style: RenderStyle, symbolize: Symbolizer): string {
  const where = symbolize(address)
  const lines = [paint(style, 'bold', `${bytes.length} bytes at ${hexWidth(address, 64)}${where ? ` (${where})` : ''}`)]
  for (let at = 0; at < bytes.length; at += 16) {
    const row = bytes.subarray(at, at + 16)
    const hexes = Array.from(row, (b) => b.toString(16).padStart(2, '0'))
    const left = hexes.slice(0, 8).join(' ')
    const right = hexes.slice(8).join(' ')
    const text = Array.from(row, (b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.')).join('')
    lines.push(`${paint(style, 'cyan', hexWidth(address + BigInt(at), 64))}  ${left.padEnd(23)}  ${right.padEnd(23)}  ${paint(style, 'dim', `|${text}|`)}`)
  }
  return `${lines.join('\n')}\n`
}
