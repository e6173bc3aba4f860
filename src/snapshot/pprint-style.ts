// Shared by the pretty printers: the color switch, plain ANSI painting, fixed-width hex and column padding.
import type { SnapshotStop } from './model.js'

export interface RenderStyle {
  readonly color: boolean
}

/** 'counter!bump+0x4' for an address inside a map, undefined elsewhere. */
export type Symbolizer = (address: bigint) => string | undefined

const CODES = { bold: 1, dim: 2, red: 31, green: 32, yellow: 33, blue: 34, magenta: 35, cyan: 36 } as const

export type Paint = keyof typeof CODES

/** Wraps text in an ANSI SGR code when the style has colors; the text unchanged otherwise (and when empty). */
export function paint(style: RenderStyle, color: Paint, text: string): string {
  return style.color && text !== '' ? `\x1b[${CODES[color]}m${text}\x1b[0m` : text
}

/**
 * Whether to print colors on `stream`: FORCE_COLOR decides when it is set and not empty ('0' and
 * 'false' turn colors off, anything else on); else a non-empty NO_COLOR turns them off (no-color.org);
 * else colors exactly when the stream is a TTY.
 */
export function shouldColor(stream: NodeJS.WritableStream | { readonly isTTY?: boolean }): boolean {
  const force = process.env.FORCE_COLOR
  if (force !== undefined && force !== '') return force !== '0' && force !== 'false'
  const noColor = process.env.NO_COLOR
  if (noColor !== undefined && noColor !== '') return false
  return 'isTTY' in stream && stream.isTTY === true
}

/** Hex of `bits` width, zero-padded: 0x000055555555513d for 64 bits, 0x037f for 16. */
export function hexWidth(value: bigint, bits: number): string {
  return `0x${value.toString(16).padStart(Math.ceil(bits / 4), '0')}`
}

/**
 * Hex of a vector register (128, 256, 512 bits), its 64-bit lanes separated by '_' (still a valid JS
 * bigint literal): 0x0123456789abcdef_fedcba9876543210 for 128 bits. Other widths (64, 80) as hexWidth.
 */
export function hexLanes(value: bigint, bits: number): string {
  const digits = value.toString(16).padStart(Math.ceil(bits / 4), '0')
  if (bits <= 64 || bits % 64 !== 0) return `0x${digits}`
  const lanes: string[] = []
  for (let end = digits.length; end > 0; end -= 16) lanes.unshift(digits.slice(Math.max(0, end - 16), end))
  return `0x${lanes.join('_')}`
}

/** Unpadded hex: 0x2, 0x555555558010. */
export function hexShort(value: bigint): string {
  return value < 0n ? `-0x${(-value).toString(16)}` : `0x${value.toString(16)}`
}

export type Align = 'left' | 'right'

/**
 * Lays out rows of cells as aligned columns two spaces apart; cells are plain text, painted after
 * padding by `color(row, column, text)` so escape codes never count toward a width. The last column
 * is not padded and lines carry no trailing spaces.
 */
export function columns(
  rows: readonly (readonly string[])[],
  align: readonly Align[],
  color: (row: number, column: number, text: string) => string = (_r, _c, t) => t,
): string[] {
  const widths: number[] = []
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)))
  return rows.map((row, r) => {
    const cells = row.map((cell, i) => {
      const last = i === row.length - 1
      const padded = align[i] === 'right' ? cell.padStart(widths[i] ?? 0) : last ? cell : cell.padEnd(widths[i] ?? 0)
      const lead = padded.slice(0, padded.length - padded.trimStart().length)
      const body = padded.trim()
      const trail = padded.slice(lead.length + body.length)
      return `${lead}${color(r, i, body)}${trail}`
    })
    return cells.join('  ').trimEnd()
  })
}

/** n word(s): '1 register', '2 registers'. */
export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`
}

/** 'breakpoint at counter!bump', 'SIGSEGV at counter!crash+0x4 (fault address 0x0)', 'launch at ld-linux-x86-64.so.2!_start'. */
export function describeStop(stop: SnapshotStop): string {
  if (stop.kind !== 'signal') return `${stop.kind} at ${stop.location}`
  const fault = stop.faultAddress !== undefined ? ` (fault address ${hexShort(stop.faultAddress)})` : ''
  return `${stop.signal} at ${stop.location}${fault}`
}
