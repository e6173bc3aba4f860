// The snapshot data model: plain, immutable data that outlives the process it was taken from.
// Every 64-bit (or wider) value is a bigint; the on-disk form (format.ts) writes them as hex strings.
import type { MemoryMap } from '../process/maps.js'

/**
 * 'base': registers, maps, backtraces; 'writable': + contents of writable maps; 'full': + every map's
 * contents that a debugger can read, maps the process cannot read itself (guard pages) included.
 */
export type SnapshotLevel = 'base' | 'writable' | 'full'

/** A snapshot of the whole process (all threads) or of one thread (its registers, the shared memory). */
export type SnapshotKind = 'process' | 'thread'

export type SnapshotArch = 'x86_64' | 'aarch64'

/** Full-width register values by name, aliases excluded (eax is derived from rax when read). */
export type RegisterValues = Readonly<Record<string, bigint>>

/** One frame of a backtrace, newest first. */
export interface Frame {
  /** The frame's pc: the stop pc for frame 0, the return address for callers. */
  readonly pc: bigint
  /** Module base name ('counter', 'libc.so.6'), absent outside every module. */
  readonly module?: string
  /** Function containing the pc (a caller frame is looked up at pc - 1, inside its call instruction). */
  readonly symbol?: string
  /** pc minus the symbol's start; without a symbol, pc minus the module's base; else 0. */
  readonly offset: bigint
  /** 'counter!bump+0x4', 'libc.so.6+0x29d90', or a hex address. */
  readonly location: string
  /** How this frame was found: 'pc' (frame 0), 'cfi' (.eh_frame), 'fp' (frame-pointer chain). */
  readonly via: 'pc' | 'cfi' | 'fp'
  /** Canonical frame address of the frame, when unwinding computed one. */
  readonly cfa?: bigint
}

export interface ThreadState {
  readonly tid: number
  /** 1 for the main thread, then 2, 3, ... in creation order. */
  readonly index: number
  /**
   * Full registers in capture order. A captured thread keeps the kernel's bytes (the GETREGS block
   * and the xsave area) and decodes a register when it is read (registers.ts compactRegisters); a
   * loaded snapshot holds a plain record. Both enumerate, compare and save the same.
   */
  readonly regs: RegisterValues
  readonly backtrace: readonly Frame[]
}

interface StopBase {
  /** Index (1-based, creation order) of the thread that stopped. */
  readonly thread: number
  readonly pc: bigint
  /** Symbolized pc at capture time. */
  readonly location: string
}

/** Why the process was stopped when the snapshot was taken. */
export type SnapshotStop =
  | (StopBase & { readonly kind: 'breakpoint' })
  | (StopBase & { readonly kind: 'step' })
  | (StopBase & { readonly kind: 'launch' })
  /** The process was stopped by attach() and not run since. */
  | (StopBase & { readonly kind: 'attach' })
  /** proc.interrupt() stopped it. */
  | (StopBase & { readonly kind: 'interrupted' })
  | (StopBase & {
      readonly kind: 'signal'
      readonly signal: string
      readonly signo: number
      readonly code: number
      readonly faultAddress?: bigint
    })

/** A mapping as /proc/PID/maps shows it (start, end, perms, offset, path, inode), plus what the snapshot holds of it. */
export interface MapState extends MemoryMap {
  /** GNU build-id of the mapped ELF file, when it has one. */
  readonly buildId?: string
  /** The bytes of the map, when the level holds them and the process could read them all (length end - start). */
  readonly content?: Uint8Array
  /**
   * The bytes of a map the process cannot read itself (guard pages, PROT_NONE reservations), read as
   * a debugger reads them, or of a map whose end could not be read: page by page, zeros not stored.
   */
  readonly sparse?: SparseContent
  /**
   * Why the level should hold this map's contents, or the part past `sparse.size`, but does not:
   * '[vvar] is kernel data that ptrace cannot read', 'past the end of the file from +0x1000 (EIO)...'.
   */
  readonly unreadable?: string
  /**
   * Byte ranges [from, to) from the map's start, page-aligned and ascending, whose pages the process
   * never touched (neither present nor swapped, says /proc/PID/pagemap; while writes are tracked: not
   * touched at the previous capture and not written since): they read as zeros, were not read, and cost
   * nothing. Set on private anonymous maps (heap, stacks, anonymous mmaps) the level holds.
   */
  readonly untouched?: readonly PageRun[]
}

/** [from, to) byte offsets from a map's start. */
export type PageRun = readonly [from: number, to: number]

/** Contents held page by page: every byte below `size` that no listed page holds is zero. */
export interface SparseContent {
  /**
   * Bytes held from the map's start: its size, or fewer when reading stopped at a page that could
   * not be read (the map's `unreadable` says why); then a multiple of 4096.
   */
  readonly size: number
  /**
   * The 4 KiB pages holding a non-zero byte, by offset from the map's start, ascending (the last may be
   * shorter). An incremental capture lists the previous snapshot's pages, zero ones included, with the
   * pages written since laid over them (a read-only PatchedPages, which keeps that snapshot's buffer alive).
   */
  readonly pages: ReadonlyMap<number, Uint8Array>
}

/** An open file descriptor, from /proc/PID/fd and fdinfo. */
export interface FdState {
  readonly fd: number
  /** readlink target: '/dev/null', '/dev/pts/3' (a pty: stdout and stderr by default), 'pipe:[1234]', 'socket:[99]', '/tmp/x (deleted)'. */
  readonly target: string
  /** open flags (O_RDONLY, O_APPEND, ...) as fdinfo reports them. */
  readonly flags: number
  readonly offset: bigint
  /** For a terminal, pipe, socket or device (not a file or directory): what fstat says identifies it. */
  readonly stat?: FdIdentity
}

/** The fstat fields that identify a descriptor's object; for goldens, which write a copy of them in memory by name. */
export interface FdIdentity {
  readonly dev: bigint
  readonly ino: bigint
  readonly mode: number
  readonly rdev: bigint
}

export interface AuxvEntry {
  readonly type: number
  /** 'AT_ENTRY', 'AT_RANDOM', ..., or 'AT_<n>' when unknown. */
  readonly name: string
  readonly value: bigint
}

/** The CPU's register-set features: which registers a snapshot of this machine holds. */
export interface CpuInfo {
  readonly arch: SnapshotArch
  /** x86_64: XCR0, the xsave state components the OS enabled. */
  readonly xcr0?: bigint
  /** x86_64: names of the xsave components present: 'x87', 'sse', 'avx', 'opmask', 'zmm_hi256', 'hi16_zmm', 'pkru'. */
  readonly components: readonly string[]
  /** x86_64: size in bytes of the xsave area for the enabled components (CPUID 0xD.0 EBX). */
  readonly xsaveSize?: number
}

/** The state of what procsnap answers for the program: see SnapshotData.answers. */
export interface TracerAnswersState {
  /** fixedRandom's stream state and fake time-stamp counter. */
  readonly random?: readonly [bigint, bigint]
  /** Nanoseconds of virtual time so far. */
  readonly clockNs?: bigint
}

/** Everything a snapshot holds; ProcessSnapshot and ThreadSnapshot wrap it. */
export interface SnapshotData {
  readonly kind: SnapshotKind
  readonly level: SnapshotLevel
  readonly name: string | undefined
  /** Unique per capture (random UUID). */
  readonly snapshotId: string
  readonly arch: SnapshotArch
  readonly pid: number
  /** The pid the program sees of itself, when it runs in a PID namespace of its own (launch's isolate): 2. */
  readonly ownPid?: number
  readonly aslrEnabled: boolean
  /** Absolute path of the executable. */
  readonly exe: string
  readonly argv: readonly string[]
  readonly cwd: string
  /** ISO 8601 time of the capture. */
  readonly createdAt: string
  readonly stop: SnapshotStop | undefined
  /** The threads captured: all of them (process), or the one (thread); in creation order. */
  readonly threads: readonly ThreadState[]
  /** Index of the thread whose registers `regs` shows: the stopped thread, or the one snapshotted. */
  readonly current: number
  readonly maps: readonly MapState[]
  readonly fds: readonly FdState[]
  readonly auxv: readonly AuxvEntry[]
  readonly cpu: CpuInfo
  /**
   * Where procsnap's answers to the program stood (launch's fixedRandom stream, the virtual clock's
   * time): a restore puts them back, so that the program's next reads repeat the first run's.
   * Absent when neither was on (clock 'real', fixedRandom false, an attached process).
   */
  readonly answers?: TracerAnswersState
}

// ---- diffs: a is expected/old, b is actual/new ------------------------------------------------

export interface RegisterChange {
  /** Thread index (creation order) the register belongs to. */
  readonly thread: number
  readonly name: string
  readonly before: bigint
  readonly after: bigint
}

/**
 * A map's identity, stable under ASLR and across runs: 'path@0xoffset' for a file map, '[heap]',
 * '[stack]', '[vdso]', '[stack thread 2]' and '[stack thread 2 guard]' for the stack of thread 2 (by
 * creation order) and the guard page below it, 'anon#k@<previous named map>' for other anonymous
 * maps (see regions.ts).
 */
export type MapIdentity = string

export interface MapChange {
  readonly kind: 'added' | 'removed' | 'changed'
  readonly identity: MapIdentity
  readonly before?: MapState
  readonly after?: MapState
  /** For 'changed': what differs ('perms', 'size', 'buildId', 'moved'). 'moved' alone is not reported. */
  readonly fields: readonly string[]
}

/** A run of changed bytes inside one map present on both sides. */
export interface MemoryChange {
  readonly identity: MapIdentity
  /** Offset of the run from the start of the map. */
  readonly mapOffset: bigint
  /** Address of the run in a and in b (they differ under ASLR). */
  readonly addressBefore: bigint
  readonly addressAfter: bigint
  readonly before: Uint8Array
  readonly after: Uint8Array
  /** Symbolized start of the run: 'counter!g_counter', 'counter!g_table+0x8', '[heap]+0x40', '[stack]-0x2f8'. */
  readonly location: string
}

export interface ThreadChange {
  readonly kind: 'added' | 'removed'
  readonly index: number
  readonly tid: number
}

export interface BacktraceChange {
  readonly thread: number
  readonly before: readonly Frame[]
  readonly after: readonly Frame[]
}

export interface SnapshotDiffData {
  /** The level both sides hold: the lower of the two. */
  readonly level: SnapshotLevel
  /** Set when the levels differ: 'a is full, b is writable: memory compared at writable'. */
  readonly levelNote?: string
  /** Set when the stops differ (kind or location). */
  readonly stop?: { readonly before: SnapshotStop | undefined; readonly after: SnapshotStop | undefined }
  readonly regs: readonly RegisterChange[]
  readonly maps: readonly MapChange[]
  readonly memory: readonly MemoryChange[]
  readonly threads: readonly ThreadChange[]
  /** Threads whose backtraces differ, compared by location ('module!symbol+0xoff'), not by address. */
  readonly backtrace: readonly BacktraceChange[]
  readonly isEmpty: boolean
}
