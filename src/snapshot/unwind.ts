// Backtraces of a stopped thread: .eh_frame CFI first, the frame-pointer chain where no CFI covers the pc.
import {
  evaluateExpression,
  findUnwindRow,
  type ExpressionContext,
  type RegisterRule,
  type UnwindRow,
} from '../elf/eh-frame.js'
import type { ElfFile } from '../elf/index.js'
import { archInfo } from './arch-info.js'
import type { RegisterValues, SnapshotArch } from './model.js'

export interface UnwindModule {
  readonly name: string
  readonly start: bigint
  readonly end: bigint
  /** Run-time address minus link-time address. */
  readonly bias: bigint
  readonly elf: ElfFile
  /** The whole ELF image, for a module with no file to read its .eh_frame from (the vDSO, parsed from memory). */
  readonly bytes?: Uint8Array
}

export interface UnwindInput {
  /** Only 'x86_64' unwinds; other architectures return just frame 0. */
  readonly arch: SnapshotArch
  /** Full registers by name (rip, rsp, rbp, rbx, r12, ...). */
  readonly regs: RegisterValues
  readonly modules: readonly UnwindModule[]
  /** Reads bytes of the stopped process, or undefined when unmapped/unreadable. */
  readonly read: (address: bigint, length: number) => Uint8Array | undefined
  /** Default 256. */
  readonly maxFrames?: number
  /** Whether an address is in executable memory: a frame-pointer chain ends at a return address that is not. */
  readonly isCode?: (address: bigint) => boolean
}

export interface RawFrame {
  readonly pc: bigint
  /** How the frame was found: 'pc' (frame 0), 'cfi' (.eh_frame), 'fp' (frame-pointer chain). */
  readonly via: 'pc' | 'cfi' | 'fp'
  /** The frame's canonical frame address, when unwinding it computed one. */
  readonly cfa?: bigint
}

/** What unwinding needs of an architecture: DWARF register numbering and its frame-pointer convention. */
interface ArchRules {
  /** Register names by DWARF number. */
  readonly dwarf: readonly string[]
  /** DWARF numbers of the stack pointer and the frame pointer. */
  readonly sp: number
  readonly fp: number
  /** DWARF number that holds the pc itself (x86_64 rip, 16, also the return-address column), if any. */
  readonly pc: number | undefined
  /** The frame-pointer chain: the caller's fp at [fp], the return address at [fp + 8], the CFA at fp + 16. */
  readonly fpRecord: { readonly savedFp: bigint; readonly returnAddress: bigint; readonly cfa: bigint }
  /** Farthest a frame pointer may lie above the stack pointer and still look like a stack address. */
  readonly maxFpDistance: bigint
}

const X86_64: ArchRules = {
  dwarf: [
    'rax',
    'rdx',
    'rcx',
    'rbx',
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
  ],
  sp: 7,
  fp: 6,
  pc: 16,
  fpRecord: { savedFp: 0n, returnAddress: 8n, cfa: 16n },
  maxFpDistance: 64n << 20n,
}

/** aarch64 slots in here (x0-x30, sp 31; ra column 30; frame record [x29] = x29, [x29 + 8] = x30). */
const RULES: Partial<Record<SnapshotArch, ArchRules>> = { x86_64: X86_64 }

const U64 = (1n << 64n) - 1n

/** One frame's registers by DWARF number (undefined: unknown), its pc, and whether the pc is exact (not a return address). */
interface FrameState {
  readonly pc: bigint
  readonly regs: readonly (bigint | undefined)[]
  readonly exact: boolean
}

/** The result of unwinding one frame: its CFA, and its caller (undefined for the outermost frame). */
interface Step {
  readonly cfa: bigint
  readonly via: 'cfi' | 'fp'
  readonly caller: FrameState | undefined
  /** The frame just unwound was a signal trampoline: its caller's CFA may lie anywhere (sigaltstack). */
  readonly signal: boolean
}

/** Unwinds the stack from `input.regs`, newest frame first. Never throws: a bad read or garbage ends the trace. */
export function unwind(input: UnwindInput): RawFrame[] {
  // A snapshot loaded from disk may name an architecture this build does not know: no pc, no frames.
  const info = archInfo(input.arch) as ReturnType<typeof archInfo> | undefined
  const pc = info && input.regs[info.pc]
  if (pc === undefined) return []
  const rules = RULES[input.arch]
  const frames: { pc: bigint; via: RawFrame['via']; cfa?: bigint }[] = [{ pc, via: 'pc' }]
  if (!rules) return frames
  const max = Math.max(1, input.maxFrames ?? 256)
  let state: FrameState = { pc, regs: rules.dwarf.map((name) => input.regs[name]), exact: true }
  let previousCfa: bigint | undefined
  let afterSignal = false
  while (frames.length < max) {
    let step: Step | undefined
    try {
      step = stepCfi(input, rules, state) ?? stepFramePointer(input, rules, state)
    } catch {
      step = undefined
    }
    if (!step) break
    const frame = frames[frames.length - 1]
    if (frame) frame.cfa = step.cfa
    // A frame whose CFA is not above its callee's is garbage or a loop: show it, go no further.
    if (previousCfa !== undefined && step.cfa <= previousCfa && !afterSignal) break
    if (!step.caller || step.caller.pc === 0n) break
    frames.push({ pc: step.caller.pc, via: step.via })
    previousCfa = step.cfa
    afterSignal = step.signal
    state = step.caller
  }
  return frames
}

/** Unwinds one frame by the CFI row at its pc (pc - 1 for a return address); undefined when no usable row covers it. */
function stepCfi(input: UnwindInput, rules: ArchRules, state: FrameState): Step | undefined {
  const lookup = state.exact ? state.pc : state.pc - 1n
  const module = input.modules.find((m) => lookup >= m.start && lookup < m.end)
  if (!module) return undefined
  const row = rowAt(module, (lookup - module.bias) & U64)
  if (!row || row.unusable !== undefined) return undefined
  const context: ExpressionContext = {
    register: (n) => (n === rules.pc ? state.pc : state.regs[n]),
    read: (address, size) => readValue(input, address, size),
  }
  const cfa = computeCfa(row, context)
  if (cfa === undefined) return undefined
  const recover = (n: number): bigint | undefined => recoverRegister(row.registers.get(n), n, cfa, rules, context)
  const signal = row.signalFrame
  if (row.registers.get(row.returnAddressRegister)?.kind === 'undefined')
    return { cfa, via: 'cfi', caller: undefined, signal }
  const returnAddress = recover(row.returnAddressRegister)
  if (returnAddress === undefined) return { cfa, via: 'cfi', caller: undefined, signal }
  const regs = rules.dwarf.map((_, n) => (n === rules.pc ? returnAddress : recover(n)))
  return { cfa, via: 'cfi', caller: { pc: returnAddress, regs, exact: signal }, signal }
}

/** Rows by link-time address, per ELF file: 256 threads stopped at the same call sites run each CFA program once. */
const rows = new WeakMap<ElfFile, Map<bigint, UnwindRow | undefined>>()
/** Rows kept per file: a bound on memory, far above the distinct return addresses of any stop. */
const ROWS_PER_FILE = 4096

function rowAt(module: UnwindModule, vaddr: bigint): UnwindRow | undefined {
  let byAddress = rows.get(module.elf)
  if (!byAddress) rows.set(module.elf, (byAddress = new Map<bigint, UnwindRow | undefined>()))
  if (byAddress.has(vaddr)) return byAddress.get(vaddr)
  const row = findUnwindRow(module.elf, vaddr, module.bytes)
  if (byAddress.size >= ROWS_PER_FILE) byAddress.clear()
  byAddress.set(vaddr, row)
  return row
}

function computeCfa(row: UnwindRow, context: ExpressionContext): bigint | undefined {
  if (row.cfa.kind === 'expression') return evaluateExpression(row.cfa.expression, context)
  const base = context.register(row.cfa.register)
  return base === undefined ? undefined : (base + row.cfa.offset) & U64
}

/** The caller's value of register `n` under `rule`; no rule keeps the value (the stack pointer becomes the CFA). */
function recoverRegister(
  rule: RegisterRule | undefined,
  n: number,
  cfa: bigint,
  rules: ArchRules,
  context: ExpressionContext,
): bigint | undefined {
  switch (rule?.kind) {
    case undefined:
    case 'same-value':
      return n === rules.sp ? cfa : context.register(n)
    case 'undefined':
      return undefined
    case 'offset':
      return context.read((cfa + rule.offset) & U64, 8)
    case 'val-offset':
      return (cfa + rule.offset) & U64
    case 'register':
      return context.register(rule.register)
    case 'expression': {
      const address = evaluateExpression(rule.expression, context, cfa)
      return address === undefined ? undefined : context.read(address, 8)
    }
    case 'val-expression':
      return evaluateExpression(rule.expression, context, cfa)
  }
}

/** Unwinds one frame by the frame-pointer chain, when the frame pointer looks like an address on this stack. */
function stepFramePointer(input: UnwindInput, rules: ArchRules, state: FrameState): Step | undefined {
  const fp = state.regs[rules.fp]
  const sp = state.regs[rules.sp]
  if (fp === undefined || fp === 0n || fp % 8n !== 0n) return undefined
  if (sp !== undefined && (fp < sp || fp - sp > rules.maxFpDistance)) return undefined
  const savedFp = readValue(input, fp + rules.fpRecord.savedFp, 8)
  const returnAddress = readValue(input, fp + rules.fpRecord.returnAddress, 8)
  if (savedFp === undefined || returnAddress === undefined) return undefined
  // A return address outside executable memory is not one: the register was not a frame pointer.
  if (input.isCode && !input.isCode(returnAddress - 1n)) return undefined
  const cfa = fp + rules.fpRecord.cfa
  // Only the pc, stack pointer and frame pointer are known in the caller; the other registers could be anywhere.
  const regs = rules.dwarf.map((_, n) =>
    n === rules.sp ? cfa : n === rules.fp ? savedFp : n === rules.pc ? returnAddress : undefined,
  )
  return { cfa, via: 'fp', caller: { pc: returnAddress, regs, exact: false }, signal: false }
}

/** `size` bytes at `address` as a little-endian unsigned value; undefined when unreadable. */
function readValue(input: UnwindInput, address: bigint, size: number): bigint | undefined {
  if (address < 0n || address + BigInt(size) > U64 + 1n) return undefined
  let bytes: Uint8Array | undefined
  try {
    bytes = input.read(address, size)
  } catch {
    return undefined
  }
  if (!bytes || bytes.length < size) return undefined
  let value = 0n
  for (let i = size - 1; i >= 0; i--) value = (value << 8n) | BigInt(bytes[i] ?? 0)
  return value
}
