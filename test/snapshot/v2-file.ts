// Taking a procsnap/2 file apart and putting it back together with valid lengths and checksums, so
// that tests and the fuzzer reach the checks behind the checksums (runs, slots, sizes, fields).
import { crc32 } from 'node:zlib'
import {
  HEADER_BYTES,
  META_LAST,
  PAGE_BYTES,
  dataOffset,
  decodeHeader,
  encodeHeader,
  layoutOf,
  type HeaderV2,
} from '../../src/snapshot/format-v2.js'

export interface V2Parts {
  readonly header: HeaderV2
  /** The metadata JSON text. */
  readonly meta: string
  /** The stored pages, 4096 bytes each. */
  readonly data: Buffer
}

export function splitV2(bytes: Buffer): V2Parts {
  const header = decodeHeader(bytes.subarray(0, HEADER_BYTES))
  const { pagesAt, metaAt } = layoutOf(header)
  const meta = bytes.subarray(metaAt, metaAt + header.metaLength).toString('utf8')
  return { header, meta, data: bytes.subarray(pagesAt, pagesAt + header.pageCount * PAGE_BYTES) }
}

/** crc32 of the table of the pages' crc32s, as the header holds it. */
export function pagesCrc(data: Buffer): number {
  const pages = Math.floor(data.length / PAGE_BYTES)
  const table = Buffer.alloc(pages * 4)
  for (let i = 0; i < pages; i++) table.writeUInt32LE(crc32(data.subarray(i * PAGE_BYTES, (i + 1) * PAGE_BYTES)), i * 4)
  return crc32(table)
}

/**
 * A well-formed file of this metadata and these pages, lengths, padding and checksums recomputed: as
 * procsnap writes it (the metadata last), or, with `metaFirst`, as it wrote it before (flags 0).
 */
export function sealV2(meta: string, data: Buffer, metaFirst = false): Buffer {
  const text = Buffer.from(meta, 'utf8')
  const header = encodeHeader({
    flags: metaFirst ? 0 : META_LAST,
    metaLength: text.length,
    pageCount: Math.floor(data.length / PAGE_BYTES),
    metaCrc: crc32(text),
    dataCrc: pagesCrc(data),
  })
  if (!metaFirst) return Buffer.concat([header, Buffer.alloc(PAGE_BYTES - HEADER_BYTES), data, text])
  const pad = Buffer.alloc(dataOffset(text.length) - HEADER_BYTES - text.length)
  return Buffer.concat([header, text, pad, data])
}

/** The file with its metadata changed as parsed JSON, resealed. */
export function editV2(
  bytes: Buffer,
  change: (file: { format: string; snapshot: Record<string, unknown> }) => void,
): Buffer {
  const { meta, data } = splitV2(bytes)
  const file = JSON.parse(meta) as { format: string; snapshot: Record<string, unknown> }
  change(file)
  return sealV2(JSON.stringify(file), data)
}
