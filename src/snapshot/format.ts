// The snapshot file, format 'procsnap/1' (docs/snapshot-format.md): versioned JSON, every 64-bit or
// wider value a hex string, memory in deduplicated compressed pages. Loading validates every field.
// Files are written as procsnap/2 now (format-v2.ts), whose metadata is this JSON but for the pages:
// the parts both share are exported from here.
import { FileError, SnapshotFormatError } from '../errors.js'
import { readRegularFile } from '../files/read.js'
import { FieldError, Fields, hexValue, toHex, type Json } from './format-fields.js'
import { PAGE_SIZE, PageError, PageReader, PageWriter, view, type ContentRef } from './format-pages.js'
import type {
  AuxvEntry,
  CpuInfo,
  FdIdentity,
  FdState,
  Frame,
  MapState,
  SnapshotArch,
  SnapshotData,
  SnapshotStop,
  SparseContent,
  ThreadState,
  TracerAnswersState,
} from './model.js'

const SNAPSHOT_FORMAT = 'procsnap/1'
const FORMAT_VERSION = 1
/** The newest version any procsnap writes: a JSON file claiming a later one is from a newer procsnap. */
export const LATEST_VERSION = 2
export const ARCHES: readonly SnapshotArch[] = ['x86_64', 'aarch64']

/** A procsnap/1 file's bytes: UTF-8 JSON, keys in a fixed order, so equal snapshots give equal files. */
export function encodeSnapshotV1(data: SnapshotData): Buffer {
  const pages = new PageWriter()
  const snapshot = snapshotJson(data, (m) => encodeMap(m, pages))
  return Buffer.from(JSON.stringify({ format: SNAPSHOT_FORMAT, snapshot, pages: Object.fromEntries(pages.pages) }))
}

/** The `snapshot` object of a file, keys in a fixed order; `map` writes a map (its contents differ by version). */
export function snapshotJson(data: SnapshotData, map: (m: MapState) => Json): Json {
  return {
    kind: data.kind,
    level: data.level,
    ...(data.name !== undefined ? { name: data.name } : {}),
    snapshotId: data.snapshotId,
    arch: data.arch,
    pid: data.pid,
    ...(data.ownPid !== undefined ? { ownPid: data.ownPid } : {}),
    aslrEnabled: data.aslrEnabled,
    exe: data.exe,
    argv: data.argv,
    cwd: data.cwd,
    createdAt: data.createdAt,
    ...(data.stop ? { stop: encodeStop(data.stop) } : {}),
    current: data.current,
    threads: data.threads.map((t) => ({
      tid: t.tid,
      index: t.index,
      regs: hexRecord(t.regs),
      backtrace: t.backtrace.map(encodeFrame),
    })),
    maps: data.maps.map(map),
    fds: data.fds.map((f) => ({
      fd: f.fd,
      target: f.target,
      flags: f.flags,
      offset: toHex(f.offset),
      ...(f.stat
        ? { stat: { dev: toHex(f.stat.dev), ino: toHex(f.stat.ino), mode: f.stat.mode, rdev: toHex(f.stat.rdev) } }
        : {}),
    })),
    auxv: data.auxv.map((a) => ({ type: a.type, name: a.name, value: toHex(a.value) })),
    cpu: {
      arch: data.cpu.arch,
      ...(data.cpu.xcr0 !== undefined ? { xcr0: toHex(data.cpu.xcr0) } : {}),
      components: data.cpu.components,
      ...(data.cpu.xsaveSize !== undefined ? { xsaveSize: data.cpu.xsaveSize } : {}),
    },
    ...(data.answers ? { answers: encodeAnswers(data.answers) } : {}),
  }
}

function encodeAnswers(a: TracerAnswersState): Json {
  return {
    ...(a.random ? { random: a.random.map(toHex) } : {}),
    ...(a.clockNs !== undefined ? { clockNs: toHex(a.clockNs) } : {}),
  }
}

function decodeAnswers(a: Fields): TracerAnswersState {
  const random = a.has('random') ? a.array('random').map((e) => hexValue(e.value, e.path)) : undefined
  if (random && random.length !== 2) throw new FieldError(`${a.path}.random`, 'expected two hex numbers')
  return {
    ...(random ? { random: [random[0] ?? 0n, random[1] ?? 0n] as const } : {}),
    ...(a.has('clockNs') ? { clockNs: a.hex('clockNs') } : {}),
  }
}

/** The largest snapshot file loadSnapshot reads: the format is one JSON text, and V8's strings stop near 512 MiB. */
const MAX_SNAPSHOT_BYTES = 0x1fffffe8

/** Reads a procsnap/1 file (or tells what else it is). */
export function readSnapshotDataV1(path: string): SnapshotData {
  let bytes: Buffer | undefined
  try {
    bytes = readRegularFile(path, { what: 'snapshot file', maxBytes: MAX_SNAPSHOT_BYTES })
  } catch (error) {
    if (!(error instanceof FileError)) throw error
    throw new SnapshotFormatError('ERR_SNAPSHOT_CORRUPT', path, error.message)
  }
  if (!bytes)
    throw new SnapshotFormatError(
      'ERR_SNAPSHOT_NOT_FOUND',
      path,
      `No snapshot file at ${path}: save one with snapshot.save(path) first, or fix the path.`,
    )
  return decodeSnapshotV1(bytes, path)
}

/** Far deeper than a snapshot's 7 levels: JSON.parse takes a second per two million levels, which a 2 MB file can hold. */
export const MAX_NESTING = 64
const QUOTE = 0x22
const BACKSLASH = 0x5c

/** Whether the JSON text opens more than `max` arrays or objects at once; strings are skipped with indexOf. */
export function nestedDeeper(bytes: Buffer, max: number): boolean {
  let depth = 0
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i]
    if (c === QUOTE) i = stringEnd(bytes, i)
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true
    } else if (c === 0x5d || c === 0x7d) depth--
  }
  return false
}

/** The index of the quote that closes the string opening at `start` (one not escaped), or the end. */
function stringEnd(bytes: Buffer, start: number): number {
  for (let j = bytes.indexOf(QUOTE, start + 1); j >= 0; j = bytes.indexOf(QUOTE, j + 1)) {
    let slashes = 0
    while (bytes[j - 1 - slashes] === BACKSLASH) slashes++
    if (slashes % 2 === 0) return j
  }
  return bytes.length
}

/** Parses and validates a procsnap/1 file's bytes; never evaluates anything from them. */
export function decodeSnapshotV1(bytes: Uint8Array, source = 'buffer'): SnapshotData {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length)
  const text = buffer.toString('utf8')
  let parsed: unknown
  try {
    if (nestedDeeper(buffer, MAX_NESTING)) throw new Error(`nested deeper than ${MAX_NESTING} levels`)
    parsed = JSON.parse(text)
  } catch (error) {
    // A damaged file of ours still starts like one; anything else is not ours at all.
    const ours = /^\s*\{\s*"format"\s*:\s*"procsnap\//.test(text.slice(0, 64))
    throw new SnapshotFormatError(
      ours ? 'ERR_SNAPSHOT_CORRUPT' : 'ERR_SNAPSHOT_FOREIGN',
      source,
      ours
        ? `${source} is a damaged or truncated procsnap snapshot (${(error as Error).message}): save it again.`
        : `${source} is not a procsnap snapshot (not JSON).`,
    )
  }
  const format =
    typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? (parsed as Json).format : undefined
  const version = typeof format === 'string' ? /^procsnap\/(\d+)$/.exec(format)?.[1] : undefined
  if (version === undefined)
    throw new SnapshotFormatError(
      'ERR_SNAPSHOT_FOREIGN',
      source,
      `${source} is not a procsnap snapshot: no "format": "${SNAPSHOT_FORMAT}" field.`,
    )
  if (Number(version) > LATEST_VERSION)
    throw new SnapshotFormatError(
      'ERR_SNAPSHOT_VERSION',
      source,
      `${source} is in format ${String(format)}, written by a newer procsnap; this one reads ` +
        `procsnap/${LATEST_VERSION} and earlier. Upgrade procsnap to load it.`,
    )
  if (Number(version) !== FORMAT_VERSION)
    throw new SnapshotFormatError(
      'ERR_SNAPSHOT_FOREIGN',
      source,
      `${source} is in format ${String(format)} as JSON, which no procsnap writes (procsnap/2 files begin with PROCSNAP).`,
    )
  try {
    const root = new Fields(parsed, '$')
    checkArch(root.object('snapshot'), source)
    const pages = new PageReader(root.object('pages').value)
    return decodeData(root.object('snapshot'), (s) => decodeMaps(s, pages))
  } catch (error) {
    if (error instanceof FieldError || error instanceof PageError)
      throw new SnapshotFormatError(
        'ERR_SNAPSHOT_CORRUPT',
        source,
        `${source} is not a valid snapshot: ${error.message}.`,
      )
    throw error
  }
}

/** ERR_SNAPSHOT_ARCH for an architecture procsnap does not know, before anything else is decoded. */
export function checkArch(snapshot: Fields, source: string): void {
  const arch = snapshot.string('arch')
  if (!(ARCHES as readonly string[]).includes(arch))
    throw new SnapshotFormatError(
      'ERR_SNAPSHOT_ARCH',
      source,
      `${source} holds a snapshot of architecture '${arch}'; procsnap knows ${ARCHES.join(' and ')}.`,
    )
}

function hexRecord(values: Readonly<Record<string, bigint>>): Record<string, string> {
  return Object.fromEntries(Object.entries(values).map(([k, v]) => [k, toHex(v)]))
}

function encodeStop(stop: SnapshotStop): Json {
  const base = { kind: stop.kind, thread: stop.thread, pc: toHex(stop.pc), location: stop.location }
  if (stop.kind !== 'signal') return base
  return {
    ...base,
    signal: stop.signal,
    signo: stop.signo,
    code: stop.code,
    ...(stop.faultAddress !== undefined ? { faultAddress: toHex(stop.faultAddress) } : {}),
  }
}

function encodeFrame(f: Frame): Json {
  return {
    pc: toHex(f.pc),
    ...(f.module !== undefined ? { module: f.module } : {}),
    ...(f.symbol !== undefined ? { symbol: f.symbol } : {}),
    offset: toHex(f.offset),
    location: f.location,
    via: f.via,
    ...(f.cfa !== undefined ? { cfa: toHex(f.cfa) } : {}),
  }
}

function encodeMap(m: MapState, pages: PageWriter): Json {
  return mapJson(m, {
    ...(m.content ? { content: pages.add(m.content) } : {}),
    ...(m.sparse && contentOnDisk.has(m.sparse) ? { content: encodeHeldContent(m.sparse, pages) } : {}),
    ...(m.sparse && !contentOnDisk.has(m.sparse) ? { sparse: encodeSparse(m.sparse, pages) } : {}),
  })
}

/** A map's fields in a fixed order, with `held` (its contents as a version writes them) before `unreadable`. */
export function mapJson(m: MapState, held: Json): Json {
  return {
    start: toHex(m.start),
    end: toHex(m.end),
    perms: m.perms,
    offset: toHex(m.offset),
    path: m.path,
    inode: m.inode,
    ...(m.buildId !== undefined ? { buildId: m.buildId } : {}),
    ...held,
    ...(m.unreadable !== undefined ? { unreadable: m.unreadable } : {}),
  }
}

/** `{ size, pages: [[index, hash], ...] }`: the pages that hold data, by index; zero pages are left out. */
function encodeSparse(sparse: SparseContent, pages: PageWriter): Json {
  const list: [number, string][] = []
  for (const [offset, bytes] of sparse.pages) {
    const hash = pages.addPage(bytes)
    if (hash !== null) list.push([offset / PAGE_SIZE, hash])
  }
  return { size: sparse.size, pages: list }
}

/** A `content` page list from contents held page by page: one entry per page, null for zeros. */
function encodeHeldContent(sparse: SparseContent, pages: PageWriter): Json {
  const list: (string | null)[] = []
  for (let offset = 0; offset < sparse.size; offset += PAGE_SIZE) {
    const bytes = sparse.pages.get(offset)
    list.push(bytes ? pages.addPage(bytes) : null)
  }
  return { size: sparse.size, pages: list }
}

/** The `snapshot` object; `maps` decodes its maps (their contents differ by version). */
export function decodeData(s: Fields, maps: (s: Fields) => MapState[]): SnapshotData {
  return {
    kind: s.oneOf('kind', ['process', 'thread']),
    level: s.oneOf('level', ['base', 'writable', 'full']),
    name: s.has('name') ? s.string('name') : undefined,
    snapshotId: s.string('snapshotId'),
    arch: s.oneOf('arch', ARCHES),
    pid: s.int('pid'),
    ...(s.has('ownPid') ? { ownPid: s.int('ownPid') } : {}),
    aslrEnabled: s.bool('aslrEnabled'),
    exe: s.string('exe'),
    argv: s.strings('argv'),
    cwd: s.string('cwd'),
    createdAt: s.string('createdAt'),
    stop: s.has('stop') ? decodeStop(s.object('stop')) : undefined,
    current: s.int('current'),
    threads: s.objects('threads').map(decodeThread),
    maps: maps(s),
    fds: s.objects('fds').map((f): FdState => ({
      fd: f.int('fd'),
      target: f.string('target'),
      flags: f.int('flags'),
      offset: f.hex('offset'),
      ...(f.has('stat') ? { stat: decodeFdStat(f.object('stat')) } : {}),
    })),
    auxv: s
      .objects('auxv')
      .map((a): AuxvEntry => ({ type: a.int('type'), name: a.string('name'), value: a.hex('value') })),
    cpu: decodeCpu(s.object('cpu')),
    ...(s.has('answers') ? { answers: decodeAnswers(s.object('answers')) } : {}),
  }
}

function decodeMaps(s: Fields, pages: PageReader): MapState[] {
  const budget = { left: DENSE_CONTENT_BUDGET }
  return s.objects('maps').map((m) => decodeMap(m, pages, budget))
}

function decodeFdStat(f: Fields): FdIdentity {
  return { dev: f.hex('dev'), ino: f.hex('ino'), mode: f.int('mode'), rdev: f.hex('rdev') }
}

function decodeStop(f: Fields): SnapshotStop {
  const base = { thread: f.int('thread'), pc: f.hex('pc'), location: f.string('location') }
  const kind = f.oneOf('kind', ['breakpoint', 'step', 'launch', 'attach', 'interrupted', 'signal'])
  if (kind !== 'signal') return { kind, ...base }
  return {
    kind,
    ...base,
    signal: f.string('signal'),
    signo: f.int('signo'),
    code: f.int('code'),
    ...(f.has('faultAddress') ? { faultAddress: f.hex('faultAddress') } : {}),
  }
}

function decodeThread(t: Fields): ThreadState {
  const regs = t.object('regs')
  return {
    tid: t.int('tid'),
    index: t.int('index'),
    regs: Object.fromEntries(
      Object.entries(regs.value).map(([name, v]) => [name, hexValue(v, `${regs.path}.${name}`)]),
    ),
    backtrace: t.objects('backtrace').map(decodeFrame),
  }
}

function decodeFrame(f: Fields): Frame {
  return {
    pc: f.hex('pc'),
    ...(f.has('module') ? { module: f.string('module') } : {}),
    ...(f.has('symbol') ? { symbol: f.string('symbol') } : {}),
    offset: f.hex('offset'),
    location: f.string('location'),
    via: f.oneOf('via', ['pc', 'cfi', 'fp']),
    ...(f.has('cfa') ? { cfa: f.hex('cfa') } : {}),
  }
}

/**
 * How many bytes of `content` a load materializes in one buffer per map: past this budget (all maps
 * of the file together), a map's content is held page by page as `sparse` is, so that a small file
 * declaring gigabytes of zero pages, or one page listed a million times, costs what it stores.
 */
export const DENSE_CONTENT_BUDGET = 256 << 20

/**
 * Sparse contents that were a `content` page list on disk (held page by page past the budget):
 * written back as `content`, so that a file loaded and saved again gives the same bytes.
 */
export const contentOnDisk = new WeakSet<SparseContent>()

function decodeMap(m: Fields, pages: PageReader, budget: { left: number }): MapState {
  return decodeMapWith(m, (size) => {
    if (m.has('content')) return decodeContent(m.object('content'), size, pages, budget)
    if (m.has('sparse')) return { sparse: decodeSparse(m.object('sparse'), size, pages) }
    return {}
  })
}

/** What a map holds of its bytes, as a version stores it; `size` is end - start. */
export type HeldContent = Pick<MapState, 'content' | 'sparse' | 'untouched'>

/** A map's fields; `held` decodes its contents, given its size (checked not negative). */
export function decodeMapWith(m: Fields, held: (size: bigint) => HeldContent): MapState {
  const start = m.hex('start')
  const end = m.hex('end')
  if (end < start) throw new FieldError(`${m.path}.end`, 'the map ends before it starts')
  if (m.has('content') && m.has('sparse')) throw new FieldError(m.path, 'a map holds content or sparse, not both')
  const contents = held(end - start)
  return {
    start,
    end,
    perms: m.string('perms'),
    offset: m.hex('offset'),
    path: m.string('path'),
    inode: m.int('inode'),
    ...(m.has('buildId') ? { buildId: m.string('buildId') } : {}),
    ...contents,
    ...(m.has('unreadable') ? { unreadable: m.string('unreadable') } : {}),
  }
}

/** A `content` page list: in one buffer within the budget, else page by page (zeros cost nothing). */
function decodeContent(
  c: Fields,
  mapSize: bigint,
  pages: PageReader,
  budget: { left: number },
): Pick<MapState, 'content' | 'sparse'> {
  const ref = contentRef(c, mapSize)
  try {
    if (ref.size <= budget.left) {
      budget.left -= ref.size
      return { content: pages.read(ref) }
    }
    const sparse: SparseContent = { size: ref.size, pages: pages.readSparse(ref) }
    contentOnDisk.add(sparse)
    return { sparse }
  } catch (error) {
    if (error instanceof PageError) throw new FieldError(`${c.path}.pages`, error.message)
    throw error
  }
}

/** `{ size, pages }` checked before anything is allocated: the map's size, one entry (hash or null) per page. */
function contentRef(c: Fields, mapSize: bigint): ContentRef {
  const size = c.int('size')
  if (BigInt(size) !== mapSize) throw new FieldError(`${c.path}.size`, `${size} bytes for a map of ${mapSize}`)
  const list = c.value.pages
  if (!Array.isArray(list)) throw new FieldError(`${c.path}.pages`, 'expected an array')
  const expected = Math.ceil(size / PAGE_SIZE)
  if (list.length !== expected)
    throw new FieldError(`${c.path}.pages`, `${list.length} pages listed for ${size} bytes (expected ${expected})`)
  // One pass without a path per element: a list may hold millions of nulls.
  const bad = list.findIndex((p: unknown) => p !== null && typeof p !== 'string')
  if (bad >= 0) throw new FieldError(`${c.path}.pages[${bad}]`, 'expected a page hash or null')
  return { size, pages: list as (string | null)[] }
}

function decodeSparse(f: Fields, mapSize: bigint, pages: PageReader): SparseContent {
  const size = f.int('size')
  if (size < 0 || BigInt(size) > mapSize)
    throw new FieldError(`${f.path}.size`, `${size} bytes for a map of ${mapSize}`)
  if (BigInt(size) !== mapSize && size % PAGE_SIZE !== 0)
    throw new FieldError(`${f.path}.size`, `${size} is neither the map's size nor a multiple of ${PAGE_SIZE}`)
  const list = f.value.pages
  if (!Array.isArray(list)) throw new FieldError(`${f.path}.pages`, 'expected an array')
  const held = new Map<number, Uint8Array>()
  let previous = -1
  list.forEach((pair: unknown, i) => {
    const at = `${f.path}.pages[${i}]`
    if (!Array.isArray(pair) || pair.length !== 2 || !Number.isSafeInteger(pair[0]) || typeof pair[1] !== 'string')
      throw new FieldError(at, 'expected [page index, page hash]')
    const index = pair[0] as number
    const offset = index * PAGE_SIZE
    if (index <= previous || offset >= size)
      throw new FieldError(at, `page ${index} is out of order or past the ${size} bytes held`)
    previous = index
    try {
      // A view of the page's one inflated copy: a hash listed a million times is stored once.
      held.set(offset, view(pages.readPage(pair[1], Math.min(PAGE_SIZE, size - offset))))
    } catch (error) {
      if (error instanceof PageError) throw new FieldError(at, error.message)
      throw error
    }
  })
  return { size, pages: held }
}

function decodeCpu(c: Fields): CpuInfo {
  return {
    arch: c.oneOf('arch', ARCHES),
    ...(c.has('xcr0') ? { xcr0: c.hex('xcr0') } : {}),
    components: c.strings('components'),
    ...(c.has('xsaveSize') ? { xsaveSize: c.int('xsaveSize') } : {}),
  }
}
