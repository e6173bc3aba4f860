// Pretty printing of a snapshot diff: a summary line first, then each change with the old value in
// red and the new one in green (when colors are on), symbolized.
import { archInfo } from './arch-info.js'
import type { MapChange, MemoryChange, SnapshotArch, SnapshotDiffData, SnapshotStop } from './model.js'
import { hexWidth, paint, type RenderStyle } from './pprint-style.js'

/** Bytes shown per side of a memory change before the rest is counted. */
const MAX_BYTES_SHOWN = 32

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`
}

/** '2 registers, 1 memory range, backtrace unchanged', or 'no differences'. */
export function diffSummary(d: SnapshotDiffData): string {
  if (d.isEmpty) return 'no differences'
  const parts: string[] = []
  if (d.stop) parts.push('stop')
  if (d.regs.length) parts.push(plural(d.regs.length, 'register'))
  if (d.memory.length) parts.push(plural(d.memory.length, 'memory range'))
  if (d.maps.length) parts.push(plural(d.maps.length, 'map'))
  if (d.threads.length) parts.push(plural(d.threads.length, 'thread'))
  parts.push(d.backtrace.length ? plural(d.backtrace.length, 'backtrace') : 'backtrace unchanged')
  return parts.join(', ')
}

function bytesHex(bytes: Uint8Array): string {
  const shown = Array.from(bytes.subarray(0, MAX_BYTES_SHOWN), (b) => b.toString(16).padStart(2, '0')).join(' ')
  return bytes.length > MAX_BYTES_SHOWN ? `${shown} … (${bytes.length} bytes)` : shown
}

function stopText(stop: SnapshotStop | undefined): string {
  if (!stop) return 'none'
  return `${stop.kind === 'signal' ? stop.signal : stop.kind} at ${stop.location} (thread ${stop.thread})`
}

function mapLine(c: MapChange, style: RenderStyle): string {
  const m = c.after ?? c.before
  const range = m ? `${hexWidth(m.start, 48)}-${hexWidth(m.end, 48)} ${m.perms}` : ''
  if (c.kind === 'added') return `  ${paint(style, 'green', `+ ${c.identity}`)}  ${range}`
  if (c.kind === 'removed') return `  ${paint(style, 'red', `- ${c.identity}`)}  ${range}`
  const fields = c.fields.map((f) => {
    if (f === 'perms') return `perms ${paint(style, 'red', c.before?.perms ?? '')} -> ${paint(style, 'green', c.after?.perms ?? '')}`
    if (f === 'size') return `size 0x${((c.before?.end ?? 0n) - (c.before?.start ?? 0n)).toString(16)} -> 0x${((c.after?.end ?? 0n) - (c.after?.start ?? 0n)).toString(16)}`
    return `${f} ${c.before?.buildId ?? '-'} -> ${c.after?.buildId ?? '-'}`
  })
  return `  ~ ${c.identity}  ${fields.join(', ')}`
}

function memoryLine(m: MemoryChange, style: RenderStyle): string {
  return `  ${paint(style, 'yellow', m.location)} ${paint(style, 'dim', `@ 0x${m.addressAfter.toString(16)}`)}: ${paint(style, 'red', bytesHex(m.before))} -> ${paint(style, 'green', bytesHex(m.after))}`
}

export function renderDiff(d: SnapshotDiffData, arch: SnapshotArch, style: RenderStyle): string {
  const lines = [paint(style, 'bold', diffSummary(d))]
  if (d.levelNote) lines.push(paint(style, 'dim', `(${d.levelNote})`))
  if (d.stop) lines.push('stop:', `  ${paint(style, 'red', stopText(d.stop.before))} -> ${paint(style, 'green', stopText(d.stop.after))}`)
  if (d.regs.length) {
    const threads = new Set(d.regs.map((r) => r.thread))
    const width = Math.max(...d.regs.map((r) => r.name.length))
    lines.push('registers:')
    for (const r of d.regs) {
      const bits = archInfo(arch).registerInfo(r.name)?.bits ?? 64
      const label = threads.size > 1 || r.thread !== 1 ? `thread ${r.thread} ` : ''
      lines.push(`  ${label}${r.name.padEnd(width)}  ${paint(style, 'red', hexWidth(r.before, bits))} -> ${paint(style, 'green', hexWidth(r.after, bits))}`)
    }
  }
  if (d.memory.length) lines.push('memory:', ...d.memory.map((m) => memoryLine(m, style)))
  if (d.maps.length) lines.push('maps:', ...d.maps.map((c) => mapLine(c, style)))
  if (d.threads.length) lines.push('threads:', ...d.threads.map((t) => `  ${t.kind === 'added' ? paint(style, 'green', `+ thread ${t.index}`) : paint(style, 'red', `- thread ${t.index}`)} (tid ${t.tid})`))
  for (const b of d.backtrace) {
    lines.push(`backtrace of thread ${b.thread}:`)
    lines.push(...b.before.map((f, i) => `  ${paint(style, 'red', `- #${i} ${f.location}`)}`))
    lines.push(...b.after.map((f, i) => `  ${paint(style, 'green', `+ #${i} ${f.location}`)}`))
  }
  return `${lines.join('\n')}\n`
}
