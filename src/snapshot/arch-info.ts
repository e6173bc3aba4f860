// What an offline snapshot needs to know of each architecture it can hold: register names, widths,
// groups (for printing and for "compare only what both sides have"), aliases, and the key registers.
import { findNearNames } from '../elf/near.js'
import { RegisterError } from '../errors.js'
import type { SnapshotArch } from './model.js'

export type RegisterGroup =
  'general' | 'segment' | 'x87' | 'sse' | 'avx' | 'avx512' | 'mask' | 'vector' | 'control' | 'other'

/** A narrower view of a full register: x86 `eax` is bits 0-31 of `rax`, `ah` bits 8-15; aarch64 `w0` of `x0`. */
export interface AliasInfo {
  readonly base: string
  readonly bits: 8 | 16 | 32
  readonly shift: 0 | 8
}

export interface ArchInfo {
  readonly name: SnapshotArch
  readonly pc: string
  readonly sp: string
  readonly fp: string
  /** General-purpose registers in display order (gdb's `info registers` order). */
  readonly general: readonly string[]
  readonly aliases: ReadonlyMap<string, AliasInfo>
  /** Width in bits and group of a register name, or undefined for a name this arch does not have. */
  registerInfo(name: string): { bits: number; group: RegisterGroup } | undefined
}

function x86Aliases(): Map<string, AliasInfo> {
  const map = new Map<string, AliasInfo>()
  for (const x of ['a', 'b', 'c', 'd']) {
    map.set(`e${x}x`, { base: `r${x}x`, bits: 32, shift: 0 })
    map.set(`${x}x`, { base: `r${x}x`, bits: 16, shift: 0 })
    map.set(`${x}l`, { base: `r${x}x`, bits: 8, shift: 0 })
    map.set(`${x}h`, { base: `r${x}x`, bits: 8, shift: 8 })
  }
  for (const x of ['si', 'di', 'bp', 'sp']) {
    map.set(`e${x}`, { base: `r${x}`, bits: 32, shift: 0 })
    map.set(x, { base: `r${x}`, bits: 16, shift: 0 })
    map.set(`${x}l`, { base: `r${x}`, bits: 8, shift: 0 })
  }
  for (let i = 8; i <= 15; i++) {
    map.set(`r${i}d`, { base: `r${i}`, bits: 32, shift: 0 })
    map.set(`r${i}w`, { base: `r${i}`, bits: 16, shift: 0 })
    map.set(`r${i}b`, { base: `r${i}`, bits: 8, shift: 0 })
    map.set(`r${i}l`, { base: `r${i}`, bits: 8, shift: 0 })
  }
  map.set('eip', { base: 'rip', bits: 32, shift: 0 })
  map.set('ip', { base: 'rip', bits: 16, shift: 0 })
  return map
}

/** x86_64 general registers in the order people read them (gdb's): the pretty printer's, the crash report's. */
export const X86_GENERAL = [
  'rax',
  'rbx',
  'rcx',
  'rdx',
  'rsi',
  'rdi',
  'rbp',
  'rsp',
  'r8',
  'r9',
  'r10',
  'r11',
  'r12',
  'r13',
  'r14',
  'r15',
  'rip',
  'eflags',
  'cs',
  'ss',
  'ds',
  'es',
  'fs',
  'gs',
  'fs_base',
  'gs_base',
  'orig_rax',
]
const X86_SEGMENT = new Set(['cs', 'ss', 'ds', 'es', 'fs', 'gs', 'fs_base', 'gs_base'])

function x86RegisterInfo(name: string): { bits: number; group: RegisterGroup } | undefined {
  if (X86_SEGMENT.has(name)) return { bits: 64, group: 'segment' }
  if (X86_GENERAL.includes(name)) return { bits: 64, group: 'general' }
  if (/^st[0-7]$/.test(name)) return { bits: 80, group: 'x87' }
  if (/^(fcw|fsw|ftw|fop)$/.test(name)) return { bits: 16, group: 'x87' }
  if (/^(fip|fdp)$/.test(name)) return { bits: 64, group: 'x87' }
  if (/^(mxcsr|mxcsr_mask)$/.test(name)) return { bits: 32, group: 'sse' }
  const vec = /^(xmm|ymm|zmm)(\d+)$/.exec(name)
  if (vec && Number(vec[2]) < 32) {
    const bits = vec[1] === 'xmm' ? 128 : vec[1] === 'ymm' ? 256 : 512
    const group: RegisterGroup = vec[1] === 'zmm' || Number(vec[2]) >= 16 ? 'avx512' : vec[1] === 'ymm' ? 'avx' : 'sse'
    return { bits, group }
  }
  if (/^k[0-7]$/.test(name)) return { bits: 64, group: 'mask' }
  if (name === 'pkru') return { bits: 32, group: 'control' }
  return undefined
}

const A64_GENERAL = [...Array.from({ length: 31 }, (_, i) => `x${i}`), 'sp', 'pc', 'pstate']

function a64Aliases(): Map<string, AliasInfo> {
  const map = new Map<string, AliasInfo>()
  for (let i = 0; i < 31; i++) map.set(`w${i}`, { base: `x${i}`, bits: 32, shift: 0 })
  return map
}

function a64RegisterInfo(name: string): { bits: number; group: RegisterGroup } | undefined {
  if (A64_GENERAL.includes(name)) return { bits: 64, group: 'general' }
  const v = /^v(\d+)$/.exec(name)
  if (v && Number(v[1]) < 32) return { bits: 128, group: 'vector' }
  if (name === 'fpsr' || name === 'fpcr') return { bits: 32, group: 'vector' }
  if (name === 'tpidr_el0') return { bits: 64, group: 'other' }
  return undefined
}

const ARCHES: Record<SnapshotArch, ArchInfo> = {
  x86_64: {
    name: 'x86_64',
    pc: 'rip',
    sp: 'rsp',
    fp: 'rbp',
    general: X86_GENERAL,
    aliases: x86Aliases(),
    registerInfo: x86RegisterInfo,
  },
  aarch64: {
    name: 'aarch64',
    pc: 'pc',
    sp: 'sp',
    fp: 'x29',
    general: A64_GENERAL,
    aliases: a64Aliases(),
    registerInfo: a64RegisterInfo,
  },
}

export function archInfo(arch: SnapshotArch): ArchInfo {
  return ARCHES[arch]
}

export function isSnapshotArch(name: string): name is SnapshotArch {
  return name === 'x86_64' || name === 'aarch64'
}

const range = (prefix: string, n: number): string[] => Array.from({ length: n }, (_, i) => `${prefix}${i}`)

const OTHER_NAMES: Record<SnapshotArch, readonly string[]> = {
  x86_64: [
    ...range('st', 8),
    ...['fcw', 'fsw', 'ftw', 'fop', 'fip', 'fdp', 'mxcsr', 'mxcsr_mask', 'pkru'],
    ...range('xmm', 32),
    ...range('ymm', 32),
    ...range('zmm', 32),
    ...range('k', 8),
  ],
  aarch64: [...range('v', 32), 'fpsr', 'fpcr', 'tpidr_el0'],
}

/** An unknown register name, with the near names of this architecture ('rxa' suggests 'rax'). */
export function unknownRegister(arch: SnapshotArch, name: string): RegisterError {
  const info = archInfo(arch)
  const names = [...info.general, ...info.aliases.keys(), ...OTHER_NAMES[arch]]
  const letters = (n: string): string => [...n.toLowerCase()].sort().join('')
  const transposed = names.filter((n) => letters(n) === letters(name)) // 'rxa' for 'rax'
  const near = [...new Set([...transposed, ...findNearNames({ names, lower: names }, name.toLowerCase(), 4)])].slice(
    0,
    4,
  )
  const hint = near.length > 0 ? ` Did you mean ${near.join(', ')}?` : ''
  return new RegisterError(
    `Unknown register '${name}' on ${arch}.${hint} Registers are named as gdb names them, in lower case (rax, eax, xmm0, st0, k1).`,
  )
}
