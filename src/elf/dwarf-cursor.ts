// A bounds-checked cursor over DWARF call-frame bytes: fixed-size and LEB128 integers, and DW_EH_PE_* encoded pointers.

/** A read past the end of the bytes being decoded: the CFI is truncated or corrupt. */
export class DwarfRangeError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'DwarfRangeError'
  }
}

export const DW_EH_PE_omit = 0xff
export const DW_EH_PE_indirect = 0x80

/** Bases for the DW_EH_PE_* applications other than pcrel (which uses the field's own address). */
export interface PointerBases {
  /** DW_EH_PE_datarel: the start of .eh_frame_hdr there, else .got (unsupported outside the header). */
  readonly datarel?: bigint
  readonly textrel?: bigint
  readonly funcrel?: bigint
}

const U64 = (1n << 64n) - 1n

export class DwarfCursor {
  pos: number
  private readonly view: DataView

  /**
   * `baseAddr` is the link-time address of bytes[0] (for pcrel pointers); `end` bounds the reads.
   * `addressSize` is the width of DW_EH_PE_absptr (8 in ELF64, 4 in ELF32).
   */
  constructor(
    readonly bytes: Uint8Array,
    pos: number,
    readonly baseAddr: bigint,
    readonly end: number = bytes.length,
    readonly little: boolean = true,
    readonly addressSize: 4 | 8 = 8,
  ) {
    this.pos = pos
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  }

  get atEnd(): boolean {
    return this.pos >= this.end
  }

  /** The link-time address of the next byte. */
  get address(): bigint {
    return this.baseAddr + BigInt(this.pos)
  }

  u8(): number {
    this.need(1)
    return this.view.getUint8(this.pos++)
  }

  u16(): number {
    this.need(2)
    const v = this.view.getUint16(this.pos, this.little)
    this.pos += 2
    return v
  }

  s16(): number {
    this.need(2)
    const v = this.view.getInt16(this.pos, this.little)
    this.pos += 2
    return v
  }

  u32(): number {
    this.need(4)
    const v = this.view.getUint32(this.pos, this.little)
    this.pos += 4
    return v
  }

  s32(): number {
    this.need(4)
    const v = this.view.getInt32(this.pos, this.little)
    this.pos += 4
    return v
  }

  u64(): bigint {
    this.need(8)
    const v = this.view.getBigUint64(this.pos, this.little)
    this.pos += 8
    return v
  }

  s64(): bigint {
    this.need(8)
    const v = this.view.getBigInt64(this.pos, this.little)
    this.pos += 8
    return v
  }

  /** Unsigned LEB128 (at most 10 bytes are read; longer runs are corrupt). */
  uleb(): bigint {
    let result = 0n
    let shift = 0n
    for (let i = 0; i < 10; i++) {
      const byte = this.u8()
      result |= BigInt(byte & 0x7f) << shift
      if ((byte & 0x80) === 0) return result & U64
      shift += 7n
    }
    throw new DwarfRangeError(`LEB128 longer than 10 bytes at ${this.pos}`)
  }

  /** Signed LEB128. */
  sleb(): bigint {
    let result = 0n
    let shift = 0n
    for (let i = 0; i < 10; i++) {
      const byte = this.u8()
      result |= BigInt(byte & 0x7f) << shift
      shift += 7n
      if ((byte & 0x80) === 0) {
        if (byte & 0x40) result -= 1n << shift
        return BigInt.asIntN(64, result)
      }
    }
    throw new DwarfRangeError(`LEB128 longer than 10 bytes at ${this.pos}`)
  }

  /** An unsigned LEB128 that must fit a JS number (register numbers, lengths). */
  ulebNumber(): number {
    const v = this.uleb()
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new DwarfRangeError(`LEB128 value ${v} too large at ${this.pos}`)
    return Number(v)
  }

  /** The next `length` bytes (a view, not a copy). */
  block(length: number): Uint8Array {
    this.need(length)
    const out = this.bytes.subarray(this.pos, this.pos + length)
    this.pos += length
    return out
  }

  skip(length: number): void {
    this.need(length)
    this.pos += length
  }

  /**
   * A pointer in DW_EH_PE_* `encoding`; undefined for DW_EH_PE_omit. An indirect pointer is returned as the address
   * of the slot that holds it (reading it needs the process's memory). Throws on an unknown format or application.
   */
  pointer(encoding: number, bases: PointerBases = {}): bigint | undefined {
    if (encoding === DW_EH_PE_omit) return undefined
    const fieldAddress = this.address
    let value = this.pointerValue(encoding & 0x0f)
    const application = encoding & 0x70
    if (application === 0x10) value += fieldAddress
    else if (application === 0x20) value += need(bases.textrel, 'textrel')
    else if (application === 0x30) value += need(bases.datarel, 'datarel')
    else if (application === 0x40) value += need(bases.funcrel, 'funcrel')
    else if (application === 0x50) throw new DwarfRangeError('DW_EH_PE_aligned pointers are not supported')
    else if (application !== 0) throw new DwarfRangeError(`unknown pointer application 0x${application.toString(16)}`)
    return this.addressSize === 8 ? value & U64 : value & 0xffffffffn
  }

  /** The value of a pointer of format `format` (low 4 bits of an encoding), without its application. */
  pointerValue(format: number): bigint {
    switch (format) {
      case 0x00:
        return this.addressSize === 8 ? this.u64() : BigInt(this.u32())
      case 0x01:
        return this.uleb()
      case 0x02:
        return BigInt(this.u16())
      case 0x03:
        return BigInt(this.u32())
      case 0x04:
        return this.u64()
      case 0x09:
        return this.sleb()
      case 0x0a:
        return BigInt(this.s16())
      case 0x0b:
        return BigInt(this.s32())
      case 0x0c:
        return this.s64()
      default:
        throw new DwarfRangeError(`unknown pointer format 0x${format.toString(16)}`)
    }
  }

  private need(size: number): void {
    if (size < 0 || this.pos < 0 || this.pos + size > this.end) {
      throw new DwarfRangeError(`a ${size}-byte read at ${this.pos} runs past the end (${this.end})`)
    }
  }
}

/** Byte size of a fixed-size pointer format, or undefined for LEB128 and unknown formats. */
export function pointerSize(encoding: number, addressSize: 4 | 8): number | undefined {
  switch (encoding & 0x0f) {
    case 0x00:
      return addressSize
    case 0x02:
    case 0x0a:
      return 2
    case 0x03:
    case 0x0b:
      return 4
    case 0x04:
    case 0x0c:
      return 8
    default:
      return undefined
  }
}

function need(base: bigint | undefined, what: string): bigint {
  if (base === undefined) throw new DwarfRangeError(`a ${what} pointer without a ${what} base`)
  return base
}
