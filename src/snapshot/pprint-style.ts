// Shared by the pretty printers: the color switch, ANSI painting, fixed-width hex.

export interface RenderStyle {
  readonly color: boolean
}

/** 'counter!bump+0x4' for an address inside a map, undefined elsewhere. */
export type Symbolizer = (address: bigint) => string | undefined


const CODES = { bold: 1, dim: 2, red: 31, green: 32, yellow: 33, cyan: 36 } as const

/** Wraps text in an ANSI color when the style has colors; plain text otherwise. */
export function paint(style: RenderStyle, color: keyof typeof CODES, text: string): string {
  return style.color ? `\x1b[${CODES[color]}m${text}\x1b[0m` : text
}

/** Colors when FORCE_COLOR says so (anything but '0'/'false'), never with NO_COLOR, else on a TTY. */
export function shouldColor(stream: { readonly isTTY?: boolean }): boolean {
  const force = process.env.FORCE_COLOR
  if (force !== undefined) return force !== '0' && force !== 'false'
  if (process.env.NO_COLOR) return false
  return stream.isTTY === true
}

/** Hex of `bits` width, zero-padded: 0x000055555555513d for 64 bits. */
export function hexWidth(value: bigint, bits: number): string {
  return `0x${value.toString(16).padStart(Math.ceil(bits / 4), '0')}`
}
