// Register access for one stopped thread: `regs.rax` reads, `regs.rax = 7n` writes through to the
// thread, aliases (`eax`, `al`, `ah`, `r8d`) read and write the bits they name, as gdb does.
import { ReadOnlyError, RegisterError, ValueError } from '../errors.js'
import type { Arch } from '../native/arch/index.js'
import type { X86_64RegisterName } from '../native/arch/x86_64.js'

/** The operations a register view needs from its thread. */
export interface RegisterSource {
  readonly arch: Arch
  /** The thread's register block, read on first use after each stop. */
  block(): BigUint64Array
  /** Writes the (modified) block back to the thread. */
  commit(): void
  /** An extended register (x87, SSE, AVX, AVX-512, ...), read from the thread; undefined if it has none by that name. */
  extendedRegister?(name: string): bigint | undefined
  /** Why the thread has no register `name` that its architecture can have (a CPU without it), or undefined. */
  explainMissing?(name: string): string | undefined
  /** Writes registers by name, general and extended, all checked before any is written (writeThreadRegisters). */
  writeRegisters?(values: Readonly<Record<string, bigint>>): void
}

type X86Alias =
  | 'eax'
  | 'ax'
  | 'al'
  | 'ah'
  | 'ebx'
  | 'bx'
  | 'bl'
  | 'bh'
  | 'ecx'
  | 'cx'
  | 'cl'
  | 'ch'
  | 'edx'
  | 'dx'
  | 'dl'
  | 'dh'
  | 'esi'
  | 'si'
  | 'sil'
  | 'edi'
  | 'di'
  | 'dil'
  | 'ebp'
  | 'bp'
  | 'bpl'
  | 'esp'
  | 'sp'
  | 'spl'
  | 'eip'
  | 'ip'
  | `r${8 | 9 | 10 | 11 | 12 | 13 | 14 | 15}${'d' | 'w' | 'b' | 'l'}`

type Index8 = 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7
type Index32 = Index8 | 8 | 9 | 10 | 11 | 12 | 13 | 14 | 15 | 16 | 17 | 18 | 19 | 20 | 21 | 22 | 23 | 24 | 25
type X86Extended =
  | `st${Index8}`
  | 'fcw'
  | 'fsw'
  | 'ftw'
  | 'fop'
  | 'fip'
  | 'fdp'
  | 'mxcsr'
  | 'mxcsr_mask'
  | `${'xmm' | 'ymm' | 'zmm'}${Index32 | 26 | 27 | 28 | 29 | 30 | 31}`
  | `k${Index8}`
  | 'pkru'

/**
 * Registers of a stopped thread by name, as bigint. Unknown names throw ERR_UNKNOWN_REGISTER, and
 * so do registers this CPU lacks (zmm16 without AVX-512). Extended registers (x87, SSE, AVX,
 * AVX-512, PKRU) are read from the thread at each access and written through at once.
 */
export type Registers = { [K in X86_64RegisterName | X86Alias | X86Extended]: bigint } & {
  /** Every full register as a plain object (a copy). */
  toJSON(): Record<string, bigint>
}

function registerIndex(arch: Arch): Map<string, number> {
  return new Map(arch.registers.map((name, i) => [name, i]))
}

const indexCache = new WeakMap<Arch, Map<string, number>>()

function indexOf(arch: Arch): Map<string, number> {
  let idx = indexCache.get(arch)
  if (!idx) {
    idx = registerIndex(arch)
    indexCache.set(arch, idx)
  }
  return idx
}

/** Levenshtein distance, for 'did you mean' on register names (all short). */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const row = [i]
    for (let j = 1; j <= b.length; j++) {
      row.push(
        Math.min((prev[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1)),
      )
    }
    prev = row
  }
  return prev[b.length] ?? 0
}

/** Transposed letters ('rxa' for 'rax'). */
function sameLetters(a: string, b: string): boolean {
  return [...a].sort().join('') === [...b].sort().join('')
}

/** ERR_UNKNOWN_REGISTER for `name`, with the names it is close to. */
export function unknownRegister(arch: Arch, name: string): RegisterError {
  const names = [...arch.registers, ...arch.aliases.keys()]
  const near = names
    .filter((n) => editDistance(n, name) <= 1 || (n.length === name.length && sameLetters(n, name)))
    .slice(0, 4)
  return new RegisterError(
    `Unknown register '${name}' on ` +
      `${arch.name}.${near.length ? ` Did you mean ${near.join(', ')}?` : ''} Known: ` +
      `${arch.registers.join(' ')}.`,
  )
}

function shown(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value)
  if (typeof value === 'bigint') return `${value}n`
  if (typeof value === 'object' && value !== null) return Array.isArray(value) ? 'an array' : 'an object'
  return String(value)
}

/**
 * The value to store in a register of `bits` bits: a bigint, or a JS number that is a safe integer.
 * A negative value is stored as its two's complement in `bits` bits; anything else is ERR_BAD_VALUE.
 */
export function registerValue(name: string, bits: number, value: unknown): bigint {
  if (typeof value === 'bigint' && value < 1n << BigInt(bits) && value >= 0n) return value // the common case, at once
  const accepts =
    `regs.${name} takes a bigint (regs.${name} = 0x2an) or a safe integer number (42); a ` +
    `negative value is stored as its two's complement in the register's ${bits} bits (-1 is ` +
    `0x${'f'.repeat(bits / 4)})`
  let big: bigint
  if (typeof value === 'bigint') big = value
  else if (typeof value === 'number' && Number.isSafeInteger(value)) big = BigInt(value)
  else if (typeof value === 'number' && Number.isInteger(value))
    throw new ValueError(
      `Cannot write ${value} to ${name}: it is beyond 2^53, where JS numbers lose precision. ` +
        `Write it as a bigint (a literal with the n suffix, or BigInt('…') of its digits). ` +
        `${accepts}.`,
    )
  else if (typeof value === 'number')
    throw new ValueError(`Cannot write ${shown(value)} to ${name}: it is not an integer. ${accepts}.`)
  else throw new ValueError(`Cannot write ${shown(value)} to ${name}. ${accepts}.`)
  const limit = 1n << BigInt(bits)
  if (big >= limit || big < -(limit >> 1n))
    throw new ValueError(
      `Cannot write ${typeof value === 'bigint' ? `0x${big.toString(16)}n` : String(value)} to ` +
        `${name}: it does not fit in ${bits} bits (from -0x${(limit >> 1n).toString(16)} to ` +
        `0x${(limit - 1n).toString(16)}).`,
    )
  return BigInt.asUintN(bits, big)
}

/** A Proxy over the source so that `regs.rax` and `regs.eax = 1n` work and typos fail loudly. */
export function createRegisters(source: RegisterSource): Registers {
  const { arch } = source
  const index = indexOf(arch)
  const read = (name: string): bigint => {
    const i = index.get(name)
    if (i !== undefined) return source.block()[i] ?? 0n
    const alias = arch.aliases.get(name)
    if (!alias) return readExtended(name)
    const full = source.block()[index.get(alias.base) ?? -1] ?? 0n
    return (full >> BigInt(alias.shift)) & ((1n << BigInt(alias.bits)) - 1n)
  }
  const readExtended = (name: string): bigint => {
    const value = source.extendedRegister?.(name)
    if (value !== undefined) return value
    const why = source.explainMissing?.(name)
    if (why) throw new RegisterError(`This thread has no register ${name}: ${why}.`)
    throw unknownRegister(arch, name)
  }
  const write = (name: string, value: unknown): void => {
    const i = index.get(name)
    const alias = i === undefined ? arch.aliases.get(name) : undefined
    if (name === 'mxcsr_mask')
      throw new ReadOnlyError(
        `regs.mxcsr_mask cannot be written: it says which MXCSR bits this CPU supports (XRSTOR ignores it). ` +
          `Write regs.mxcsr instead.`,
      )
    if (i === undefined && !alias && source.writeRegisters) {
      // Extended: its width is the encoder's to check; here only the kind of value.
      const big = typeof value === 'number' && Number.isSafeInteger(value) ? BigInt(value) : value
      source.writeRegisters({ [name]: typeof big === 'bigint' ? big : registerValue(name, 64, value) })
      return
    }
    if (i === undefined && !alias) throw unknownRegister(arch, name)
    const bits = alias ? alias.bits : 64
    const stored = registerValue(name, bits, value)
    const block = source.block()
    if (i !== undefined) {
      block[i] = stored
    } else if (alias) {
      const bi = index.get(alias.base) ?? 0
      const mask = ((1n << BigInt(bits)) - 1n) << BigInt(alias.shift)
      block[bi] = ((block[bi] ?? 0n) & ~mask) | ((stored << BigInt(alias.shift)) & mask)
    }
    source.commit()
  }
  const toJSON = (): Record<string, bigint> => Object.fromEntries(arch.registers.map((n) => [n, read(n)]))
  return new Proxy({} as Registers, {
    get(_t, prop) {
      if (prop === 'toJSON') return toJSON
      if (typeof prop !== 'string') return undefined
      if (prop === 'then') return undefined // not a thenable
      return read(prop)
    },
    set(_t, prop, value) {
      if (typeof prop !== 'string') return false
      write(prop, value)
      return true
    },
    has(_t, prop) {
      return typeof prop === 'string' && (index.has(prop) || arch.aliases.has(prop))
    },
    ownKeys() {
      return [...arch.registers]
    },
    getOwnPropertyDescriptor(_t, prop) {
      if (typeof prop !== 'string' || !index.has(prop)) return undefined
      return { enumerable: true, configurable: true, writable: true, value: read(prop) }
    },
  })
}
