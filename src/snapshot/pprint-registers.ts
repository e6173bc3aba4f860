// `info registers` for one thread of a snapshot: the general registers with symbols, decimals and
// decoded flags; with `all`, gdb's `info all-registers`: x87, SSE, vector, mask and control registers.
import { archInfo } from './arch-info.js'
import type { SnapshotArch, SnapshotData, ThreadState } from './model.js'
import { describeStop, hexLanes, hexWidth, paint, type RenderStyle, type Symbolizer } from './pprint-style.js'

const TWO63 = 1n << 63n
const TWO64 = 1n << 64n
const TWO32 = 1n << 32n

type Flags = readonly (readonly [bit: number, name: string])[]

const EFLAGS: Flags = [
  [0, 'CF'],
  [2, 'PF'],
  [4, 'AF'],
  [6, 'ZF'],
  [7, 'SF'],
  [8, 'TF'],
  [9, 'IF'],
  [10, 'DF'],
  [11, 'OF'],
  [14, 'NT'],
  [16, 'RF'],
  [17, 'VM'],
  [18, 'AC'],
  [19, 'VIF'],
  [20, 'VIP'],
  [21, 'ID'],
]
const MXCSR: Flags = [
  [0, 'IE'],
  [1, 'DE'],
  [2, 'ZE'],
  [3, 'OE'],
  [4, 'UE'],
  [5, 'PE'],
  [6, 'DAZ'],
  [7, 'IM'],
  [8, 'DM'],
  [9, 'ZM'],
  [10, 'OM'],
  [11, 'UM'],
  [12, 'PM'],
  [15, 'FZ'],
]
const PSTATE: Flags = [
  [0, 'SP'],
  [6, 'F'],
  [7, 'I'],
  [8, 'A'],
  [9, 'D'],
  [12, 'SSBS'],
  [20, 'IL'],
  [21, 'SS'],
  [22, 'PAN'],
  [23, 'UAO'],
  [24, 'DIT'],
  [25, 'TCO'],
  [28, 'V'],
  [29, 'C'],
  [30, 'Z'],
  [31, 'N'],
]

/** gdb's flag view: '[ PF ZF IF ]'; `prefix` goes first (aarch64's 'EL=0'). */
function flagsText(value: bigint, flags: Flags, prefix: string[] = []): string {
  const set = flags.filter(([bit]) => ((value >> BigInt(bit)) & 1n) === 1n).map(([, name]) => name)
  return `[ ${[...prefix, ...set].join(' ')}${prefix.length + set.length ? ' ' : ''}]`
}

/** The value of an x87 80-bit register as a JS number ('1.5', '-inf', 'nan'), undefined when out of double range. */
export function float80(raw: bigint): string | undefined {
  const sign = (raw >> 79n) & 1n ? '-' : ''
  const exponent = Number((raw >> 64n) & 0x7fffn)
  const mantissa = raw & (TWO64 - 1n)
  if (mantissa === 0n && exponent === 0) return `${sign}0`
  if (exponent === 0x7fff) return (mantissa & (TWO63 - 1n)) === 0n ? `${sign}inf` : 'nan'
  const power = (exponent === 0 ? 1 : exponent) - 16383 - 63
  const half = Math.trunc(power / 2)
  const value = Number(mantissa) * 2 ** half * 2 ** (power - half)
  return value === 0 || !Number.isFinite(value) ? undefined : `${sign}${value}`
}

/** What follows a general register's hex: decoded flags, a symbol for a pointer, a decimal for a small value. */
function generalRow(arch: SnapshotArch, name: string, value: bigint, symbolize: Symbolizer): Row {
  const row = (note: string, symbol = false): Row => ({ label: name, value: hexWidth(value, 64), note, symbol })
  if (arch === 'x86_64' && name === 'eflags') return row(flagsText(value, EFLAGS))
  if (arch === 'aarch64' && name === 'pstate') return row(flagsText(value, PSTATE, [`EL=${(value >> 2n) & 3n}`]))
  const symbol = value >= 0x1000n ? symbolize(value) : undefined
  if (symbol !== undefined) return row(symbol, true)
  const signed = value >= TWO63 ? value - TWO64 : value
  return row(signed > -TWO32 && signed < TWO32 ? String(signed) : '')
}

interface Row {
  readonly label: string
  readonly value: string
  readonly note: string
  /** The note is a symbolized pointer. */
  readonly symbol?: boolean
}

interface Section {
  readonly title: string
  readonly rows: readonly Row[]
}

/** One name per vector register index, at the widest view present: zmmN over ymmN over xmmN. */
function widestVectors(regs: ThreadState['regs']): string[] {
  const names: string[] = []
  for (let i = 0; i < 32; i++) {
    const name = ['zmm', 'ymm', 'xmm'].map((p) => `${p}${i}`).find((n) => regs[n] !== undefined)
    if (name) names.push(name)
  }
  return names
}

/** 'zmm', 12 for 'zmm12'; [name, -1] for a name without an index. */
function splitIndex(name: string): [string, number] {
  const m = /^([a-z]+)(\d+)$/.exec(name)
  return m ? [m[1] ?? name, Number(m[2])] : [name, -1]
}

/** Rows of a register family (v0-v31, zmm0-31, k0-7): zero registers as '0', runs of them as 'zmm8-31'. */
function collapsedRows(names: readonly string[], regs: ThreadState['regs'], bits: (name: string) => number): Row[] {
  const rows: Row[] = []
  for (let i = 0; i < names.length; i++) {
    const name = names[i] ?? ''
    const value = regs[name] ?? 0n
    if (value !== 0n) {
      rows.push({ label: name, value: hexLanes(value, bits(name)), note: '' })
      continue
    }
    const [prefix, first] = splitIndex(name)
    let last = first
    while (first >= 0 && i + 1 < names.length) {
      const next = names[i + 1] ?? ''
      const [p, n] = splitIndex(next)
      if (regs[next] !== 0n || p !== prefix || n !== last + 1) break
      last = n
      i++
    }
    rows.push({ label: last > first ? `${name}-${last}` : name, value: '0', note: '' })
  }
  return rows
}

const X87 = ['st0', 'st1', 'st2', 'st3', 'st4', 'st5', 'st6', 'st7', 'fcw', 'fsw', 'ftw', 'fop', 'fip', 'fdp']

/** The registers beyond the general ones, grouped as gdb's `info all-registers` shows them. */
function otherSections(arch: SnapshotArch, regs: ThreadState['regs']): Section[] {
  const info = archInfo(arch)
  const bits = (name: string): number => info.registerInfo(name)?.bits ?? 64
  const has = (name: string): boolean => regs[name] !== undefined
  const used = new Set(info.general)
  const take = (names: readonly string[]): string[] => {
    const present = names.filter(has)
    present.forEach((n) => used.add(n))
    return present
  }
  const plainRows = (names: readonly string[], note: (name: string, value: bigint) => string = () => ''): Row[] =>
    names.map((n) => ({ label: n, value: hexLanes(regs[n] ?? 0n, bits(n)), note: note(n, regs[n] ?? 0n) }))
  const sections: Section[] = []
  const add = (title: string, rows: readonly Row[]): void => {
    if (rows.length) sections.push({ title, rows })
  }
  if (arch === 'x86_64') {
    add(
      'x87',
      plainRows(take(X87), (n, v) => (n.startsWith('st') ? (float80(v) ?? '') : '')),
    )
    add(
      'sse',
      plainRows(take(['mxcsr', 'mxcsr_mask']), (n, v) => (n === 'mxcsr' ? flagsText(v, MXCSR) : '')),
    )
    const vectors = widestVectors(regs)
    for (let i = 0; i < 32; i++) take([`xmm${i}`, `ymm${i}`, `zmm${i}`])
    const widest = vectors.some((n) => n.startsWith('zmm'))
      ? 'zmm'
      : vectors.some((n) => n.startsWith('ymm'))
        ? 'ymm'
        : 'xmm'
    const note =
      widest === 'zmm'
        ? ' (xmmN, ymmN are the low 128, 256 bits of zmmN)'
        : widest === 'ymm'
          ? ' (xmmN is the low 128 bits of ymmN)'
          : ''
    add(`vector${note}`, collapsedRows(vectors, regs, bits))
    add('mask', collapsedRows(take(Array.from({ length: 8 }, (_, i) => `k${i}`)), regs, bits))
    add('control', plainRows(take(['pkru'])))
  } else {
    add('vector', [
      ...collapsedRows(take(Array.from({ length: 32 }, (_, i) => `v${i}`)), regs, bits),
      ...plainRows(take(['fpsr', 'fpcr'])),
    ])
    add('system', plainRows(take(['tpidr_el0'])))
  }
  const rest = Object.keys(regs)
    .filter((n) => !used.has(n))
    .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }))
  add('other', plainRows(rest))
  return sections
}

/**
 * `info registers` of one thread: a header (thread, tid, and the stop when this thread stopped),
 * then each general register as name, 0x + 16 hex digits, and a symbol, a decimal or decoded flags.
 * With `all`, every other register the thread holds follows, by group, at its full width (vectors
 * wider than 64 bits with '_' between 64-bit lanes). x86 vector registers show once, at the widest
 * view held (zmmN, else ymmN, else xmmN); zero vector and mask registers show as '0', runs of them
 * collapsed ('zmm8-31  0'). x87 registers add their value as a number.
 */
export function renderRegisters(
  data: SnapshotData,
  thread: ThreadState,
  style: RenderStyle,
  symbolize: Symbolizer,
  all = false,
): string {
  const info = archInfo(data.arch)
  const general = info.general.filter((name) => thread.regs[name] !== undefined)
  const generalRows = general.map((name) => generalRow(data.arch, name, thread.regs[name] ?? 0n, symbolize))
  const sections: Section[] = [{ title: '', rows: generalRows }, ...(all ? otherSections(data.arch, thread.regs) : [])]
  const width = Math.max(0, ...sections.flatMap((s) => s.rows.map((r) => r.label.length)))
  const stop = data.stop && data.stop.thread === thread.index ? `: ${describeStop(data.stop)}` : ''
  const lines = [paint(style, 'bold', `thread ${thread.index} (tid ${thread.tid})${stop}`)]
  for (const section of sections) {
    if (section.title) lines.push(paint(style, 'dim', `-- ${section.title}`))
    for (const r of section.rows) {
      const note = r.note === '' ? '' : `  ${r.symbol ? paint(style, 'yellow', r.note) : r.note}`
      lines.push(`${paint(style, 'cyan', r.label)}${' '.repeat(width - r.label.length)}  ${r.value}${note}`)
    }
  }
  return `${lines.join('\n')}\n`
}
