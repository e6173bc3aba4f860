// Capture: the one place where the snapshot layer touches a live process. Reads registers (with the
// xsave area), maps, memory per level, backtraces, fds and auxv of a stopped process into SnapshotData.
import { randomUUID } from 'node:crypto'
import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs'
import { parseImage } from '../elf/index.js'
import { ProcsnapError } from '../errors.js'
import { Process, ProcessThread } from '../process/process.js'
import type { StopEvent, Thread } from '../process/events.js'
import type { MemoryMap } from '../process/maps.js'
import { auxvName } from './auxv.js'
import { CaptureMemory, captureMap, Residency } from './capture-memory.js'
import { heldBytes, heldSize } from './content.js'
import { captureBases, rememberCapture } from './incremental.js'
import { trackAfterCapture } from './tracked-writes.js'
import type {
  AuxvEntry,
  CpuInfo,
  FdIdentity,
  FdState,
  Frame,
  MapState,
  SnapshotArch,
  SnapshotData,
  SnapshotKind,
  SnapshotLevel,
  SnapshotStop,
  ThreadState,
  TracerAnswersState,
} from './model.js'
import { hex, mapAt, rememberElf, type SnapshotModule } from './regions.js'
import type { RawRegisters } from '../native/arch/types.js'
import { compactRegisters, type SnapshotRegisters } from './registers.js'
import { snapshotFromData, type ProcessSnapshot, type ThreadSnapshot } from './snapshot.js'
import { unwind, type UnwindModule } from './unwind.js'
import { checkOptions, isBoolean, isString, oneOf, type OptionSchema } from '../options.js'

export interface SnapshotOptions {
  /** 'base' (default): registers, maps, backtraces; 'writable': + writable memory; 'full': + all memory a debugger can read. */
  level?: SnapshotLevel
  name?: string
  /**
   * Share the pages that did not change with the previous snapshot of this process, while it is
   * alive (default true): the new snapshot keeps that one's buffers alive and holds only the pages
   * written since; false reads every touched page into a buffer of this snapshot's own.
   * After a capture that read 32 MiB or more, the pages the process writes are tracked from its next
   * resume on (Linux >= 6.7: tracked-writes.ts), and the next capture reads only those.
   */
  incremental?: boolean
}

/** What createSnapshot's options accept, checked at run time (ERR_BAD_OPTION). */
export const SNAPSHOT_OPTIONS: OptionSchema = {
  level: oneOf('base', 'writable', 'full'),
  name: isString,
  incremental: isBoolean,
}

declare module '../process/process.js' {
  interface Process {
    /** A snapshot of the stopped process: every thread, maps, and memory per level. */
    createSnapshot(options?: SnapshotOptions): ProcessSnapshot
  }
  interface ProcessThread {
    /** A snapshot of this thread: its registers and backtrace, and the process's memory per level. */
    createSnapshot(options?: SnapshotOptions): ThreadSnapshot
  }
}

declare module '../process/events.js' {
  interface Thread {
    createSnapshot(options?: SnapshotOptions): ThreadSnapshot
  }
}

Process.prototype.createSnapshot = function createSnapshot(
  this: Process,
  options: SnapshotOptions = {},
): ProcessSnapshot {
  return capture(this, 'process', this.threads, this.thread.index, options) as ProcessSnapshot
}

ProcessThread.prototype.createSnapshot = function createSnapshot(
  this: ProcessThread,
  options: SnapshotOptions = {},
): ThreadSnapshot {
  const live = this.process.threads.find((t) => t.tid === this.tid)
  if (!live)
    throw new ProcsnapError(
      'ERR_PROCESS_EXITED',
      `Thread ${this.index} (tid ${this.tid}) has exited: it cannot be snapshotted.`,
    )
  return capture(this.process, 'thread', [live], this.index, options) as ThreadSnapshot
}

function capture(
  proc: Process,
  kind: SnapshotKind,
  threads: readonly Thread[],
  current: number,
  options: SnapshotOptions,
): ProcessSnapshot | ThreadSnapshot {
  checkOptions('createSnapshot', options, SNAPSHOT_OPTIONS)
  const { data, modules } = captureData(proc, kind, threads, current, options, false)
  return snapshotFromData(data, modules)
}

/**
 * The stopped process's state as SnapshotData. `live` (a dump's capture, dump.ts): large readable
 * maps are left in the process to be read as they are written, and nothing is kept for a later
 * incremental capture.
 */
export function captureData(
  proc: Process,
  kind: SnapshotKind,
  threads: readonly Thread[],
  current: number,
  options: SnapshotOptions,
  live: boolean,
): { data: SnapshotData; modules: SnapshotModule[] } {
  const level = options.level ?? 'base'
  const arch = proc.arch.name as SnapshotArch
  const liveModules = proc.modules
  const buildIds = new Map(liveModules.map((m) => [m.path, m.elf.buildId]))
  for (const m of liveModules) rememberElf(m.path, m.elf.buildId, m.elf)
  const residency = new Residency(proc.pid)
  const earlier = live ? undefined : captureBases(proc)
  // With an earlier capture alive, fresh huge pages cost 3-9x more to fill on this VM than 4 KiB ones (bench 'pages')
  const memory = new CaptureMemory(residency, earlier === undefined)
  memory.live = live
  let maps: MapState[]
  try {
    const share = options.incremental !== false
    maps = snapshotMaps(proc).map((m) => captureMap(proc, m, level, buildIds.get(m.path), memory, earlier?.(m), share))
  } finally {
    residency.close()
  }
  if (!live) rememberCapture(proc, level, maps)
  if (!live && options.incremental !== false) trackAfterCapture(proc, level, maps)
  const modules: SnapshotModule[] = liveModules.map((m) => ({
    name: m.name,
    path: m.path,
    start: m.base,
    end: m.end,
    bias: m.bias,
    elf: m.elf,
  }))
  const read = reader(proc, maps)
  const vdso = vdsoModule(maps, read)
  const unwinding = {
    modules: vdso ? [...modules, vdso] : modules,
    unwindModules: unwindModulesOf(modules, vdso),
    maps,
    read,
  }
  const threadStates: ThreadState[] = threads.map((t) => captureThread(proc, t, unwinding))
  const data: SnapshotData = {
    kind,
    level,
    name: options.name,
    snapshotId: randomUUID(),
    arch,
    pid: proc.pid,
    ...ownPid(proc),
    aslrEnabled: proc.aslr,
    exe: proc.path,
    argv: [...proc.argv],
    cwd: readlinkSync(`/proc/${proc.pid}/cwd`),
    createdAt: new Date().toISOString(),
    stop: stopOf(proc.lastStop, proc, modules, maps),
    threads: threadStates,
    current,
    maps,
    fds: readFds(proc.pid),
    auxv: readAuxv(proc.pid),
    cpu: cpuOf(proc, arch),
    ...answersOf(proc),
  }
  return { data, modules }
}

/** The unwinder reads live stacks a page at a time: one process_vm_readv per 4 KiB, not per 8-byte slot. */
const BLOCK = 4096n

/**
 * Reads for the unwinder: captured contents first, else the live process, in 4 KiB blocks cached for
 * the whole capture (the process is stopped; 256 threads' frames cost one read per stack page);
 * undefined when unreadable.
 */
function reader(proc: Process, maps: readonly MapState[]): (address: bigint, length: number) => Uint8Array | undefined {
  const blocks = new Map<bigint, Uint8Array | null>()
  const block = (map: MapState, index: bigint): Uint8Array | undefined => {
    let bytes = blocks.get(index)
    if (bytes === undefined) {
      const start = index * BLOCK > map.start ? index * BLOCK : map.start
      const end = (index + 1n) * BLOCK < map.end ? (index + 1n) * BLOCK : map.end
      try {
        bytes = proc.readMapped(start, Number(end - start))
      } catch {
        bytes = null
      }
      blocks.set(index, bytes)
    }
    return bytes ?? undefined
  }
  return (address, length) => {
    const map = mapAt(maps, address)
    if (!map) return undefined
    const from = Number(address - map.start)
    if (from + length <= heldSize(map)) return heldBytes(map, from, length)
    const end = address + BigInt(length)
    const first = address / BLOCK
    if (length > 0 && end <= map.end && (end - 1n) / BLOCK === first) {
      const at = Number(address - (first * BLOCK > map.start ? first * BLOCK : map.start))
      return block(map, first)?.subarray(at, at + length)
    }
    try {
      return proc.readMemory(address, length)
    } catch {
      return undefined
    }
  }
}

/** What unwinding a thread needs, built once per snapshot. */
interface Unwinding {
  /** Modules that name frames: the process's, and the vDSO's. */
  readonly modules: readonly SnapshotModule[]
  readonly unwindModules: readonly UnwindModule[]
  readonly maps: readonly MapState[]
  readonly read: (address: bigint, length: number) => Uint8Array | undefined
}

interface VdsoModule extends SnapshotModule {
  readonly bytes: Uint8Array
}

/** The vDSO has no file: its ELF image (symbols, CFI) is read from memory, to unwind and name its frames. */
export function vdsoModule(maps: readonly MapState[], read: Unwinding['read']): VdsoModule | undefined {
  const map = maps.find((m) => m.path === '[vdso]')
  const bytes = map && read(map.start, Number(map.end - map.start))
  if (!map || !bytes) return undefined
  try {
    const elf = parseImage(bytes, '[vdso]') // the same image in every process: parsed once
    return {
      name: '[vdso]',
      path: '[vdso]',
      start: map.start,
      end: map.end,
      bias: map.start - elf.minLoadVaddr,
      elf,
      bytes,
    }
  } catch {
    return undefined
  }
}

export function unwindModulesOf(modules: readonly SnapshotModule[], vdso: VdsoModule | undefined): UnwindModule[] {
  const list: UnwindModule[] = modules.flatMap((m) =>
    m.elf ? [{ name: m.name, start: m.start, end: m.end, bias: m.bias, elf: m.elf }] : [],
  )
  if (vdso?.elf)
    list.push({ name: vdso.name, start: vdso.start, end: vdso.end, bias: vdso.bias, elf: vdso.elf, bytes: vdso.bytes })
  return list
}

function captureThread(proc: Process, t: Thread, u: Unwinding): ThreadState {
  const arch = proc.arch.name as SnapshotArch
  const raw: RawRegisters = { block: generalBlock(proc, t), extended: proc.arch.readExtendedArea?.(t.tid) }
  const decoders = proc.arch.registerDecoders(raw.extended)
  // The unwinder needs only general registers: a plain record of the block, no xsave decoding.
  const general: Record<string, bigint> = {}
  proc.arch.registers.forEach((name, i) => (general[name] = raw.block[i] ?? 0n))
  const isCode = (address: bigint): boolean => mapAt(u.maps, address)?.perms[2] === 'x'
  const frames = unwind({ arch, regs: general, modules: u.unwindModules, read: u.read, isCode })
  const backtrace = frames.map((f, i) => frameOf(f.pc, i, f.via, f.cfa, u.modules, u.maps))
  let regs: SnapshotRegisters | undefined
  return {
    tid: t.tid,
    index: t.index,
    get regs(): SnapshotRegisters {
      return (regs ??= compactRegisters(arch, decoders, raw))
    },
    backtrace,
  }
}

/** The thread's general register block, as the thread cached it at this stop (no second PTRACE_GETREGS). */
function generalBlock(proc: Process, t: Thread): BigUint64Array {
  if (t instanceof ProcessThread) return t.registerBlock()
  const values = t.regs.toJSON()
  return BigUint64Array.from(proc.arch.registers, (name) => values[name] ?? 0n)
}

/** Symbolizes a frame; a caller's symbol is looked up at pc - 1, inside its call instruction. */
export function frameOf(
  pc: bigint,
  depth: number,
  via: Frame['via'],
  cfa: bigint | undefined,
  modules: readonly SnapshotModule[],
  maps: readonly MapState[],
): Frame {
  const mod = modules.find((m) => pc >= m.start && pc < m.end)
  const lookup = depth > 0 ? pc - 1n : pc
  const hit = mod?.elf?.symbolize(lookup - mod.bias)
  const extra = cfa !== undefined ? { cfa } : {}
  if (mod && hit) {
    const offset = pc - mod.bias - hit.symbol.value
    return {
      pc,
      module: mod.name,
      symbol: hit.symbol.name,
      offset,
      location: `${mod.name}!${hit.symbol.name}${offset ? `+${hex(offset)}` : ''}`,
      via,
      ...extra,
    }
  }
  if (mod)
    return {
      pc,
      module: mod.name,
      offset: pc - mod.start,
      location: `${mod.name}+${hex(pc - mod.start)}`,
      via,
      ...extra,
    }
  const map = mapAt(maps, pc)
  return {
    pc,
    offset: 0n,
    location: map?.path.startsWith('[') ? `${map.path}+${hex(pc - map.start)}` : hex(pc),
    via,
    ...extra,
  }
}

function stopOf(
  event: StopEvent | undefined,
  proc: Process,
  modules: readonly SnapshotModule[],
  maps: readonly MapState[],
): SnapshotStop {
  if (event === undefined || event.kind === 'exited' || event.kind === 'killed') {
    const t = proc.thread
    return {
      kind: proc.attached && event === undefined ? 'attach' : 'launch',
      thread: t.index,
      pc: t.pc,
      location: frameOf(t.pc, 0, 'pc', undefined, modules, maps).location,
    }
  }
  const base = { thread: event.thread.index, pc: event.pc, location: event.location }
  if (event.kind === 'signal') {
    return {
      kind: 'signal',
      ...base,
      signal: event.signal,
      signo: event.signo,
      code: event.code,
      ...(event.faultAddress !== undefined ? { faultAddress: event.faultAddress } : {}),
    }
  }
  return { kind: event.kind, ...base }
}

const S_IFMT = 0o170000
/** Character devices (terminals, /dev/null), FIFOs (pipes) and sockets: objects of the machine, not the project's files. */
const MACHINE_OBJECTS = new Set([0o020000, 0o010000, 0o140000])

/** fstat's identity of what a descriptor link names, when it is a terminal, pipe, socket or device. */
function identity(link: string): FdIdentity | undefined {
  const st = statSync(link, { bigint: true, throwIfNoEntry: false })
  if (!st || !MACHINE_OBJECTS.has(Number(st.mode) & S_IFMT)) return undefined
  return { dev: st.dev, ino: st.ino, mode: Number(st.mode), rdev: st.rdev }
}

/**
 * The pid the process sees of itself, when a PID namespace makes it differ: an isolated launch's is
 * known (proc.isolation.pid) without reading /proc/PID/status (~50 µs a capture); else the last of NSpid.
 */
/** The process's maps as a snapshot holds them: see coalesced(). */
export function snapshotMaps(proc: Process): readonly MemoryMap[] {
  const live = proc.sharedMaps()
  let maps = coalescedMaps.get(live)
  if (!maps) coalescedMaps.set(live, (maps = Object.freeze(coalesced(live, startBrkOf(proc)))))
  return maps
}

/** By the array of maps read at a stop: a restore loop sees the same layout thousands of times. */
const coalescedMaps = new WeakMap<readonly MemoryMap[], readonly MemoryMap[]>()

/** start_brk by process, with the address space it was read in (its first map): it changes only with an exec. */
const startBrks = new WeakMap<Process, { space: string; value: bigint | undefined }>()

function startBrkOf(proc: Process): bigint | undefined {
  const first = proc.sharedMaps()[0]
  const space = `${proc.path}@${first?.start ?? 0n}`
  const known = startBrks.get(proc)
  if (known && known.space === space) return known.value
  const value = startBrk(proc.pid)
  startBrks.set(proc, { space, value })
  return value
}

/**
 * The maps with the heap as one map from start_brk on. The kernel keeps adjacent pieces of the heap
 * apart for reasons the program cannot see, write tracking's userfaultfd among them (a heap grown by
 * brk after registration is a second VMA, and the .bss below may join it), and a snapshot must not
 * depend on whether procsnap tracked writes, or the kernel offers it. Other anonymous neighbours
 * stay apart: a thread's stack (MAP_NORESERVE) next to other memory is a map of its own.
 */
function coalesced(maps: readonly MemoryMap[], startBrk: bigint | undefined): MemoryMap[] {
  const out: MemoryMap[] = []
  for (const m of splitAtHeap(maps, startBrk)) {
    const last = out.at(-1)
    if (last && last.end === m.start && last.path === '[heap]' && m.path === '[heap]' && last.perms === m.perms)
      out[out.length - 1] = { ...last, end: m.end }
    else out.push(m)
  }
  return out
}

/**
 * The heap as [start_brk, its end): the kernel names '[heap]' any map that reaches into the break's
 * range, and a merged one may begin below it (the executable's .bss joined to the heap); that part
 * is anonymous memory.
 */
function splitAtHeap(maps: readonly MemoryMap[], startBrk: bigint | undefined): MemoryMap[] {
  if (startBrk === undefined) return [...maps]
  return maps.flatMap((m) =>
    m.path === '[heap]' && m.start < startBrk && startBrk < m.end
      ? [
          { ...m, end: startBrk, path: '' },
          { ...m, start: startBrk, offset: 0n },
        ]
      : [m],
  )
}

/** start_brk of /proc/PID/stat (field 47): where the heap begins; undefined if unreadable. */
function startBrk(pid: number): bigint | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1')
    const field = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[47 - 3]
    return field ? BigInt(field) : undefined
  } catch {
    return undefined
  }
}

/** Where fixedRandom's stream and the virtual clock stand, when the process has either. */
function answersOf(proc: Process): { answers?: TracerAnswersState } {
  const { random, clockNs } = proc.answers
  if (!random && clockNs === undefined) return {}
  return { answers: { ...(random ? { random } : {}), ...(clockNs !== undefined ? { clockNs } : {}) } }
}

function ownPid(proc: Process): { ownPid?: number } {
  const isolation = proc.isolation
  if (isolation.isolated) return isolation.pid !== proc.pid ? { ownPid: isolation.pid } : {}
  try {
    const line = /^NSpid:\s+(.*)$/m.exec(readFileSync(`/proc/${proc.pid}/status`, 'latin1'))?.[1]
    const own = Number(line?.trim().split(/\s+/).at(-1))
    return Number.isInteger(own) && own !== proc.pid ? { ownPid: own } : {}
  } catch {
    return {}
  }
}

/** Open file descriptors from /proc/PID/fd and fdinfo. */
export function readFds(pid: number): FdState[] {
  const fds: FdState[] = []
  let names: string[]
  try {
    names = readdirSync(`/proc/${pid}/fd`)
  } catch {
    return fds
  }
  for (const name of names.map(Number).sort((a, b) => a - b)) {
    try {
      const target = readlinkSync(`/proc/${pid}/fd/${name}`)
      const info = readFileSync(`/proc/${pid}/fdinfo/${name}`, 'latin1')
      const pos = /^pos:\s+(\d+)/m.exec(info)?.[1] ?? '0'
      const flags = /^flags:\s+([0-7]+)/m.exec(info)?.[1] ?? '0'
      const stat = identity(`/proc/${pid}/fd/${name}`)
      fds.push({ fd: name, target, flags: parseInt(flags, 8), offset: BigInt(pos), ...(stat ? { stat } : {}) })
    } catch {
      // closed between readdir and readlink
    }
  }
  return fds
}

function readAuxv(pid: number): AuxvEntry[] {
  const buf = readFileSync(`/proc/${pid}/auxv`)
  const entries: AuxvEntry[] = []
  for (let i = 0; i + 16 <= buf.length; i += 16) {
    const type = Number(buf.readBigUInt64LE(i))
    if (type === 0) break
    entries.push({ type, name: auxvName(type), value: buf.readBigUInt64LE(i + 8) })
  }
  return entries
}

function cpuOf(proc: Process, arch: SnapshotArch): CpuInfo {
  const features = proc.arch.registerFeatures?.()
  return features
    ? { arch, xcr0: features.xcr0, components: features.components, xsaveSize: features.xsaveSize }
    : { arch, components: [] }
}
