// Reads an x86_64 ELF core file (ET_CORE) as procsnap's writer, gdb's gcore and the kernel write it:
// the headers and notes are read whole (bounded: they must lie inside the file and the notes are at
// most NOTES_MAX bytes), each PT_LOAD's bytes only when asked, never past what the file declares.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs'
import { SnapshotFormatError } from '../errors.js'
import { x86_64 } from '../native/arch/x86_64.js'
import { ELF, FILE_NOTE_PAGE, NT, PRPSINFO, PRSTATUS, SIGINFO } from './layout.js'

/** The most note bytes a core may declare: 256 threads' notes take ~1 MiB; NT_FILE of 60000 maps ~10 MiB. */
const NOTES_MAX = 64 << 20
/** elf.h EM_AARCH64, EM_386: named in the error for a core of another machine. */
const MACHINES: Readonly<Record<number, string>> = { 3: 'i386', 40: 'arm', 183: 'aarch64', 243: 'riscv' }

/** One thread of a core: its NT_PRSTATUS and the FPU notes that follow it. */
export interface CoreFileThread {
  readonly tid: number
  /** pr_cursig: the signal the thread stopped with (0: none). */
  readonly cursig: number
  /** user_regs_struct by name (x86_64.registers). */
  readonly general: Readonly<Record<string, bigint>>
  /** NT_X86_XSTATE's area, else NT_FPREGSET's 512 bytes, else undefined. */
  readonly xstate?: Uint8Array
}

/** One PT_LOAD: a map of the process and where its held bytes lie in the file. */
export interface CoreSegment {
  readonly vaddr: bigint
  readonly memsz: bigint
  /** PF_R | PF_W | PF_X. */
  readonly flags: number
  readonly fileOffset: number
  /** Bytes the core holds from the map's start (0: none). */
  readonly filesz: number
}

/** One NT_FILE entry: a file map. */
export interface CoreFileMap {
  readonly start: bigint
  readonly end: bigint
  /** Offset in the file, in bytes. */
  readonly offset: bigint
  readonly path: string
}

export interface CoreFile {
  readonly path: string
  readonly size: number
  /** In note order: the stopped (or dumping) thread first, in every writer. */
  readonly threads: readonly CoreFileThread[]
  readonly segments: readonly CoreSegment[]
  readonly files: readonly CoreFileMap[]
  readonly auxv: readonly { readonly type: number; readonly value: bigint }[]
  readonly psinfo?: { readonly pid: number; readonly fname: string; readonly psargs: string }
  readonly siginfo?: { readonly signo: number; readonly code: number; readonly addr: bigint }
}

function corrupt(path: string, why: string): SnapshotFormatError {
  return new SnapshotFormatError(
    'ERR_SNAPSHOT_CORRUPT',
    path,
    `${path} is not a valid core file: ${why}. It may be truncated (a core limited by ulimit -c, or a copy cut short): write it again.`,
  )
}

/** Reads exactly [position, position + length) of the file; the caller has checked it lies inside. */
function readAt(fd: number, position: number, length: number, into = new Uint8Array(length)): Uint8Array {
  let done = 0
  while (done < length) {
    const n = readSync(fd, into, done, length - done, position + done)
    if (n === 0) break
    done += n
  }
  return into.subarray(0, done)
}

/** A safe integer from a 64-bit field, or Infinity past 2^53 (never inside any file). */
function num(value: bigint): number {
  return value > BigInt(Number.MAX_SAFE_INTEGER) ? Infinity : Number(value)
}

/** The NUL-terminated text at [at, at + size). */
function cString(bytes: Uint8Array, at: number, size: number): string {
  const field = bytes.subarray(at, at + size)
  const end = field.indexOf(0)
  return Buffer.from(field.subarray(0, end < 0 ? field.length : end)).toString('utf8')
}

/** Checks the ELF header: the errors loadSnapshot gives for a file that is not ours, damaged, or of another machine. */
function checkHeader(path: string, head: Uint8Array, size: number): void {
  const magic = [0x7f, 0x45, 0x4c, 0x46]
  if (head.length < 4 || magic.some((b, i) => head[i] !== b))
    throw new SnapshotFormatError(
      'ERR_SNAPSHOT_FOREIGN',
      path,
      `${path} is not an ELF core file (no ELF magic): loadCore reads cores written by the kernel, gdb's gcore ` +
        `or snapshot.saveCore(); use loadSnapshot() for a procsnap snapshot.`,
    )
  if (head.length > 4 && head[4] !== ELF.classElf64)
    throw new SnapshotFormatError(
      'ERR_SNAPSHOT_ARCH',
      path,
      `${path} is a ${head[4] === 1 ? '32-bit (ELFCLASS32)' : `class ${head[4]}`} ELF file: loadCore reads 64-bit x86_64 cores only.`,
    )
  if (head.length < ELF.headerSize) throw corrupt(path, `its ELF header is cut short at ${size} bytes`)
  if (head[5] !== ELF.dataLsb)
    throw new SnapshotFormatError('ERR_SNAPSHOT_ARCH', path, `${path} is big-endian: loadCore reads x86_64 cores only.`)
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength)
  const type = view.getUint16(16, true)
  if (type !== ELF.typeCore)
    throw new SnapshotFormatError(
      'ERR_SNAPSHOT_FOREIGN',
      path,
      `${path} is an ELF ${['file of no type', 'relocatable object', 'executable', 'shared object'][type] ?? `file of type ${type}`}, ` +
        `not a core file (ET_CORE): pass a core written by the kernel, gcore or saveCore(), and the executable as { exe }.`,
    )
  const machine = view.getUint16(18, true)
  if (machine !== ELF.machineX86_64)
    throw new SnapshotFormatError(
      'ERR_SNAPSHOT_ARCH',
      path,
      `${path} is a core of an ${MACHINES[machine] ?? `e_machine ${machine}`} process: loadCore reads x86_64 cores only.`,
    )
}

/** e_phnum, or section header 0's sh_info past PN_XNUM. */
function headerCount(path: string, fd: number, view: DataView, size: number): number {
  const phnum = view.getUint16(56, true)
  if (phnum !== ELF.pnXnum) return phnum
  const shoff = num(view.getBigUint64(40, true))
  if (shoff + ELF.shentSize > size)
    throw corrupt(path, 'its section header 0 (the program header count) lies past the end')
  const sh = readAt(fd, shoff, ELF.shentSize)
  return new DataView(sh.buffer, sh.byteOffset).getUint32(44, true)
}

interface Note {
  readonly name: string
  readonly type: number
  readonly desc: Uint8Array
}

/** The notes of one PT_NOTE segment; a note running past it is an error. */
function parseNotes(path: string, bytes: Uint8Array): Note[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const pad = (n: number): number => (n + 3) & ~3
  const notes: Note[] = []
  for (let at = 0; at + 12 <= bytes.length;) {
    const namesz = view.getUint32(at, true)
    const descsz = view.getUint32(at + 4, true)
    const type = view.getUint32(at + 8, true)
    const descAt = at + 12 + pad(namesz)
    const end = descAt + pad(descsz)
    if (descAt + descsz > bytes.length)
      throw corrupt(path, `note ${notes.length + 1} (type 0x${type.toString(16)}) runs past its PT_NOTE segment`)
    notes.push({ name: cString(bytes, at + 12, namesz), type, desc: bytes.subarray(descAt, descAt + descsz) })
    at = end
  }
  return notes
}

function fileNote(path: string, desc: Uint8Array): CoreFileMap[] {
  const view = new DataView(desc.buffer, desc.byteOffset, desc.byteLength)
  if (desc.length < 16) throw corrupt(path, 'its NT_FILE note is shorter than its header')
  const count = num(view.getBigUint64(0, true))
  const page = view.getBigUint64(8, true) || BigInt(FILE_NOTE_PAGE)
  if (16 + 24 * count > desc.length) throw corrupt(path, `its NT_FILE note lists ${count} files but holds fewer`)
  const names = Buffer.from(desc.buffer, desc.byteOffset + 16 + 24 * count, desc.length - 16 - 24 * count)
    .toString('utf8')
    .split('\0')
  return Array.from({ length: count }, (_, i) => ({
    start: view.getBigUint64(16 + 24 * i, true),
    end: view.getBigUint64(24 + 24 * i, true),
    offset: view.getBigUint64(32 + 24 * i, true) * page,
    path: names[i] ?? '',
  }))
}

/** Decodes the notes into threads and process facts; FPU notes belong to the NT_PRSTATUS before them. */
function decodeNotes(path: string, notes: readonly Note[]): Omit<CoreFile, 'path' | 'size' | 'segments'> {
  const threads: { tid: number; cursig: number; general: Record<string, bigint>; xstate?: Uint8Array }[] = []
  let files: CoreFileMap[] = []
  let auxv: { type: number; value: bigint }[] = []
  let psinfo: CoreFile['psinfo']
  let siginfo: CoreFile['siginfo']
  for (const { name, type, desc } of notes) {
    const view = new DataView(desc.buffer, desc.byteOffset, desc.byteLength)
    const last = threads[threads.length - 1]
    if (name === 'CORE' && type === NT.prstatus) {
      if (desc.length < PRSTATUS.reg + 8 * PRSTATUS.regCount)
        throw corrupt(path, `an NT_PRSTATUS note holds ${desc.length} bytes, not x86_64's ${PRSTATUS.size}`)
      const general: Record<string, bigint> = {}
      x86_64.registers.forEach((reg, i) => (general[reg] = view.getBigUint64(PRSTATUS.reg + 8 * i, true)))
      threads.push({ tid: view.getInt32(PRSTATUS.pid, true), cursig: view.getInt16(PRSTATUS.cursig, true), general })
    } else if (name === 'CORE' && type === NT.fpregset && last && !last.xstate && desc.length >= 512) {
      last.xstate = desc
    } else if (name === 'LINUX' && type === NT.x86Xstate && last && desc.length >= 512) {
      last.xstate = desc
    } else if (name === 'CORE' && type === NT.prpsinfo && desc.length >= PRPSINFO.size) {
      psinfo = {
        pid: view.getInt32(PRPSINFO.pid, true),
        fname: cString(desc, PRPSINFO.fname, PRPSINFO.fnameSize),
        psargs: cString(desc, PRPSINFO.psargs, PRPSINFO.psargsSize).trimEnd(),
      }
    } else if (name === 'CORE' && type === NT.siginfo && desc.length >= SIGINFO.addr + 8) {
      siginfo = {
        signo: view.getInt32(SIGINFO.signo, true),
        code: view.getInt32(SIGINFO.code, true),
        addr: view.getBigUint64(SIGINFO.addr, true),
      }
    } else if (name === 'CORE' && type === NT.auxv) {
      auxv = []
      for (let at = 0; at + 16 <= desc.length; at += 16) {
        const t = num(view.getBigUint64(at, true))
        if (t === 0) break
        auxv.push({ type: t, value: view.getBigUint64(at + 8, true) })
      }
    } else if (name === 'CORE' && type === NT.file) files = fileNote(path, desc)
  }
  // Copies: the note segment's buffer is dropped once decoded.
  const owned = threads.map((t) => ({ ...t, ...(t.xstate ? { xstate: t.xstate.slice() } : {}) }))
  return { threads: owned, files, auxv, ...(psinfo ? { psinfo } : {}), ...(siginfo ? { siginfo } : {}) }
}

/** Reads a core file's headers and notes; ERR_SNAPSHOT_NOT_FOUND, _FOREIGN, _ARCH or _CORRUPT when it cannot. */
export function readCoreFile(path: string): CoreFile {
  let fd: number
  try {
    fd = openSync(path, 'r')
  } catch (error) {
    throw new SnapshotFormatError(
      'ERR_SNAPSHOT_NOT_FOUND',
      path,
      `Cannot open the core file ${path} (${(error as NodeJS.ErrnoException).code ?? String(error)}): check the path.`,
    )
  }
  try {
    const stat = fstatSync(fd)
    if (!stat.isFile())
      throw new SnapshotFormatError(
        'ERR_SNAPSHOT_FOREIGN',
        path,
        `${path} is not a regular file: pass the path of a core file.`,
      )
    const size = stat.size
    const head = readAt(fd, 0, Math.min(size, ELF.headerSize))
    checkHeader(path, head, size)
    const view = new DataView(head.buffer, head.byteOffset, head.byteLength)
    const phoff = num(view.getBigUint64(32, true))
    if (view.getUint16(54, true) !== ELF.phentSize)
      throw corrupt(path, `its program headers are ${view.getUint16(54, true)} bytes each, not ${ELF.phentSize}`)
    const phnum = headerCount(path, fd, view, size)
    if (phoff + phnum * ELF.phentSize > size)
      throw corrupt(path, `its ${phnum} program headers run past the end of the file (${size} bytes)`)
    const ph = readAt(fd, phoff, phnum * ELF.phentSize)
    const pv = new DataView(ph.buffer, ph.byteOffset, ph.byteLength)
    const segments: CoreSegment[] = []
    const notes: Note[] = []
    let noteBytes = 0
    for (let i = 0; i < phnum; i++) {
      const at = i * ELF.phentSize
      const type = pv.getUint32(at, true)
      const offset = num(pv.getBigUint64(at + 8, true))
      const filesz = num(pv.getBigUint64(at + 32, true))
      if ((type === ELF.ptLoad || type === ELF.ptNote) && filesz > 0 && offset + filesz > size)
        throw corrupt(
          path,
          `its ${type === ELF.ptNote ? 'PT_NOTE' : 'PT_LOAD'} segment ${i} declares bytes up to ${offset + filesz}, past the end of the file (${size} bytes)`,
        )
      if (type === ELF.ptLoad) {
        const vaddr = pv.getBigUint64(at + 16, true)
        const memsz = pv.getBigUint64(at + 40, true)
        if (BigInt(filesz) > memsz || vaddr + memsz > 1n << 64n)
          throw corrupt(
            path,
            `its PT_LOAD segment ${i} holds more than its map, or runs past the end of the address space`,
          )
        segments.push({
          vaddr,
          memsz,
          flags: pv.getUint32(at + 4, true),
          fileOffset: offset,
          filesz,
        })
      } else if (type === ELF.ptNote) {
        noteBytes += filesz
        if (noteBytes > NOTES_MAX)
          throw corrupt(
            path,
            `its notes declare ${noteBytes} bytes, more than the ${NOTES_MAX} a core of 256 threads needs`,
          )
        notes.push(...parseNotes(path, readAt(fd, offset, filesz)))
      }
    }
    const decoded = decodeNotes(path, notes)
    if (decoded.threads.length === 0) throw corrupt(path, 'it has no NT_PRSTATUS note (no thread)')
    return { path, size, segments, ...decoded }
  } finally {
    closeSync(fd)
  }
}

/** Segments up to this size are read straight into their buffer; larger ones a chunk at a time. */
const CHUNK = 1 << 20
const ZERO_CHUNK = Buffer.alloc(CHUNK)

/**
 * Reads the held bytes of segments, one open of the file for all of them: a buffer per segment, at
 * most the core's size in memory. A large segment's buffer is allocated zeroed (pages the OS maps on
 * first write) and only its chunks holding a non-zero byte are copied in: a sparse core's holes (saveCore
 * leaves untouched pages as holes) cost no memory.
 */
export function readSegments(path: string, segments: readonly CoreSegment[]): Uint8Array[] {
  const fd = openSync(path, 'r')
  const short = (at: number): SnapshotFormatError => corrupt(path, `a PT_LOAD segment ends early at ${at}`)
  const chunk = Buffer.allocUnsafe(CHUNK)
  try {
    return segments.map((s) => {
      if (s.filesz <= CHUNK) {
        const bytes = readAt(fd, s.fileOffset, s.filesz)
        if (bytes.length < s.filesz) throw short(s.fileOffset + bytes.length)
        return bytes
      }
      const out = new Uint8Array(s.filesz)
      for (let from = 0; from < s.filesz; from += CHUNK) {
        const length = Math.min(CHUNK, s.filesz - from)
        const bytes = readAt(fd, s.fileOffset + from, length, chunk)
        if (bytes.length < length) throw short(s.fileOffset + from + bytes.length)
        if (ZERO_CHUNK.compare(bytes, 0, length, 0, length) !== 0) out.set(bytes, from)
      }
      return out
    })
  } finally {
    closeSync(fd)
  }
}
