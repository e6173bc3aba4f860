// x86_64: struct user_regs_struct from <sys/user.h>, read with PTRACE_GETREGS; int3 breakpoints.
import { PTRACE } from '../constants.js'
import { lastErrno, sys } from '../libc.js'
import type { Arch, RegisterAlias, RegisterDecoder } from './types.js'
import { applyX86_64, decodeX86_64 } from './x86_64-emulate.js'
import {
  explainMissingXState,
  readXState,
  readXStateArea,
  xsaveFeatures,
  writeXStateArea,
  xstateDecoders,
  type AreaDecoder,
} from './x86_64-xstate.js'
import { encodeXState } from './x86_64-xstate-encode.js'

const REGISTERS = [
  'r15',
  'r14',
  'r13',
  'r12',
  'rbp',
  'rbx',
  'r11',
  'r10',
  'r9',
  'r8',
  'rax',
  'rcx',
  'rdx',
  'rsi',
  'rdi',
  'orig_rax',
  'rip',
  'cs',
  'eflags',
  'rsp',
  'ss',
  'fs_base',
  'gs_base',
  'ds',
  'es',
  'fs',
  'gs',
] as const

export type X86_64RegisterName = (typeof REGISTERS)[number]

function legacyAliases(): Map<string, RegisterAlias> {
  const map = new Map<string, RegisterAlias>()
  for (const x of ['a', 'b', 'c', 'd']) {
    const base = `r${x}x`
    map.set(`e${x}x`, { base, bits: 32, shift: 0 })
    map.set(`${x}x`, { base, bits: 16, shift: 0 })
    map.set(`${x}l`, { base, bits: 8, shift: 0 })
    map.set(`${x}h`, { base, bits: 8, shift: 8 })
  }
  for (const x of ['si', 'di', 'bp', 'sp']) {
    const base = `r${x}`
    map.set(`e${x}`, { base, bits: 32, shift: 0 })
    map.set(x, { base, bits: 16, shift: 0 })
    map.set(`${x}l`, { base, bits: 8, shift: 0 })
  }
  for (let i = 8; i <= 15; i++) {
    const base = `r${i}`
    map.set(`r${i}d`, { base, bits: 32, shift: 0 })
    map.set(`r${i}w`, { base, bits: 16, shift: 0 })
    map.set(`r${i}b`, { base, bits: 8, shift: 0 })
    map.set(`r${i}l`, { base, bits: 8, shift: 0 })
  }
  map.set('eip', { base: 'rip', bits: 32, shift: 0 })
  map.set('ip', { base: 'rip', bits: 16, shift: 0 })
  return map
}

const GENERAL: readonly RegisterDecoder[] = REGISTERS.map((name, i) => ({
  name,
  decode: (raw) => raw.block[i] ?? 0n,
}))
const NO_AREA: readonly AreaDecoder[] = []
const decoders = new WeakMap<readonly AreaDecoder[], readonly RegisterDecoder[]>()

/** The general registers, then the xsave area's (one table per xsave layout). */
function registerDecoders(extended: Uint8Array | undefined): readonly RegisterDecoder[] {
  const area = extended ? xstateDecoders(extended) : NO_AREA
  let table = decoders.get(area)
  if (!table) {
    const fromArea = area.map((d): RegisterDecoder => ({
      name: d.name,
      decode: (raw) => (raw.extended ? d.decode(raw.extended) : 0n),
    }))
    table = [...GENERAL, ...fromArea]
    decoders.set(area, table)
  }
  return table
}

export const x86_64: Arch = {
  name: 'x86_64',
  elfMachine: 62,
  regsSize: REGISTERS.length * 8,
  registers: REGISTERS,
  aliases: legacyAliases(),
  pc: 'rip',
  sp: 'rsp',
  fp: 'rbp',
  returnValue: 'rax',
  args: ['rdi', 'rsi', 'rdx', 'rcx', 'r8', 'r9'],
  breakpoint: Uint8Array.of(0xcc),
  pcAfterTrap: 1n,
  readRegs(tid, into) {
    return Number(sys.ptraceBuf(PTRACE.GETREGS, tid, 0, into)) === 0 ? 0 : lastErrno()
  },
  writeRegs(tid, from) {
    return Number(sys.ptraceBuf(PTRACE.SETREGS, tid, 0, from)) === 0 ? 0 : lastErrno()
  },
  readExtendedRegs: readXState,
  readExtendedArea: readXStateArea,
  writeExtendedArea: writeXStateArea,
  encodeExtended: encodeXState,
  registerDecoders,
  explainMissingRegister: explainMissingXState,
  registerFeatures: xsaveFeatures,
  decodeEmulation: decodeX86_64,
  applyEmulation: applyX86_64,
}
