// The layout of a procsnap/2 file (docs/snapshot-format.md), shared by its writer and reader. What
// procsnap writes (flag META_LAST), so that pages go out as they are first met, in one pass:
//   header (40 bytes) | zeros to 4096 | stored pages (4096 bytes each) | metadata (UTF-8 JSON)
// and what it wrote before (flags 0), still read:
//   header (40 bytes) | metadata (UTF-8 JSON) | zeros to a 4096 boundary | stored pages (4096 bytes each)
// All integers little-endian. The metadata is procsnap/1's JSON with page runs in place of page hashes.

import { crc32 } from 'node:zlib'

export const FORMAT_V2 = 'procsnap/2'
export const VERSION_V2 = 2
export const MAGIC = Buffer.from('PROCSNAP', 'latin1')
export const HEADER_BYTES = 40
export const PAGE_BYTES = 4096
/** Header flag: the metadata follows the stored pages, which begin at 4096. */
export const META_LAST = 1
/** Every flag this version knows. */
export const KNOWN_FLAGS = META_LAST

/** What the header says: the metadata's length and checksum, how many pages follow and their checksum. */
export interface HeaderV2 {
  readonly version: number
  readonly flags: number
  readonly metaLength: number
  readonly pageCount: number
  readonly metaCrc: number
  /** crc32 of the table of the stored pages' crc32s (u32 LE each, in file order). */
  readonly dataCrc: number
}

export function encodeHeader(h: Omit<HeaderV2, 'version'>): Buffer {
  const b = Buffer.alloc(HEADER_BYTES)
  MAGIC.copy(b, 0)
  b.writeUInt32LE(VERSION_V2, 8)
  b.writeUInt32LE(h.flags, 12)
  b.writeBigUInt64LE(BigInt(h.metaLength), 16)
  b.writeBigUInt64LE(BigInt(h.pageCount), 24)
  b.writeUInt32LE(h.metaCrc, 32)
  b.writeUInt32LE(h.dataCrc, 36)
  return b
}

/** The header's fields; the 64-bit lengths as numbers, or Infinity past 2^53 (no file is that large). */
export function decodeHeader(b: Uint8Array): HeaderV2 {
  const buf = Buffer.from(b.buffer, b.byteOffset, b.length)
  const big = (at: number): number => {
    const v = buf.readBigUInt64LE(at)
    return v > BigInt(Number.MAX_SAFE_INTEGER) ? Infinity : Number(v)
  }
  return {
    version: buf.readUInt32LE(8),
    flags: buf.readUInt32LE(12),
    metaLength: big(16),
    pageCount: big(24),
    metaCrc: buf.readUInt32LE(32),
    dataCrc: buf.readUInt32LE(36),
  }
}

/** Where the stored pages begin without META_LAST: after the header and metadata, at the next multiple of 4096. */
export function dataOffset(metaLength: number): number {
  return Math.ceil((HEADER_BYTES + metaLength) / PAGE_BYTES) * PAGE_BYTES
}

/** Where a file's parts lie, by its header: the stored pages, the metadata, and the file's exact size (Infinity past 2^53). */
export function layoutOf(h: Pick<HeaderV2, 'flags' | 'metaLength' | 'pageCount'>): {
  pagesAt: number
  metaAt: number
  size: number
} {
  if ((h.flags & META_LAST) === 0) {
    const pagesAt = dataOffset(h.metaLength)
    return { pagesAt, metaAt: HEADER_BYTES, size: pagesAt + h.pageCount * PAGE_BYTES }
  }
  const metaAt = PAGE_BYTES + h.pageCount * PAGE_BYTES
  return { pagesAt: PAGE_BYTES, metaAt, size: metaAt + h.metaLength }
}

/** Whether bytes begin like a procsnap/2 file (any later version included). */
export function isV2(head: Uint8Array): boolean {
  return head.length >= MAGIC.length && Buffer.compare(head.subarray(0, MAGIC.length), MAGIC) === 0
}

/** A run of a map's pages [page, page + count) stored in slots [slot, slot + count), or all in `slot` when `repeat`. */
export interface PageRunV2 {
  readonly page: number
  readonly count: number
  readonly slot: number
  readonly repeat: boolean
}

const isLittleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1

/** The header's dataCrc: the crc32 of the stored pages' crc32s, u32 little-endian each, in file order. */
export function dataChecksum(crcs: Uint32Array): number {
  if (isLittleEndian) return crc32(Buffer.from(crcs.buffer, crcs.byteOffset, crcs.byteLength))
  const table = Buffer.alloc(crcs.length * 4)
  crcs.forEach((c, i) => table.writeUInt32LE(c, i * 4))
  return crc32(table)
}
