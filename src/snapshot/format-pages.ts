// Memory contents on disk: 4 KiB pages, each stored once by the SHA-256 of its bytes and
// deflate-compressed; all-zero pages are not stored at all (null in a map's page list).
import { createHash } from 'node:crypto'
import { deflateRawSync, inflateRawSync } from 'node:zlib'

export const PAGE_SIZE = 4096
const ZERO_PAGE = Buffer.alloc(PAGE_SIZE)
/** Fast and still small: a level-1 deflate of a page of code or data. */
const DEFLATE = { level: 1 }
const HASH = /^[0-9a-f]{64}$/

/** A map's contents as written: its size and one entry per page (a hash, or null for zeros). */
export interface ContentRef {
  readonly size: number
  readonly pages: readonly (string | null)[]
}

/** Collects the distinct pages of every map of a snapshot, in first-seen order. */
export class PageWriter {
  /** hash -> base64 of the compressed page */
  readonly pages = new Map<string, string>()

  add(content: Uint8Array): ContentRef {
    const refs: (string | null)[] = []
    for (let at = 0; at < content.length; at += PAGE_SIZE)
      refs.push(this.addPage(content.subarray(at, Math.min(at + PAGE_SIZE, content.length))))
    return { size: content.length, pages: refs }
  }

  /** One page (the last of a map may be shorter): its hash, or null when it is all zeros. */
  addPage(bytes: Uint8Array): string | null {
    const page = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length)
    if (page.length === PAGE_SIZE ? page.equals(ZERO_PAGE) : page.equals(ZERO_PAGE.subarray(0, page.length)))
      return null
    const hash = createHash('sha256').update(page).digest('hex')
    if (!this.pages.has(hash)) this.pages.set(hash, deflateRawSync(page, DEFLATE).toString('base64'))
    return hash
  }
}

/** A plain Uint8Array over a Buffer's bytes, without a copy. */
export function view(bytes: Buffer): Uint8Array {
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length)
}

/** Why a page list cannot be turned back into bytes; the caller adds the file and JSON path. */
export class PageError extends Error {}

/** Rebuilds a map's contents, checking every page against its hash; inflated pages are cached by hash. */
export class PageReader {
  private readonly stored: Readonly<Record<string, unknown>>
  private readonly inflated = new Map<string, Buffer>()

  constructor(stored: Readonly<Record<string, unknown>>) {
    this.stored = stored
  }

  /** The whole map in one buffer; the caller has checked that the list has one entry per page. */
  read(ref: ContentRef): Uint8Array {
    const out = new Uint8Array(ref.size)
    ref.pages.forEach((hash, i) => {
      if (hash !== null) out.set(this.listed(ref, i, hash), i * PAGE_SIZE)
    })
    return out
  }

  /** The map page by page, zeros left out: each page a view of the one inflated copy of its hash. */
  readSparse(ref: ContentRef): Map<number, Uint8Array> {
    const held = new Map<number, Uint8Array>()
    ref.pages.forEach((hash, i) => {
      if (hash !== null) held.set(i * PAGE_SIZE, view(this.listed(ref, i, hash)))
    })
    return held
  }

  private listed(ref: ContentRef, i: number, hash: string): Buffer {
    const length = Math.min(PAGE_SIZE, ref.size - i * PAGE_SIZE)
    const page = this.page(hash, length)
    if (page.length !== length)
      throw new PageError(`page ${i} (${hash.slice(0, 12)}…) holds ${page.length} bytes, expected ${length}`)
    return page
  }

  /** One stored page, checked against its hash and its expected length. */
  readPage(hash: string, length: number): Buffer {
    const page = this.page(hash, length)
    if (page.length !== length)
      throw new PageError(`page ${hash.slice(0, 12)}… holds ${page.length} bytes, expected ${length}`)
    return page
  }

  /** Inflates at most `length` + 1 bytes: a page that inflates to more (a zlib bomb) is refused without being inflated. */
  private page(hash: string, length: number): Buffer {
    const cached = this.inflated.get(hash)
    if (cached) return cached
    if (!HASH.test(hash)) throw new PageError(`'${hash.slice(0, 16)}' is not a page hash (64 hex digits)`)
    const data = Object.hasOwn(this.stored, hash) ? this.stored[hash] : undefined
    if (typeof data !== 'string') throw new PageError(`page ${hash.slice(0, 12)}… is not in the file's page table`)
    let page: Buffer
    try {
      page = inflateRawSync(Buffer.from(data, 'base64'), { maxOutputLength: length + 1 })
    } catch (error) {
      const bomb = (error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE'
      throw new PageError(
        `page ${hash.slice(0, 12)}… ${bomb ? `inflates to more than ${length} bytes` : 'does not decompress'}`,
      )
    }
    if (createHash('sha256').update(page).digest('hex') !== hash)
      throw new PageError(`page ${hash.slice(0, 12)}… does not match its hash: the file was altered`)
    this.inflated.set(hash, page)
    return page
  }
}
