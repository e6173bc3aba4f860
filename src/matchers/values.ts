// How matchers compare and print values: registers as hex and decimal, bytes as hex pairs,
// numbers, bigints and asymmetric matchers (expect.any(BigInt)) accepted where a value is expected.
import type { MatcherState } from 'vitest'
import { ProcsnapError } from '../errors.js'

/** 0x2a (42); negative values of a register print as the register's two's complement too. */
export function showValue(value: bigint): string {
  return `0x${value.toString(16)} (${value})`
}

export function showBytes(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(' ')
}

/** The expected side as text: a number or bigint as showValue, anything else as Vitest prints it. */
export function showExpected(state: MatcherState, expected: unknown): string {
  if (typeof expected === 'bigint') return expected < 0n ? `${expected}` : showValue(expected)
  if (typeof expected === 'number') return expected < 0 ? `${expected}` : showValue(BigInt(expected))
  return state.utils.stringify(expected)
}

/**
 * A register value against a number, bigint or asymmetric matcher. A negative number is compared
 * with the register read as signed at its width: toHaveRegister('eax', -1) holds for 0xffffffff.
 */
export function registerMatches(state: MatcherState, actual: bigint, expected: unknown, bits: number): boolean {
  if (typeof expected === 'number') {
    if (!Number.isSafeInteger(expected))
      throw new ProcsnapError(
        'ERR_BAD_VALUE',
        `A register value must be an integer (a bigint, or a number up to 2^53), not ${expected}.`,
      )
    return registerMatches(state, actual, BigInt(expected), bits)
  }
  if (typeof expected === 'bigint')
    return expected < 0n ? BigInt.asIntN(bits, actual) === expected : actual === expected
  return state.equals(actual, expected)
}

/** The bytes a toHaveMemory expectation stands for: bytes, UTF-8 text, a 32-bit or (bigint) 64-bit little-endian integer. */
export function expectedBytes(expected: unknown): Uint8Array {
  if (expected instanceof Uint8Array) return expected
  if (
    Array.isArray(expected) &&
    expected.every((b) => Number.isInteger(b) && (b as number) >= 0 && (b as number) < 256)
  )
    return Uint8Array.from(expected as number[])
  if (typeof expected === 'string') return new TextEncoder().encode(expected)
  if (typeof expected === 'number' && Number.isInteger(expected)) {
    const out = Buffer.alloc(4)
    if (expected < 0) out.writeInt32LE(expected)
    else out.writeUInt32LE(expected)
    return new Uint8Array(out)
  }
  if (typeof expected === 'bigint') {
    const out = Buffer.alloc(8)
    out.writeBigUInt64LE(BigInt.asUintN(64, expected))
    return new Uint8Array(out)
  }
  throw new ProcsnapError(
    'ERR_BAD_ARGUMENT',
    'toHaveMemory expects bytes (Uint8Array or number[]), a string (UTF-8), a number (32-bit ' +
      'little-endian) or a bigint (64-bit little-endian).',
  )
}
