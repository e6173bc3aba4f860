// DWARF expressions as call-frame information uses them (DW_CFA_*expression): decode, check, and evaluate a DW_OP subset.
import { DwarfCursor, DwarfRangeError } from './dwarf-cursor.js'

/** One decoded operation: its opcode, operands, and the byte offsets where it starts and where the next one starts. */
interface Op {
  readonly code: number
  readonly a: bigint
  readonly b: bigint
  readonly at: number
  readonly next: number
}

/** What an expression may consult while it runs: register values of the frame and the stopped process's memory. */
export interface ExpressionContext {
  /** Value of DWARF register `n` in the frame being unwound, undefined when unknown. */
  readonly register: (n: number) => bigint | undefined
  /** `size` bytes at `address` as an unsigned little-endian value, undefined when unreadable. */
  readonly read: (address: bigint, size: number) => bigint | undefined
}

const U64 = (1n << 64n) - 1n
const MAX_STEPS = 10_000

const NAMES: Record<number, string> = {
  0x03: 'DW_OP_addr',
  0x18: 'DW_OP_xderef',
  0x90: 'DW_OP_regx',
  0x91: 'DW_OP_fbreg',
  0x93: 'DW_OP_piece',
  0x95: 'DW_OP_xderef_size',
  0x97: 'DW_OP_push_object_address',
  0x98: 'DW_OP_call2',
  0x99: 'DW_OP_call4',
  0x9a: 'DW_OP_call_ref',
  0x9b: 'DW_OP_form_tls_address',
  0x9c: 'DW_OP_call_frame_cfa',
  0x9d: 'DW_OP_bit_piece',
  0x9e: 'DW_OP_implicit_value',
  0x9f: 'DW_OP_stack_value',
  0xe0: 'DW_OP_GNU_push_tls_address',
}

/** Why `expression` cannot be evaluated here (an unsupported or malformed operation), or undefined when it can. */
export function checkExpression(expression: Uint8Array, addressSize: 4 | 8 = 8): string | undefined {
  try {
    decode(expression, addressSize)
    return undefined
  } catch (error) {
    return error instanceof Error ? error.message : String(error)
  }
}

/**
 * Evaluates `expression` and returns the value on top of the stack, or undefined when it is unsupported, malformed,
 * or needs a register or memory it cannot get. `initial` is pushed first (the CFA, for DW_CFA_expression rules).
 */
export function evaluateExpression(
  expression: Uint8Array,
  context: ExpressionContext,
  initial?: bigint,
  addressSize: 4 | 8 = 8,
): bigint | undefined {
  let ops: Op[]
  try {
    ops = decode(expression, addressSize)
  } catch {
    return undefined
  }
  const byOffset = new Map(ops.map((op, i) => [op.at, i]))
  const stack: bigint[] = initial === undefined ? [] : [initial & U64]
  let i = 0
  for (let steps = 0; i < ops.length; steps++) {
    if (steps > MAX_STEPS) return undefined
    const op = ops[i] as Op
    const jump = execute(op, stack, context)
    if (jump === null) return undefined
    if (jump === undefined) {
      i++
      continue
    }
    const target = jump === expression.length ? ops.length : byOffset.get(jump)
    if (target === undefined) return undefined
    i = target
  }
  return stack.length > 0 ? stack[stack.length - 1] : undefined
}

/** Runs one op on `stack`; returns a byte offset to jump to, undefined to go on, null to fail. */
function execute(op: Op, stack: bigint[], context: ExpressionContext): number | undefined | null {
  const c = op.code
  const pop = (): bigint | undefined => stack.pop()
  const push = (v: bigint): undefined => void stack.push(v & U64)
  if (c >= 0x30 && c <= 0x4f) return push(BigInt(c - 0x30))
  if ((c >= 0x70 && c <= 0x8f) || c === 0x92) {
    const value = context.register(c === 0x92 ? Number(op.a) : c - 0x70)
    if (value === undefined) return null
    return push(value + (c === 0x92 ? op.b : op.a))
  }
  switch (c) {
    case 0x08:
    case 0x09:
    case 0x0a:
    case 0x0b:
    case 0x0c:
    case 0x0d:
    case 0x0e:
    case 0x0f:
    case 0x10:
    case 0x11:
      return push(op.a)
    case 0x96: // nop
      return undefined
    case 0x12: {
      // dup
      const top = stack[stack.length - 1]
      return top === undefined ? null : push(top)
    }
    case 0x13: // drop
      return pop() === undefined ? null : undefined
    case 0x14: {
      // over
      const v = stack[stack.length - 2]
      return v === undefined ? null : push(v)
    }
    case 0x15: {
      // pick
      const v = stack[stack.length - 1 - Number(op.a)]
      return v === undefined ? null : push(v)
    }
    case 0x16: {
      // swap
      const a = pop(),
        b = pop()
      if (a === undefined || b === undefined) return null
      stack.push(a, b)
      return undefined
    }
    case 0x17: {
      // rot: top three (c b a) -> (a c b) with a on top before
      const a = pop(),
        b = pop(),
        d = pop()
      if (a === undefined || b === undefined || d === undefined) return null
      stack.push(a, d, b)
      return undefined
    }
    case 0x06:
    case 0x94: {
      // deref, deref_size
      const address = pop()
      if (address === undefined) return null
      const value = context.read(address, c === 0x06 ? 8 : Number(op.a))
      return value === undefined ? null : push(value)
    }
    case 0x19:
    case 0x1f:
    case 0x20: {
      // abs, neg, not
      const v = pop()
      if (v === undefined) return null
      const s = BigInt.asIntN(64, v)
      return push(c === 0x19 ? (s < 0n ? -s : s) : c === 0x1f ? -s : ~v)
    }
    case 0x23: {
      // plus_uconst
      const v = pop()
      return v === undefined ? null : push(v + op.a)
    }
    case 0x28: {
      // bra
      const v = pop()
      if (v === undefined) return null
      return v !== 0n ? op.next + Number(op.a) : undefined
    }
    case 0x2f: // skip
      return op.next + Number(op.a)
    default:
      return binary(c, stack)
  }
}

/** The two-operand ops: pops b (top) then a, pushes a OP b. */
function binary(c: number, stack: bigint[]): undefined | null {
  const b = stack.pop()
  const a = stack.pop()
  if (a === undefined || b === undefined) return null
  const sa = BigInt.asIntN(64, a)
  const sb = BigInt.asIntN(64, b)
  let r: bigint
  switch (c) {
    case 0x1a:
      r = a & b
      break
    case 0x1b:
      if (sb === 0n) return null
      r = sa / sb
      break
    case 0x1c:
      r = a - b
      break
    case 0x1d:
      if (b === 0n) return null
      r = a % b
      break
    case 0x1e:
      r = a * b
      break
    case 0x21:
      r = a | b
      break
    case 0x22:
      r = a + b
      break
    case 0x24:
      r = b >= 64n ? 0n : a << b
      break
    case 0x25:
      r = b >= 64n ? 0n : a >> b
      break
    case 0x26:
      r = sa >> (b >= 64n ? 63n : b)
      break
    case 0x27:
      r = a ^ b
      break
    case 0x29:
      r = sa === sb ? 1n : 0n
      break
    case 0x2a:
      r = sa >= sb ? 1n : 0n
      break
    case 0x2b:
      r = sa > sb ? 1n : 0n
      break
    case 0x2c:
      r = sa <= sb ? 1n : 0n
      break
    case 0x2d:
      r = sa < sb ? 1n : 0n
      break
    case 0x2e:
      r = sa !== sb ? 1n : 0n
      break
    default:
      return null
  }
  stack.push(r & ((1n << 64n) - 1n))
  return undefined
}

/** Decodes every op; throws (with the op's name) on an op outside the supported subset or a bad branch target. */
function decode(expression: Uint8Array, addressSize: 4 | 8): Op[] {
  const cur = new DwarfCursor(expression, 0, 0n, expression.length, true, addressSize)
  const ops: Op[] = []
  while (!cur.atEnd) {
    const at = cur.pos
    const code = cur.u8()
    let a = 0n
    let b = 0n
    if (
      inRange(code, 0x30, 0x4f) ||
      inRange(code, 0x12, 0x14) ||
      inRange(code, 0x16, 0x17) ||
      code === 0x06 ||
      inRange(code, 0x19, 0x22) ||
      inRange(code, 0x24, 0x27) ||
      inRange(code, 0x29, 0x2e) ||
      code === 0x96
    ) {
      // no operands
    } else if (inRange(code, 0x70, 0x8f)) a = cur.sleb()
    else if (code === 0x92) {
      a = cur.uleb()
      b = cur.sleb()
    } else if (code === 0x08 || code === 0x15) a = BigInt(cur.u8())
    else if (code === 0x09) a = BigInt.asIntN(8, BigInt(cur.u8()))
    else if (code === 0x0a) a = BigInt(cur.u16())
    else if (code === 0x0b) a = BigInt(cur.s16())
    else if (code === 0x0c) a = BigInt(cur.u32())
    else if (code === 0x0d) a = BigInt(cur.s32())
    else if (code === 0x0e) a = cur.u64()
    else if (code === 0x0f) a = cur.s64()
    else if (code === 0x10 || code === 0x23) a = cur.uleb()
    else if (code === 0x11) a = cur.sleb()
    else if (code === 0x28 || code === 0x2f) a = BigInt(cur.s16())
    else if (code === 0x94) {
      a = BigInt(cur.u8())
      if (a < 1n || a > 8n) throw new DwarfRangeError(`DW_OP_deref_size ${a} is not 1..8`)
    } else throw new DwarfRangeError(`unsupported ${NAMES[code] ?? `DW_OP 0x${code.toString(16)}`} at offset ${at}`)
    ops.push({ code, a, b, at, next: cur.pos })
  }
  const starts = new Set(ops.map((op) => op.at))
  for (const op of ops) {
    if (op.code !== 0x28 && op.code !== 0x2f) continue
    const target = op.next + Number(op.a)
    if (target !== expression.length && !starts.has(target))
      throw new DwarfRangeError(`branch at offset ${op.at} lands inside an operation`)
  }
  return ops
}

function inRange(code: number, low: number, high: number): boolean {
  return code >= low && code <= high
}
