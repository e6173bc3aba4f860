// Writes a snapshot as an x86_64 ELF core file (ET_CORE), map by map: the ELF header, one PT_NOTE
// and one PT_LOAD per map, the notes, then the bytes the snapshot holds of each map at page-aligned
// offsets. Memory stays bounded (the notes and a 1 MiB stage): map contents are written from the
// snapshot's own buffers, and bytes the snapshot knows are zero (untouched pages, sparse gaps) are
// left as holes of a sparse file.
import { ftruncateSync, writeSync } from 'node:fs'
import { ProcsnapError, UnsupportedArchError } from '../errors.js'
import { writeFileWith } from '../files/write.js'
import { ELF } from './layout.js'
import { dynamicMap, type CoreResolve } from './link-map.js'
import { coreNotes, hostPath } from './notes.js'
import { namespaceTids, type CoreMemoryRead } from './tids.js'
import type { CoreMap, CoreSource } from './types.js'

const PAGE = 4096
const STAGE_BYTES = 1 << 20
/** The most one write(2) is asked to move (files/write.ts MAX_WRITE says why). */
const MAX_WRITE = 512 << 10

const alignPage = (n: number): number => Math.ceil(n / PAGE) * PAGE

/** How many bytes from the map's start the snapshot holds (snapshot/content.ts heldSize). */
function heldSize(map: CoreMap): number {
  return map.content?.length ?? map.sparse?.size ?? 0
}

interface Segment {
  readonly map: CoreMap
  readonly offset: number
  readonly filesz: number
}

/** Where everything goes: the notes' bytes, each map's file offset and size, the file's total size. */
interface CoreLayout {
  readonly head: Uint8Array
  readonly segments: readonly Segment[]
  readonly size: number
}

function flagsOf(perms: string): number {
  return (perms[0] === 'r' ? ELF.pfR : 0) | (perms[1] === 'w' ? ELF.pfW : 0) | (perms[2] === 'x' ? ELF.pfX : 0)
}

/** How the writer reads the snapshot's memory: bytes at a location, the address of a symbol. */
export interface CoreMemory {
  readonly read: CoreMemoryRead
  readonly resolve: CoreResolve
}

function planCore(data: CoreSource, { read, resolve }: CoreMemory): CoreLayout {
  const tids = data.ownPid === undefined ? new Map<number, number>() : namespaceTids(data.threads, data.ownPid, read)
  const notes = coreNotes(data, tids)
  const notesSize = notes.reduce((sum, n) => sum + n.length, 0)
  const phnum = data.maps.length + 1
  const extended = phnum >= ELF.pnXnum
  const phoff = ELF.headerSize
  const shoff = extended ? phoff + phnum * ELF.phentSize : 0
  const notesAt = phoff + phnum * ELF.phentSize + (extended ? ELF.shentSize : 0)
  const head = new Uint8Array(notesAt + notesSize)
  const view = new DataView(head.buffer)
  head.set([0x7f, 0x45, 0x4c, 0x46, ELF.classElf64, ELF.dataLsb, ELF.version], 0)
  view.setUint16(16, ELF.typeCore, true)
  view.setUint16(18, ELF.machineX86_64, true)
  view.setUint32(20, ELF.version, true)
  view.setBigUint64(32, BigInt(phoff), true)
  view.setBigUint64(40, BigInt(shoff), true)
  view.setUint16(52, ELF.headerSize, true)
  view.setUint16(54, ELF.phentSize, true)
  view.setUint16(56, extended ? ELF.pnXnum : phnum, true)
  view.setUint16(58, ELF.shentSize, true)
  view.setUint16(60, extended ? 1 : 0, true)
  // More than 65534 headers: section header 0 holds the count in sh_info (elf.h PN_XNUM).
  if (extended) view.setUint32(shoff + 44, phnum, true)
  const phdr = (
    i: number,
    type: number,
    flags: number,
    offset: number,
    vaddr: bigint,
    filesz: number,
    memsz: bigint,
    align: number,
  ): void => {
    const at = phoff + i * ELF.phentSize
    view.setUint32(at, type, true)
    view.setUint32(at + 4, flags, true)
    view.setBigUint64(at + 8, BigInt(offset), true)
    view.setBigUint64(at + 16, vaddr, true)
    view.setBigUint64(at + 32, BigInt(filesz), true)
    view.setBigUint64(at + 40, memsz, true)
    view.setBigUint64(at + 48, BigInt(align), true)
  }
  phdr(0, ELF.ptNote, 0, notesAt, 0n, notesSize, BigInt(notesSize), 4)
  let at = notesAt
  for (const n of notes) {
    head.set(n, at)
    at += n.length
  }
  let offset = alignPage(at)
  const segments: Segment[] = []
  // Where the snapshot lacks the executable's .dynamic, the core holds it as the kernel's would (link-map.ts).
  const dynamic = dynamicMap(data, hostPath(data, data.exe), resolve)
  const maps = dynamic ? data.maps.map((m) => (m.start === dynamic.start ? dynamic : m)) : data.maps
  maps.forEach((map, i) => {
    const filesz = heldSize(map)
    phdr(i + 1, ELF.ptLoad, flagsOf(map.perms), offset, map.start, filesz, map.end - map.start, PAGE)
    segments.push({ map, offset, filesz })
    offset = alignPage(offset + filesz)
  })
  return { head, segments, size: Math.max(offset, head.length) }
}

/** Positioned writes with small contiguous pieces gathered into one write(2). */
class Writer {
  private readonly stage = Buffer.allocUnsafe(STAGE_BYTES)
  private stageAt = 0
  private staged = 0

  constructor(private readonly fd: number) {}

  write(position: number, bytes: Uint8Array): void {
    if (this.staged > 0 && position === this.stageAt + this.staged && this.staged + bytes.length <= STAGE_BYTES) {
      this.stage.set(bytes, this.staged)
      this.staged += bytes.length
      return
    }
    this.flush()
    if (bytes.length >= STAGE_BYTES) {
      this.direct(position, bytes)
      return
    }
    this.stage.set(bytes, 0)
    this.stageAt = position
    this.staged = bytes.length
  }

  flush(): void {
    if (this.staged > 0) this.direct(this.stageAt, this.stage.subarray(0, this.staged))
    this.staged = 0
  }

  private direct(position: number, bytes: Uint8Array): void {
    for (let done = 0; done < bytes.length;)
      done += writeSync(this.fd, bytes, done, Math.min(bytes.length - done, MAX_WRITE), position + done)
  }
}

/** The held bytes of one map at its segment's offset; zeros the snapshot knows of are not written. */
function writeSegment(out: Writer, { map, offset, filesz }: Segment): void {
  if (map.content) {
    let from = 0
    for (const [lo, hi] of [...(map.untouched ?? []), [filesz, filesz] as const]) {
      const to = Math.min(lo, filesz)
      if (to > from) out.write(offset + from, map.content.subarray(from, to))
      from = Math.max(from, Math.min(hi, filesz))
    }
    return
  }
  for (const [page, bytes] of map.sparse?.pages ?? []) {
    if (page >= filesz) continue
    out.write(offset + page, bytes.subarray(0, filesz - page))
  }
}

const NO_MEMORY: CoreMemory = { read: () => undefined, resolve: () => undefined }

/**
 * Writes the core file of a process snapshot to `path` (atomically, as save() does); `memory` gives
 * the snapshot's memory and symbols: the threads' ids inside a PID namespace, ld.so's r_debug. Throws
 * ERR_BAD_ARGUMENT for a thread snapshot, ERR_UNSUPPORTED_ARCH for an aarch64 one, ERR_FILE_UNWRITABLE
 * when the file cannot be written.
 */
export function saveCoreData(path: string, data: CoreSource, memory: CoreMemory = NO_MEMORY): void {
  if (data.kind !== 'process')
    throw new ProcsnapError(
      'ERR_BAD_ARGUMENT',
      `A core file holds a whole process, and this is a snapshot of thread ${data.threads[0]?.tid ?? '?'} alone. ` +
        `Take one with proc.createSnapshot() (not thread.createSnapshot()) and call saveCore on it.`,
    )
  if (data.arch !== 'x86_64')
    throw new UnsupportedArchError(
      `saveCore writes x86_64 core files; this snapshot is of an ${data.arch} process. Save it with save() instead.`,
    )
  const layout = planCore(data, memory)
  writeFileWith(path, (fd) => {
    const out = new Writer(fd)
    out.write(0, layout.head)
    for (const segment of layout.segments) writeSegment(out, segment)
    out.flush()
    ftruncateSync(fd, layout.size)
  })
}
