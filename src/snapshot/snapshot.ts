// ProcessSnapshot and ThreadSnapshot: the user-facing view of SnapshotData, with memory reads,
// symbolization, save, diff and pretty printing. No handle on a live process.
import type {
  Frame,
  MapState,
  SnapshotData,
  SnapshotDiffData,
  SnapshotStop,
  FdState,
  AuxvEntry,
  CpuInfo,
  SnapshotArch,
  SnapshotKind,
  SnapshotLevel,
  ThreadState,
} from './model.js'
import { SnapshotMemory } from './memory-view.js'
import { hex, modulesOf, symbolizeIn, type SnapshotModule } from './regions.js'
import { registerView, type SnapshotRegisters } from './registers.js'
import { diffSnapshots } from './diff.js'
import { readSnapshotData, saveSnapshotData } from './format-file.js'
import {
  renderBacktrace,
  renderDiff,
  renderMaps,
  renderMemory,
  renderRegisters,
  shouldColor,
  type RenderStyle,
} from './pprint.js'
import { ProcsnapError } from '../errors.js'
import { saveCoreData } from '../core/write.js'

/** Where pretty printing goes: process.stdout by default; colors when it is a TTY or FORCE_COLOR says so. */
export interface PrintOptions {
  readonly stream?: { write(text: string): unknown; readonly isTTY?: boolean }
  /** Force colors on or off. */
  readonly color?: boolean
}

/** One thread of a snapshot. */
export interface SnapshotThread {
  readonly tid: number
  /** 1 for the main thread, then 2, 3, ... in creation order. */
  readonly index: number
  readonly regs: SnapshotRegisters
  readonly backtrace: readonly Frame[]
}

/** A thread of the snapshot; its register view is built when first read (one of 256 threads costs nothing until then). */
function threadView(arch: SnapshotArch, t: ThreadState): SnapshotThread {
  let regs: SnapshotRegisters | undefined
  return Object.freeze({
    tid: t.tid,
    index: t.index,
    get regs(): SnapshotRegisters {
      return (regs ??= registerView(arch, t.regs))
    },
    backtrace: t.backtrace,
  })
}

function print(text: string, options: PrintOptions): void {
  const stream = options.stream ?? process.stdout
  stream.write(text.endsWith('\n') ? text : `${text}\n`)
}

function styleFor(options: PrintOptions): RenderStyle {
  return { color: options.color ?? shouldColor(options.stream ?? process.stdout) }
}

abstract class BaseSnapshot {
  /** @internal The plain data; treat as read-only. */
  readonly data: SnapshotData
  /** The memory the snapshot holds: read(location, length), find(bytes). */
  readonly memory: SnapshotMemory
  private moduleList: SnapshotModule[] | undefined
  private threadList: SnapshotThread[] | undefined

  /** @internal Use proc.createSnapshot(), thread.createSnapshot() or loadSnapshot(). */
  constructor(data: SnapshotData, modules?: SnapshotModule[]) {
    this.data = data
    this.moduleList = modules
    this.memory = new SnapshotMemory(data.maps, data.level, () => this.modules(), data.exe)
  }

  get kind(): SnapshotKind {
    return this.data.kind
  }
  get level(): SnapshotLevel {
    return this.data.level
  }
  get name(): string | undefined {
    return this.data.name
  }
  get snapshotId(): string {
    return this.data.snapshotId
  }
  get arch(): SnapshotArch {
    return this.data.arch
  }
  get pid(): number {
    return this.data.pid
  }
  get aslrEnabled(): boolean {
    return this.data.aslrEnabled
  }
  get exe(): string {
    return this.data.exe
  }
  get argv(): readonly string[] {
    return this.data.argv
  }
  get cwd(): string {
    return this.data.cwd
  }
  /** ISO 8601 time of the capture. */
  get createdAt(): string {
    return this.data.createdAt
  }
  /** Why the process was stopped: breakpoint, signal, step, or launch (stopped at its entry point). */
  get stop(): SnapshotStop | undefined {
    return this.data.stop
  }
  get maps(): readonly MapState[] {
    return this.data.maps
  }
  get fds(): readonly FdState[] {
    return this.data.fds
  }
  get auxv(): readonly AuxvEntry[] {
    return this.data.auxv
  }
  get cpu(): CpuInfo {
    return this.data.cpu
  }

  /** The threads captured, in creation order. */
  get threads(): readonly SnapshotThread[] {
    this.threadList ??= this.data.threads.map((t) => threadView(this.data.arch, t))
    return this.threadList
  }

  /** Registers of the thread that stopped (or of the thread snapshotted). */
  get regs(): SnapshotRegisters {
    return this.thread(this.data.current).regs
  }

  /** Frames of a thread (default: the one that stopped), newest first; computed at capture. */
  backtrace(thread?: number): readonly Frame[] {
    return this.thread(thread ?? this.data.current).backtrace
  }

  /** 'counter!bump+0x4', 'libc.so.6+0x29d90', '[heap]+0x40', '[stack]-0x2f8', or the hex address. */
  symbolize(address: bigint): string {
    return symbolizeIn(this.data, this.modules(), address) ?? hex(address)
  }

  /** Writes the snapshot as procsnap/2 (atomically, streamed in large blocks); loadSnapshot(path) gives it back. */
  save(path: string): void {
    saveSnapshotData(path, this.data)
  }

  /**
   * Writes the process as an x86_64 ELF core file that `gdb <exe> <core>` reads: every thread's
   * registers, the maps and the bytes this snapshot holds of them. A thread snapshot has no process to write.
   */
  saveCore(path: string): void {
    // Bytes the snapshot does not hold, and names it does not know, are undefined for the writer.
    const tried = <T>(get: () => T): T | undefined => {
      try {
        return get()
      } catch {
        return undefined
      }
    }
    saveCoreData(path, this.data, {
      read: (location, length) => tried(() => this.memory.read(location, length)),
      resolve: (location) => tried(() => this.memory.resolve(location)),
    })
  }

  /** What changed from this snapshot (expected, old) to `other` (actual, new). */
  diff(other: ProcessSnapshot | ThreadSnapshot): SnapshotDiff {
    return new SnapshotDiff(diffSnapshots(this.data, other.data, other.modules()), this.data.arch)
  }

  pprintRegisters(options: PrintOptions & { thread?: number } = {}): void {
    print(
      renderRegisters(this.data, this.threadData(options.thread), styleFor(options), (a) =>
        symbolizeIn(this.data, this.modules(), a),
      ),
      options,
    )
  }

  pprintRegistersAll(options: PrintOptions & { thread?: number } = {}): void {
    print(
      renderRegisters(
        this.data,
        this.threadData(options.thread),
        styleFor(options),
        (a) => symbolizeIn(this.data, this.modules(), a),
        true,
      ),
      options,
    )
  }

  pprintMaps(options: PrintOptions = {}): void {
    print(renderMaps(this.data, styleFor(options)), options)
  }

  pprintBacktrace(options: PrintOptions & { thread?: number } = {}): void {
    print(renderBacktrace(this.backtrace(options.thread), styleFor(options)), options)
  }

  pprintMemory(location: string | bigint, length: number, options: PrintOptions = {}): void {
    const address = this.memory.resolve(location)
    print(
      renderMemory(address, this.memory.read(address, length), styleFor(options), (a) =>
        symbolizeIn(this.data, this.modules(), a),
      ),
      options,
    )
  }

  /** @internal Modules rebuilt from the maps (ELF files re-read when still on disk, same build-id). */
  modules(): readonly SnapshotModule[] {
    this.moduleList ??= modulesOf(this.data.maps)
    return this.moduleList
  }

  private thread(index: number): SnapshotThread {
    const t = this.threads.find((x) => x.index === index)
    if (!t)
      throw new ProcsnapError(
        'ERR_BAD_LOCATION',
        `No thread ${index} in this snapshot: it holds thread${this.threads.length > 1 ? 's' : ''} ` +
          `${this.threads.map((x) => x.index).join(', ')}.`,
      )
    return t
  }

  private threadData(index: number | undefined): SnapshotData['threads'][number] {
    const i = index ?? this.data.current
    this.thread(i)
    return this.data.threads.find((t) => t.index === i) ?? (this.data.threads[0] as SnapshotData['threads'][number])
  }
}

/** A snapshot of a whole stopped process: every thread, the shared memory. */
export class ProcessSnapshot extends BaseSnapshot {
  override get kind(): 'process' {
    return 'process'
  }
}

/** A snapshot of one thread: its registers and backtrace, and the process's memory. */
export class ThreadSnapshot extends BaseSnapshot {
  override get kind(): 'thread' {
    return 'thread'
  }
  get tid(): number {
    return this.threads[0]?.tid ?? 0
  }
  get index(): number {
    return this.data.current
  }
}

export type Snapshot = ProcessSnapshot | ThreadSnapshot

/** The differences between two snapshots; a is expected/old, b actual/new. */
export class SnapshotDiff {
  /** @internal */
  readonly data: SnapshotDiffData
  readonly arch: SnapshotArch

  /** @internal Use a.diff(b). */
  constructor(data: SnapshotDiffData, arch: SnapshotArch) {
    this.data = data
    this.arch = arch
  }

  get level(): SnapshotLevel {
    return this.data.level
  }
  get levelNote(): string | undefined {
    return this.data.levelNote
  }
  get stop(): SnapshotDiffData['stop'] {
    return this.data.stop
  }
  get regs(): SnapshotDiffData['regs'] {
    return this.data.regs
  }
  get maps(): SnapshotDiffData['maps'] {
    return this.data.maps
  }
  get memory(): SnapshotDiffData['memory'] {
    return this.data.memory
  }
  get threads(): SnapshotDiffData['threads'] {
    return this.data.threads
  }
  get backtrace(): SnapshotDiffData['backtrace'] {
    return this.data.backtrace
  }
  get isEmpty(): boolean {
    return this.data.isEmpty
  }

  /** The diff as text (no colors). */
  toString(): string {
    return renderDiff(this.data, this.arch, { color: false })
  }

  pprint(options: PrintOptions = {}): void {
    print(renderDiff(this.data, this.arch, styleFor(options)), options)
  }
}

/** Wraps data read from a file or captured from a process in the right class. */
export function snapshotFromData(data: SnapshotData, modules?: SnapshotModule[]): Snapshot {
  return data.kind === 'thread' ? new ThreadSnapshot(data, modules) : new ProcessSnapshot(data, modules)
}

/** Reads a snapshot written by save(): the same kind (process or thread) and contents back. */
export function loadSnapshot(path: string): Snapshot {
  return snapshotFromData(readSnapshotData(path))
}
