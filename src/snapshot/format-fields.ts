// Strict, hand-written reading of parsed JSON: every field checked for its type, every failure
// named by its JSON path ('snapshot.threads[0].regs.rax: expected a hex string'). Nothing is evaluated.

/** A field that is missing or of the wrong type, at `path`. */
export class FieldError extends Error {
  readonly path: string

  constructor(path: string, message: string) {
    super(`${path}: ${message}`)
    this.path = path
  }
}

/** Lowercase hex with a 0x prefix; a leading '-' for the (rare) negative value, so nothing is lossy. */
const HEX = /^-?0x[0-9a-f]+$/

export type Json = Readonly<Record<string, unknown>>

/** A JSON object with typed accessors that fail with the field's path. */
export class Fields {
  readonly path: string
  readonly value: Json

  constructor(value: unknown, path: string) {
    if (typeof value !== 'object' || value === null || Array.isArray(value))
      throw new FieldError(path, `expected an object, found ${describe(value)}`)
    this.value = value as Json
    this.path = path
  }

  private at(key: string): string {
    return `${this.path}.${key}`
  }

  has(key: string): boolean {
    return this.value[key] !== undefined
  }

  string(key: string): string {
    const v = this.value[key]
    if (typeof v !== 'string') throw new FieldError(this.at(key), `expected a string, found ${describe(v)}`)
    return v
  }

  int(key: string): number {
    const v = this.value[key]
    if (typeof v !== 'number' || !Number.isSafeInteger(v))
      throw new FieldError(this.at(key), `expected an integer, found ${describe(v)}`)
    return v
  }

  bool(key: string): boolean {
    const v = this.value[key]
    if (typeof v !== 'boolean') throw new FieldError(this.at(key), `expected true or false, found ${describe(v)}`)
    return v
  }

  hex(key: string): bigint {
    return hexValue(this.value[key], this.at(key))
  }

  oneOf<T extends string>(key: string, allowed: readonly T[]): T {
    const v = this.string(key)
    if (!(allowed as readonly string[]).includes(v))
      throw new FieldError(this.at(key), `expected one of ${allowed.join(', ')}, found '${v}'`)
    return v as T
  }

  object(key: string): Fields {
    return new Fields(this.value[key], this.at(key))
  }

  /** The elements of an array field, each with its path. */
  array(key: string): Array<{ value: unknown; path: string }> {
    const v = this.value[key]
    if (!Array.isArray(v)) throw new FieldError(this.at(key), `expected an array, found ${describe(v)}`)
    return v.map((value: unknown, i) => ({ value, path: `${this.at(key)}[${i}]` }))
  }

  objects(key: string): Fields[] {
    return this.array(key).map((e) => new Fields(e.value, e.path))
  }

  strings(key: string): string[] {
    return this.array(key).map((e) => {
      if (typeof e.value !== 'string') throw new FieldError(e.path, `expected a string, found ${describe(e.value)}`)
      return e.value
    })
  }
}

/** '-0x' and 256 digits: room for twice the widest register (zmm, 512 bits); a longer number is no value of ours. */
const MAX_HEX_LENGTH = 259

export function hexValue(v: unknown, path: string): bigint {
  if (typeof v === 'string' && v.length > MAX_HEX_LENGTH)
    throw new FieldError(path, `a hex string of ${v.length} characters, longer than any value a snapshot holds`)
  if (typeof v !== 'string' || !HEX.test(v))
    throw new FieldError(path, `expected a hex string ('0x1f'), found ${describe(v)}`)
  // BigInt() parses '0x..' but not '-0x..'.
  return v.startsWith('-') ? -BigInt(v.slice(1)) : BigInt(v)
}

export function toHex(value: bigint): string {
  return value < 0n ? `-0x${(-value).toString(16)}` : `0x${value.toString(16)}`
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing'
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'an array'
  if (typeof v === 'string') return v.length > 20 ? `the string '${v.slice(0, 20)}…'` : `the string '${v}'`
  if (typeof v === 'object' || typeof v === 'function') return 'an object'
  if (typeof v === 'number' || typeof v === 'boolean') return `${typeof v} ${String(v)}`
  return typeof v
}
