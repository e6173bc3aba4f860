// Runs DWARF call-frame instructions (DW_CFA_*) up to an address: the unwind row (CFA rule, register rules) in force there.
import { DwarfCursor } from './dwarf-cursor.js'

/** How to compute the canonical frame address: a register plus an offset, or a DWARF expression. */
export type CfaRule =
  | { readonly kind: 'register'; readonly register: number; readonly offset: bigint }
  | { readonly kind: 'expression'; readonly expression: Uint8Array }

/** Where the caller's value of a register is (DWARF register numbers; offsets are already multiplied by the data alignment). */
export type RegisterRule =
  | { readonly kind: 'undefined' }
  | { readonly kind: 'same-value' }
  /** Saved at CFA + offset. */
  | { readonly kind: 'offset'; readonly offset: bigint }
  /** The value is CFA + offset. */
  | { readonly kind: 'val-offset'; readonly offset: bigint }
  /** The value is in another register of this frame. */
  | { readonly kind: 'register'; readonly register: number }
  /** Saved at the address the expression computes (the CFA is pushed first). */
  | { readonly kind: 'expression'; readonly expression: Uint8Array }
  /** The value is what the expression computes (the CFA is pushed first). */
  | { readonly kind: 'val-expression'; readonly expression: Uint8Array }

/** The row being built: mutable while instructions run. */
export interface CfaState {
  cfa: CfaRule
  registers: Map<number, RegisterRule>
  /** aarch64 DW_CFA_AARCH64_negate_ra_state toggles (return address signed with PAC); unused on x86_64. */
  raSigned: boolean
}

export interface ProgramParams {
  readonly codeAlign: bigint
  readonly dataAlign: bigint
  /** The FDE pointer encoding (for DW_CFA_set_loc). */
  readonly fdeEncoding: number
}

export interface ProgramResult {
  /** The address the final row starts at. */
  readonly loc: bigint
  /** Where the next row would start (the first advance past `target`), undefined when the program ran out. */
  readonly next: bigint | undefined
  /** Set when an instruction could not be decoded: the row is unknown from there on. */
  readonly problem?: string
}

export function copyState(s: CfaState): CfaState {
  return { cfa: s.cfa, registers: new Map(s.registers), raSigned: s.raSigned }
}

/**
 * Runs the instructions in `cur` (up to its end) on `state`, starting at address `loc`, and stops before the first
 * advance that would move past `target` (undefined: run everything, as for a CIE's initial instructions).
 * `initial` holds the CIE's rules for DW_CFA_restore (undefined while running the CIE itself).
 */
export function runCfaProgram(
  cur: DwarfCursor,
  state: CfaState,
  initial: CfaState | undefined,
  loc: bigint,
  target: bigint | undefined,
  params: ProgramParams,
): ProgramResult {
  const stack: CfaState[] = []
  const { codeAlign, dataAlign } = params
  const setRule = (reg: number, rule: RegisterRule): void => void state.registers.set(reg, rule)
  const restore = (reg: number): void => {
    const rule = initial?.registers.get(reg)
    if (rule) state.registers.set(reg, rule)
    else state.registers.delete(reg)
  }
  const setCfa = (register: number, offset: bigint): void => void (state.cfa = { kind: 'register', register, offset })
  const cfaOffset = (offset: bigint): void => {
    if (state.cfa.kind === 'register') state.cfa = { ...state.cfa, offset }
  }
  try {
    while (!cur.atEnd) {
      const op = cur.u8()
      let advance: bigint | undefined
      let newLoc: bigint | undefined
      const high = op & 0xc0
      const low = op & 0x3f
      if (high === 0x40) advance = BigInt(low)
      else if (high === 0x80) setRule(low, { kind: 'offset', offset: cur.uleb() * dataAlign })
      else if (high === 0xc0) restore(low)
      else {
        switch (op) {
          case 0x00:
            break // nop
          case 0x01:
            newLoc = cur.pointer(params.fdeEncoding & 0x7f) ?? loc
            break // set_loc
          case 0x02:
            advance = BigInt(cur.u8())
            break
          case 0x03:
            advance = BigInt(cur.u16())
            break
          case 0x04:
            advance = BigInt(cur.u32())
            break
          case 0x05:
            setRule(cur.ulebNumber(), { kind: 'offset', offset: cur.uleb() * dataAlign })
            break
          case 0x06:
            restore(cur.ulebNumber())
            break
          case 0x07:
            setRule(cur.ulebNumber(), { kind: 'undefined' })
            break
          case 0x08:
            setRule(cur.ulebNumber(), { kind: 'same-value' })
            break
          case 0x09:
            setRule(cur.ulebNumber(), { kind: 'register', register: cur.ulebNumber() })
            break
          case 0x0a:
            stack.push(copyState(state))
            break // remember_state
          case 0x0b: {
            // restore_state
            const saved = stack.pop()
            if (!saved) return { loc, next: undefined, problem: 'DW_CFA_restore_state without a remembered state' }
            Object.assign(state, saved)
            break
          }
          case 0x0c:
            setCfa(cur.ulebNumber(), cur.uleb())
            break
          case 0x0d: {
            const register = cur.ulebNumber()
            state.cfa = { kind: 'register', register, offset: state.cfa.kind === 'register' ? state.cfa.offset : 0n }
            break
          }
          case 0x0e:
            cfaOffset(cur.uleb())
            break
          case 0x0f:
            state.cfa = { kind: 'expression', expression: cur.block(cur.ulebNumber()) }
            break
          case 0x10: {
            const reg = cur.ulebNumber()
            setRule(reg, { kind: 'expression', expression: cur.block(cur.ulebNumber()) })
            break
          }
          case 0x11:
            setRule(cur.ulebNumber(), { kind: 'offset', offset: cur.sleb() * dataAlign })
            break
          case 0x12:
            setCfa(cur.ulebNumber(), cur.sleb() * dataAlign)
            break
          case 0x13:
            cfaOffset(cur.sleb() * dataAlign)
            break
          case 0x14:
            setRule(cur.ulebNumber(), { kind: 'val-offset', offset: cur.uleb() * dataAlign })
            break
          case 0x15:
            setRule(cur.ulebNumber(), { kind: 'val-offset', offset: cur.sleb() * dataAlign })
            break
          case 0x16: {
            const reg = cur.ulebNumber()
            setRule(reg, { kind: 'val-expression', expression: cur.block(cur.ulebNumber()) })
            break
          }
          case 0x1d:
            advance = cur.u64()
            break // MIPS_advance_loc8
          case 0x2d:
            state.raSigned = !state.raSigned
            break // GNU_window_save / AARCH64_negate_ra_state
          case 0x2e:
            cur.uleb()
            break // GNU_args_size
          case 0x2f:
            setRule(cur.ulebNumber(), { kind: 'offset', offset: -cur.uleb() * dataAlign })
            break
          default:
            return { loc, next: undefined, problem: `unknown DW_CFA opcode 0x${op.toString(16)}` }
        }
      }
      if (advance !== undefined) newLoc = loc + advance * codeAlign
      if (newLoc !== undefined) {
        if (target !== undefined && newLoc > target) return { loc, next: newLoc }
        loc = newLoc
      }
    }
  } catch (error) {
    return { loc, next: undefined, problem: error instanceof Error ? error.message : String(error) }
  }
  return { loc, next: undefined }
}
