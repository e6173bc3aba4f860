// Bounds-checked, endian-aware reads over an ELF file's bytes: every overrun becomes ERR_ELF_CORRUPT, never a RangeError.
import { BinaryError } from '../errors.js'

/** A validated byte range [start, end) of the file, as array indices. */
export interface ByteSpan {
  start: number
  end: number
}

/** Reads fields of one ELF file; `is64` and `little` come from e_ident. */
export class ElfReader {
  readonly view: DataView
  readonly length: number
  private readonly text: Buffer

  constructor(
    readonly bytes: Uint8Array,
    readonly path: string,
    readonly is64: boolean,
    readonly little: boolean,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    this.length = bytes.byteLength
    this.text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  }

  /** The error to throw for a structural problem; `message` says what is wrong. */
  corrupt(message: string): BinaryError {
    return createCorruptError(this.path, message)
  }

  /** Checks that [offset, offset + size) lies inside the file and returns it as indices. */
  span(offset: bigint, size: bigint, what: string): ByteSpan {
    const length = BigInt(this.length)
    if (offset < 0n || size < 0n || offset > length || size > length - offset) {
      throw this.corrupt(
        `${what} (offset ${hex(offset)}, size ${hex(size)}) extends past the end of the file (${this.length} bytes)`,
      )
    }
    return { start: Number(offset), end: Number(offset + size) }
  }

  /** Checks that a table of `count` entries of `entsize` bytes at `offset` fits in the file. */
  table(offset: bigint, count: number, entsize: number, what: string): ByteSpan {
    return this.span(offset, BigInt(count) * BigInt(entsize), `${what} (${count} entries of ${entsize} bytes)`)
  }

  u8(offset: number): number {
    this.need(offset, 1)
    return this.view.getUint8(offset)
  }

  u16(offset: number): number {
    this.need(offset, 2)
    return this.view.getUint16(offset, this.little)
  }

  u32(offset: number): number {
    this.need(offset, 4)
    return this.view.getUint32(offset, this.little)
  }

  u64(offset: number): bigint {
    this.need(offset, 8)
    return this.view.getBigUint64(offset, this.little)
  }

  /** An address-sized field: 4 bytes in ELF32, 8 in ELF64. */
  word(offset: number): bigint {
    return this.is64 ? this.u64(offset) : BigInt(this.u32(offset))
  }

  /** The NUL-terminated string at `index` of a string table (cut at the table's end if unterminated). */
  string(table: ByteSpan, index: number, what: string): string {
    if (index >= table.end - table.start) {
      throw this.corrupt(`${what}: name offset ${index} is outside its string table (${table.end - table.start} bytes)`)
    }
    const start = table.start + index
    let end = this.bytes.indexOf(0, start)
    if (end < 0 || end > table.end) end = table.end
    return this.text.toString('utf8', start, end)
  }

  private need(offset: number, size: number): void {
    if (offset < 0 || offset + size > this.length) {
      throw this.corrupt(
        `a ${size}-byte field at offset ${hex(BigInt(offset))} is past the end of the file (${this.length} bytes)`,
      )
    }
  }
}

/** The ERR_ELF_CORRUPT error for `path`, with a hint on what to do. */
export function createCorruptError(path: string, message: string): BinaryError {
  return new BinaryError(
    'ERR_ELF_CORRUPT',
    path,
    `${path} is a corrupt or truncated ELF file: ${message}. Rebuild it or copy it again completely.`,
  )
}

export function hex(value: bigint): string {
  return `0x${value.toString(16)}`
}
