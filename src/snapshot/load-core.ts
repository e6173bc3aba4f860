// loadCore(path, { exe }): an x86_64 ELF core file (the kernel's, gdb's gcore, saveCore's) as a
// ProcessSnapshot. Threads from NT_PRSTATUS and the xsave notes, maps from PT_LOAD and NT_FILE, the
// stop from NT_SIGINFO / pr_cursig, and backtraces unwound here over the core's memory with the ELF
// files on disk, as capture does over a live process.
import { randomUUID } from 'node:crypto'
import { statSync } from 'node:fs'
import { basename, resolve } from 'node:path'
import { readCoreFile, readSegments, type CoreFile } from '../core/read.js'
import { decodeCoreXState } from '../core/xstate-read.js'
import { ELF } from '../core/layout.js'
import { readElf } from '../elf/index.js'
import { SnapshotFormatError } from '../errors.js'
import { SI_KERNEL, signalName, TRAP_BRKPT, TRAP_TRACE } from '../native/constants.js'
import { componentNames } from '../native/arch/x86_64-xsave-layout.js'
import { checkOptions, isString, type OptionSchema } from '../options.js'
import { auxvName } from './auxv.js'
import { frameOf, unwindModulesOf, vdsoModule } from './capture.js'
import { heldBytes, heldSize } from './content.js'
import { levelRank, levelHolding } from './memory-view.js'
import type { CpuInfo, MapState, SnapshotData, SnapshotLevel, SnapshotStop, ThreadState } from './model.js'
import { mapAt, modulesOf } from './regions.js'
import { snapshotFromData, type ProcessSnapshot } from './snapshot.js'
import { unwind } from './unwind.js'

export interface LoadCoreOptions {
  /** The executable the core is of, when it is not at the path the core names (moved, or built elsewhere). */
  exe?: string
}

const LOAD_CORE_OPTIONS: OptionSchema = { exe: isString }

const SIGTRAP = 5
const NT_GNU_BUILD_ID = 3
/** Signals whose si_addr is the faulting address (SIGILL, SIGBUS, SIGFPE, SIGSEGV), as capture keeps it. */
const FAULTING = new Set([4, 7, 8, 11])
/** How far past the executable the kernel may start the heap (arch_randomize_brk: 1 GiB on x86_64). */
const BRK_RANGE = 0x40000000n
const VSYSCALL = 0xffffffffff600000n
const AT_PHDR = 3
const AT_ENTRY = 9
const AT_SYSINFO_EHDR = 33
/** Where Linux loads a PIE executable with ASLR off (arch/x86 ELF_ET_DYN_BASE under ADDR_NO_RANDOMIZE). */
const NO_ASLR_PIE_BASE = 0x555555554000n

function permsOf(flags: number): string {
  return `${flags & ELF.pfR ? 'r' : '-'}${flags & ELF.pfW ? 'w' : '-'}${flags & ELF.pfX ? 'x' : '-'}p`
}

/** The maps: PT_LOAD's ranges and flags, NT_FILE's paths and offsets, pseudo-paths where the core implies them. */
function mapsOf(
  core: CoreFile,
  contents: readonly Uint8Array[],
  exe: string | undefined,
  oldExe: string | undefined,
): MapState[] {
  const files = new Map(core.files.map((f) => [f.start, f]))
  const inodes = new Map<string, number>()
  const inodeOf = (path: string): number => {
    let ino = inodes.get(path)
    if (ino === undefined) {
      // The core does not say; the file's inode here, or 1 for a file gone since (still a file map).
      ino = Number(statSync(path, { throwIfNoEntry: false })?.ino ?? 1) || 1
      inodes.set(path, ino)
    }
    return ino
  }
  const auxv = new Map(core.auxv.map((e) => [e.type, e.value]))
  const vdso = auxv.get(AT_SYSINFO_EHDR)
  const mainSp = core.threads.find((t) => t.tid === core.psinfo?.pid)?.general.rsp ?? core.threads[0]?.general.rsp
  const maps = core.segments.map((s, i): MapState => {
    const file = files.get(s.vaddr)
    const end = s.vaddr + s.memsz
    let path = file?.path ?? ''
    if (oldExe !== undefined && exe !== undefined && path === oldExe) path = exe
    if (!file) {
      if (s.vaddr === vdso) path = '[vdso]'
      else if (s.vaddr === VSYSCALL) path = '[vsyscall]'
      else if (mainSp !== undefined && mainSp >= s.vaddr && mainSp < end) path = '[stack]'
    }
    const content = contents[i]
    const held =
      s.filesz === 0 || !content ? {} : s.filesz >= Number(s.memsz) ? { content } : { sparse: sparseOf(content) }
    return {
      start: s.vaddr,
      end,
      perms: permsOf(s.flags),
      offset: file?.offset ?? 0n,
      path,
      inode: path.startsWith('/') ? inodeOf(path) : 0,
      ...held,
    }
  })
  maps.push(...unloadedFileMaps(core, maps, exe, oldExe, inodeOf))
  maps.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0))
  nameVvarAndHeap(maps, vdso, exe)
  const ids = new Map<string, string>()
  for (const m of maps) {
    const id = m.path.startsWith('/') ? buildIdOf(m) : undefined
    if (id !== undefined && !ids.has(m.path)) ids.set(m.path, id)
  }
  return maps.map((m) => {
    const buildId = ids.get(m.path)
    return withUnreadable(buildId === undefined ? m : { ...m, buildId })
  })
}

/**
 * File maps NT_FILE lists that have no PT_LOAD (gdb's gcore leaves out code it can read from the file):
 * maps holding nothing, their permissions those of the file's PT_LOAD at that offset (r--p if unknown).
 */
function unloadedFileMaps(
  core: CoreFile,
  loaded: readonly MapState[],
  exe: string | undefined,
  oldExe: string | undefined,
  inodeOf: (path: string) => number,
): MapState[] {
  const starts = new Set(loaded.map((m) => m.start))
  return core.files
    .filter((f) => !starts.has(f.start) && f.end > f.start)
    .map((f) => {
      const path = oldExe !== undefined && exe !== undefined && f.path === oldExe ? exe : f.path
      return {
        start: f.start,
        end: f.end,
        perms: permsInFile(path, f.offset),
        offset: f.offset,
        path,
        inode: inodeOf(path),
      }
    })
}

function permsInFile(path: string, offset: bigint): string {
  try {
    const seg = readElf(path).segments.find(
      (s) => s.type === ELF.ptLoad && offset >= s.offset - (s.offset % 4096n) && offset < s.offset + s.filesz,
    )
    return seg ? permsOf(seg.flags) : 'r--p'
  } catch {
    return 'r--p'
  }
}

/** Held bytes shorter than their map (the kernel's first page of a file map): page by page, zero pages left out. */
function sparseOf(content: Uint8Array): NonNullable<MapState['sparse']> {
  const pages = new Map<number, Uint8Array>()
  for (let at = 0; at < content.length; at += 4096) {
    const page = content.subarray(at, at + 4096)
    if (page.some((b) => b !== 0)) pages.set(at, page)
  }
  return { size: content.length, pages }
}

/**
 * [vvar] (and [vvar_vclock]) are the read-only data maps right below the vDSO; [heap] the anonymous
 * writable map within brk's 1 GiB past the executable that is not its .bss (adjacent to it). The
 * core names neither: they are inferred, and left unnamed when unsure.
 */
function nameVvarAndHeap(maps: MapState[], vdso: bigint | undefined, exe: string | undefined): void {
  // Newer kernels put [vvar] then [vvar_vclock] right below the vDSO; older ones [vvar] alone.
  const at = maps.findIndex((m) => m.start === vdso)
  const data: number[] = []
  for (let i = at - 1, end = vdso; i >= 0 && data.length < 2; i--) {
    const m = maps[i]
    if (!m || m.end !== end || m.path !== '' || m.perms[1] === 'w' || m.perms[2] === 'x') break
    data.unshift(i)
    end = m.start
  }
  data.forEach((i, k) => {
    const m = maps[i]
    if (m) maps[i] = { ...m, path: k === 0 ? '[vvar]' : '[vvar_vclock]' }
  })
  const exeMaps = maps.filter((m) => m.path === exe)
  const last = exeMaps[exeMaps.length - 1]
  if (!last) return
  // brk starts within 1 GiB past the executable (arch/x86 arch_randomize_brk), right after its .bss
  // without ASLR: the first anonymous writable map there that is not the .bss is the heap.
  const gap = maps.filter(
    (m) => m.path === '' && m.perms.startsWith('rw') && m.start >= last.end && m.start - last.end <= BRK_RANGE,
  )
  const bss = exe === undefined ? undefined : bssEnd(exe, maps)
  const first = gap[0]
  const isBss = first !== undefined && first.start === last.end && (bss === undefined || first.end <= bss)
  const heap = isBss ? gap[1] : first
  if (heap) maps[maps.indexOf(heap)] = { ...heap, path: '[heap]' }
}

/** Where the executable's .bss ends in memory (its PT_LOADs' last byte, page-rounded), from the file on disk. */
function bssEnd(exe: string, maps: readonly MapState[]): bigint | undefined {
  const base = maps.find((m) => m.path === exe && m.offset === 0n)?.start
  if (base === undefined) return undefined
  try {
    const elf = readElf(exe)
    const loads = elf.segments.filter((seg) => seg.type === ELF.ptLoad)
    const end = loads.reduce((max, seg) => (seg.vaddr + seg.memsz > max ? seg.vaddr + seg.memsz : max), 0n)
    return ((base - elf.minLoadVaddr + end + 4095n) / 4096n) * 4096n
  } catch {
    return undefined
  }
}

/** The GNU build-id in the first page of a file map, when the core holds it (the kernel dumps ELF headers' pages). */
function buildIdOf(map: MapState): string | undefined {
  if (map.offset !== 0n || heldSize(map) === 0) return undefined
  const page = heldBytes(map, 0, Math.min(heldSize(map), 4096))
  const view = new DataView(page.buffer, page.byteOffset, page.byteLength)
  if (page.length < ELF.headerSize || view.getUint32(0, false) !== 0x7f454c46) return undefined
  const phoff = Number(view.getBigUint64(32, true))
  const phnum = view.getUint16(56, true)
  // The PT_NOTE segments that lie in this page (.note.gnu.build-id sits right after the headers).
  for (let i = 0, at = phoff; i < phnum && at + ELF.phentSize <= page.length; i++, at += ELF.phentSize) {
    if (view.getUint32(at, true) !== ELF.ptNote) continue
    const from = Number(view.getBigUint64(at + 8, true))
    const to = Math.min(page.length, from + Number(view.getBigUint64(at + 32, true)))
    for (let n = from; n + 12 <= to;) {
      const [namesz, descsz, type] = [view.getUint32(n, true), view.getUint32(n + 4, true), view.getUint32(n + 8, true)]
      const desc = n + 12 + ((namesz + 3) & ~3)
      if (desc + descsz > to) break
      if (type === NT_GNU_BUILD_ID && namesz === 4 && view.getUint32(n + 12, false) === 0x474e5500)
        return Buffer.from(page.subarray(desc, desc + descsz)).toString('hex')
      n = desc + ((descsz + 3) & ~3)
    }
  }
  return undefined
}

/** Why a map the snapshot's level should hold is not held: the core left it out. */
function withUnreadable(m: MapState): MapState {
  const held = heldSize(m)
  const size = Number(m.end - m.start)
  if (held >= size || !m.perms.startsWith('r')) return m
  const why =
    held === 0
      ? 'the core file holds none of it (the kernel and gcore leave out file maps the process did not write, and [vvar])'
      : `the core file holds its first 0x${held.toString(16)} bytes only`
  return { ...m, unreadable: why }
}

/**
 * The level the core's contents amount to: 'full' when it holds every readable map but [vvar] and
 * [vsyscall], 'writable' when it holds every writable one, else 'base'. A kernel core is 'writable'
 * (it leaves out the text of file maps past their first page); the held bytes of any map read either way.
 */
function levelOf(maps: readonly MapState[]): SnapshotLevel {
  const complete = (m: MapState): boolean =>
    heldSize(m) >= Number(m.end - m.start) ||
    !m.perms.startsWith('r') ||
    m.path.startsWith('[vvar') ||
    m.path === '[vsyscall]'
  const wanted = (level: SnapshotLevel): boolean =>
    maps.every((m) => levelRank(levelHolding(m)) > levelRank(level) || complete(m))
  return wanted('full') ? 'full' : wanted('writable') ? 'writable' : 'base'
}

/** Thread indexes in creation order: the main thread (tid = pid) first, then by tid. */
function indexes(core: CoreFile): Map<number, number> {
  const pid = core.psinfo?.pid ?? core.threads[0]?.tid
  const tids = core.threads.map((t) => t.tid).sort((a, b) => (a === pid ? -1 : b === pid ? 1 : a - b))
  return new Map(tids.map((tid, i) => [tid, i + 1]))
}

/**
 * The stop: NT_SIGINFO's signal on the thread with pr_cursig (SIGTRAP from int3 or a step as a
 * breakpoint or step stop); a SIGTRAP with no NT_SIGINFO (saveCore at a breakpoint) a breakpoint; no
 * signal at all (gcore of a running process, saveCore at launch or attach) an 'attach' stop: the
 * process was stopped from outside, as attach() stops it.
 */
function stopOf(core: CoreFile, index: Map<number, number>, where: (pc: bigint) => string): SnapshotStop {
  const stopped = core.threads.find((t) => t.cursig !== 0) ?? core.threads[0]
  const thread = index.get(stopped?.tid ?? 0) ?? 1
  const pc = stopped?.general.rip ?? 0n
  const location = where(pc)
  const info = core.siginfo
  const signo = info?.signo || stopped?.cursig || 0
  if (signo === 0) return { kind: 'attach', thread, pc, location }
  const code = info?.code ?? 0
  if (signo === SIGTRAP && (!info || code === SI_KERNEL || code === TRAP_BRKPT))
    return { kind: 'breakpoint', thread, pc, location }
  if (signo === SIGTRAP && code === TRAP_TRACE) return { kind: 'step', thread, pc, location }
  return {
    kind: 'signal',
    thread,
    pc,
    location,
    signal: signalName(signo),
    signo,
    code,
    ...(info && FAULTING.has(signo) ? { faultAddress: info.addr } : {}),
  }
}

function cpuOf(xcr0: bigint | undefined, size: number | undefined): CpuInfo {
  if (xcr0 === undefined) return { arch: 'x86_64', components: componentNames(3n) }
  return { arch: 'x86_64', xcr0, components: componentNames(xcr0), ...(size ? { xsaveSize: size } : {}) }
}

/** The executable: the file mapped at AT_PHDR (or AT_ENTRY); else the one named like NT_PRPSINFO's fname. */
function exeOf(core: CoreFile): string | undefined {
  const auxv = new Map(core.auxv.map((e) => [e.type, e.value]))
  for (const type of [AT_PHDR, AT_ENTRY]) {
    const at = auxv.get(type)
    const file = at === undefined ? undefined : core.files.find((f) => at >= f.start && at < f.end)
    if (file) return file.path
  }
  const fname = core.psinfo?.fname
  return core.files.find((f) => fname && basename(f.path).startsWith(fname))?.path ?? core.files[0]?.path
}

/**
 * Reads an x86_64 ELF core file as a process snapshot, with `exe` in place of the executable the core
 * names. Typed errors (ERR_SNAPSHOT_NOT_FOUND, _FOREIGN, _ARCH, _CORRUPT) for a file that is not one.
 */
export function loadCore(path: string, options: LoadCoreOptions = {}): ProcessSnapshot {
  checkOptions('loadCore', options, LOAD_CORE_OPTIONS)
  const core = readCoreFile(path)
  const named = exeOf(core)
  const exe = options.exe !== undefined ? resolve(options.exe) : named
  const index = indexes(core)
  if (index.size !== core.threads.length)
    throw new SnapshotFormatError(
      'ERR_SNAPSHOT_CORRUPT',
      path,
      `${path} is not a valid core file: two NT_PRSTATUS notes name the same thread.`,
    )
  const maps = mapsOf(core, readSegments(path, core.segments), exe, named)
  const modules = modulesOf(maps)
  const read = (address: bigint, length: number): Uint8Array | undefined => {
    const map = mapAt(maps, address)
    const from = map ? Number(address - map.start) : 0
    return map && from + length <= heldSize(map) ? heldBytes(map, from, length) : undefined
  }
  const vdso = vdsoModule(maps, read)
  // Modules that name frames: the files' and the vDSO's (parsed from the core's copy of it).
  const framing = vdso ? [...modules, vdso] : modules
  const unwindModules = unwindModulesOf(modules, vdso)
  const isCode = (address: bigint): boolean => mapAt(maps, address)?.perms[2] === 'x'
  let cpu: CpuInfo | undefined
  const threads: ThreadState[] = core.threads.map((t) => {
    const x = t.xstate ? decodeCoreXState(t.xstate) : { regs: {} }
    cpu ??= cpuOf(x.xcr0, t.xstate?.length)
    const frames = unwind({ arch: 'x86_64', regs: t.general, modules: unwindModules, read, isCode })
    return {
      tid: t.tid,
      index: index.get(t.tid) ?? 0,
      regs: { ...t.general, ...x.regs },
      backtrace: frames.map((f, i) => frameOf(f.pc, i, f.via, f.cfa, framing, maps)),
    }
  })
  threads.sort((a, b) => a.index - b.index)
  const stop = stopOf(core, index, (pc) => frameOf(pc, 0, 'pc', undefined, framing, maps).location)
  const exePath = exe ?? ''
  const exeStart = maps.find((m) => m.path === exePath && m.offset === 0n)?.start
  const data: SnapshotData = {
    kind: 'process',
    level: levelOf(maps),
    name: undefined,
    snapshotId: randomUUID(),
    arch: 'x86_64',
    pid: core.psinfo?.pid ?? core.threads[0]?.tid ?? 0,
    aslrEnabled: exeStart !== NO_ASLR_PIE_BASE,
    exe: exePath,
    argv: core.psinfo?.psargs ? core.psinfo.psargs.split(' ') : [exePath],
    cwd: '',
    createdAt: statSync(path).mtime.toISOString(),
    stop,
    threads,
    current: stop.thread,
    maps,
    fds: [],
    auxv: core.auxv.map((e) => ({ type: e.type, name: auxvName(e.type), value: e.value })),
    cpu: cpu ?? cpuOf(undefined, undefined),
  }
  return snapshotFromData(data, modules) as ProcessSnapshot
}
