// proc.restore(snapshot): rewinds a live, stopped process to a 'writable' or 'full' snapshot of
// itself, as PyDbg's snapshot restore does, and further: the layout of the address space (maps made
// since unmapped, maps removed since mapped again, permissions, the heap's break), file descriptors,
// the bytes of every map the snapshot holds (only the pages that differ are written), and every
// thread's registers. All of it through system calls run inside the process (inject.ts), as CRIU's
// parasite does, so the kernel's view (maps, brk, fds) is the snapshot's again, not only the bytes.
import { readElf } from '../elf/index.js'
import { ProcsnapError, RestoreError } from '../errors.js'
import type { MemoryMap } from '../process/maps.js'
import { Process, ProcessThread } from '../process/process.js'
import { snapshotMaps } from './capture.js'
import { forgetCaptures, restoredTo, writtenSince } from './incremental.js'
import { hex } from './regions.js'
import { restoreFailure, restoreFds, type FdRestore } from './restore-fds.js'
import { isKernelMap, planLayout, protOf, type LayoutOp } from './restore-maps.js'
import { heldSize } from './content.js'
import { anonymousRanges, restoreBytes, type MemoryRestore } from './restore-memory.js'
import { ProcessSnapshot, type Snapshot } from './snapshot.js'
import type { MapState, SnapshotData, SnapshotLevel, ThreadState } from './model.js'

export type { FdRestore } from './restore-fds.js'

/** What proc.restore did, and what it could not put back. */
export interface RestoreReport {
  readonly level: SnapshotLevel
  /** Tids of the threads whose registers were restored. */
  readonly threads: readonly number[]
  /** Tids of the threads started since the snapshot, ended (as their own exit(0) would) before the rest was restored. */
  readonly threadsEnded: readonly number[]
  /** Changes to the layout, in order: 'munmap 0x7ffff7fb0000-0x7ffff7fb4000 (anonymous)', 'brk 0x...: 0x... -> 0x...'. */
  readonly layout: readonly string[]
  /** Pages read and compared with the snapshot's: those that could differ (see the README's "Save states"). */
  readonly pagesCompared: number
  /** Pages whose bytes were written back. */
  readonly pagesWritten: number
  /** Pages of private anonymous memory that held zeros in the snapshot, given back to the kernel (madvise). */
  readonly pagesDropped: number
  /** Every file descriptor of the snapshot and every one opened since, and what was done with it. */
  readonly fds: readonly FdRestore[]
  /** What could not be put back, in words (also listed per fd in `fds`). */
  readonly notRestored: readonly string[]
}

declare module '../process/process.js' {
  interface Process {
    /**
     * Rewinds this stopped process to `snapshot`, a 'writable' or 'full' snapshot of the same
     * process: maps, heap break, file descriptors, memory and registers. Resolves to what was
     * restored and what could not be (pipes, sockets and terminals cannot go back).
     */
    restore(snapshot: Snapshot): Promise<RestoreReport>
  }
}

const SYS = { mmap: 9, mprotect: 10, munmap: 11, brk: 12, madvise: 28, close: 3, openat: 257 } as const
const MAP_SHARED = 0x01n
const MAP_PRIVATE = 0x02n
const MAP_FIXED = 0x10n
const MAP_ANONYMOUS = 0x20n
const MAP_FIXED_NOREPLACE = 0x100000n
const MADV_DONTNEED = 4n
const AT_FDCWD = -100n
const O_RDONLY_CLOEXEC = 0o2000000n
const PAGE = 4096n

Process.prototype.restore = async function restore(this: Process, snapshot: Snapshot): Promise<RestoreReport> {
  return restoreInto(this, restorable(this, snapshot, 'same').data, 'same')
}

/**
 * Whether the snapshot is of this very process ('same': threads matched by tid, fds as they were) or
 * of another run of its program ('new', restore(): the main thread by index, stdio the new one's).
 */
export type RestoreTarget = 'same' | 'new'

/** Restores `data` into the stopped `proc`: layout, fds, bytes, registers, answers. */
export async function restoreInto(proc: Process, data: SnapshotData, target: RestoreTarget): Promise<RestoreReport> {
  const scratch = new Scratch(proc, () => [...data.maps, ...proc.sharedMaps()])
  const notRestored: string[] = []
  // Pages given back with madvise lose the write tracker's marks: no earlier capture is a base after this.
  forgetCaptures(proc)
  let complete = false
  try {
    // Threads started since end first: their stacks are among the maps the layout step removes.
    const saved = new Set(data.threads.map((t) => t.tid))
    const ended = target === 'same' ? proc.threads.map((t) => t.tid).filter((tid) => !saved.has(tid)) : []
    for (const tid of ended) await proc.endThread(tid)
    const plan = layoutPlan(data, snapshotMaps(proc))
    checkHeld(plan, data.maps)
    const layout = await restoreLayout(proc, plan, scratch, notRestored)
    const fds = await restoreFds(proc, data.fds, target === 'new', {
      call: (nr, args) => proc.injectSyscall(nr, args),
      path: (path) => scratch.write(path),
    })
    for (const f of fds)
      if (f.action === 'not restored') notRestored.push(`fd ${f.fd} (${f.target}): ${f.reason ?? ''}`)
    await scratch.release()
    if (plan.length > 0 || ended.length > 0) proc.restored(plan.some(changesModules)) // maps changed: read them again
    const memory: MemoryRestore = { pagesCompared: 0, pagesWritten: 0, pagesDropped: 0, drops: [] }
    // Only pages that can differ are compared: those written since the process last held the snapshot's
    // bytes, where writes are tracked and the layout did not change; else, in anonymous memory, those it
    // touched or the snapshot holds (untouched pages read as zeros); else all.
    const held = data.maps.filter((m) => !isKernelMap(m))
    const since = plan.length === 0 ? writtenSince(proc, data.maps) : undefined
    const anonymous = anonymousRanges(proc, held)
    restoreBytes(
      proc,
      held,
      (map) => since?.(map) ?? anonymous(map),
      memory,
      (map, error) =>
        notRestored.push(
          `the bytes of ${hex(map.start)}-${hex(map.end)} (${map.path || 'anonymous'}): ${error.message}`,
        ),
    )
    for (const [start, end] of memory.drops) {
      const r = await proc.injectSyscall(SYS.madvise, [start, end - start, MADV_DONTNEED])
      if (r < 0n) throw restoreFailure(`madvise(${hex(start)}, MADV_DONTNEED)`, r)
    }
    const threads = restoreRegisters(proc, data, target, notRestored)
    const current = data.threads.find((t) => t.index === data.current)
    const focus = proc.threads.find((t) => (target === 'same' ? t.tid === current?.tid : t.index === current?.index))
    if (focus) proc.focusThread(focus.tid)
    const answers = data.answers
    if (answers) proc.answers = { random: answers.random, clockNs: answers.clockNs }
    else if (proc.answers.random || proc.answers.clockNs !== undefined)
      notRestored.push(
        "fixedRandom's stream and the virtual clock go on from where they are (the snapshot does not hold them: " +
          'it was taken without them)',
      )
    proc.restored(false)
    restoredTo(proc, data.maps)
    complete = true
    return {
      level: data.level,
      threads,
      threadsEnded: ended,
      layout,
      pagesCompared: memory.pagesCompared,
      pagesWritten: memory.pagesWritten,
      pagesDropped: memory.pagesDropped,
      fds,
      notRestored,
    }
  } finally {
    await scratch.release().catch(() => undefined)
    if (!complete) proc.restored(true) // stopped midway: whatever changed, read it all again
  }
}

/** The last plan made for a snapshot, with the maps it was made against (the same array while the layout is the same). */
const plans = new WeakMap<SnapshotData, { live: readonly MemoryMap[]; plan: readonly LayoutOp[] }>()

function layoutPlan(data: SnapshotData, live: readonly MemoryMap[]): readonly LayoutOp[] {
  const known = plans.get(data)
  if (known?.live === live) return known.plan
  const plan = Object.freeze(planLayout(data.maps, live))
  plans.set(data, { live, plan })
  return plan
}

/**
 * A file's RELRO pages (relocated by ld.so, then made read-only: the read-only map right below a
 * writable one of the same file) that must be mapped again but whose bytes the snapshot does not
 * hold ('writable'): the file's bytes there would be wrong.
 */
function checkHeld(plan: readonly LayoutOp[], maps: readonly MapState[]): void {
  for (const op of plan) {
    if (op.kind !== 'mmap') continue
    const m = op.map
    if (m.inode === 0 || m.perms[1] === 'w' || m.perms[2] === 'x' || heldSize(m) > 0) continue
    const relro = maps.some((w) => w.start === m.end && w.path === m.path && w.perms[1] === 'w')
    if (!relro) continue
    throw new RestoreError(
      'ERR_RESTORE_LEVEL',
      `${m.path} must be mapped again at ${hex(op.start)}-${hex(op.end)}, where ld.so wrote relocations ` +
        "before making it read-only (RELRO): a 'writable' snapshot does not hold those pages. " +
        "Take the snapshot with { level: 'full' } to restore it.",
    )
  }
}

/** A file mapped or unmapped: the module list must be read again. */
function changesModules(op: LayoutOp): boolean {
  return (
    (op.kind === 'munmap' || op.kind === 'mmap') && (op.kind === 'mmap' ? op.map.inode !== 0 : op.path.startsWith('/'))
  )
}

/** The snapshot, when it can be restored into `proc`; otherwise a typed error says why. */
/** A snapshot of a whole process that holds memory, as both kinds of restore need; `caller` names the API in errors. */
export function holdsMemory(snapshot: Snapshot, caller: string): ProcessSnapshot {
  if (!(snapshot instanceof ProcessSnapshot))
    throw new ProcsnapError(
      'ERR_BAD_ARGUMENT',
      `${caller} takes a snapshot of the whole process (proc.createSnapshot() or loadSnapshot()), not a thread snapshot.`,
    )
  if (snapshot.level === 'base')
    throw new RestoreError(
      'ERR_RESTORE_LEVEL',
      "A 'base' snapshot holds no memory, so it cannot be restored: capture it with { level: 'writable' } (or 'full').",
    )
  return snapshot
}

export function restorable(proc: Process, given: Snapshot, target: RestoreTarget): ProcessSnapshot {
  const snapshot = holdsMemory(given, target === 'same' ? 'proc.restore' : 'restore')
  proc.checkStopped('restore a snapshot')
  if (snapshot.arch !== proc.arch.name)
    throw new RestoreError(
      'ERR_RESTORE_PROCESS',
      `The snapshot is of an ${snapshot.arch} process; this one is ${proc.arch.name}.`,
    )
  if (target === 'new') return snapshot // restore() checked the program, and starts one thread
  if (snapshot.pid !== proc.pid || snapshot.exe !== proc.path)
    throw new RestoreError(
      'ERR_RESTORE_PROCESS',
      `The snapshot was taken of process ${snapshot.pid} (${snapshot.exe}); this is process ${proc.pid} ` +
        `(${proc.path}). proc.restore rewinds the process the snapshot was taken of, in the same program (no exec since).`,
    )
  const live = new Set(proc.threads.map((t) => t.tid))
  const gone = snapshot.data.threads.map((t) => t.tid).filter((tid) => !live.has(tid))
  if (gone.length > 0)
    throw new RestoreError(
      'ERR_RESTORE_THREADS',
      `Thread${gone.length > 1 ? 's' : ''} ${gone.join(', ')} of the snapshot ended since: a thread cannot be ` +
        `made again with its stack and registers. Restore a snapshot taken after the process's threads ` +
        `(${[...live].join(', ')}) started, or one of the main thread alone.`,
    )
  return snapshot
}

/** Runs the layout plan; returns each change in words. */
async function restoreLayout(
  proc: Process,
  ops: readonly LayoutOp[],
  scratch: Scratch,
  notRestored: string[],
): Promise<string[]> {
  const done: string[] = []
  for (const op of ops) {
    if (op.kind === 'brk') {
      const r = await proc.injectSyscall(SYS.brk, [op.to])
      if (r !== op.to) notRestored.push(`the heap's break: brk(${hex(op.to)}) left it at ${hex(r)}`)
      else done.push(`brk ${hex(op.from)} -> ${hex(op.to)}`)
      continue
    }
    const range = `${hex(op.start)}-${hex(op.end)}`
    if (op.kind === 'munmap') {
      const r = await proc.injectSyscall(SYS.munmap, [op.start, op.end - op.start])
      if (r < 0n) throw restoreFailure(`munmap ${range}`, r)
      done.push(`munmap ${range} (${op.path || 'anonymous'})`)
    } else if (op.kind === 'mprotect') {
      const r = await proc.injectSyscall(SYS.mprotect, [op.start, op.end - op.start, protOf(op.perms)])
      if (r < 0n) throw restoreFailure(`mprotect ${range}`, r)
      done.push(`mprotect ${range} ${op.perms} (${op.path || 'anonymous'})`)
    } else {
      const what = await mapAgain(proc, op.map, op.start, op.end, scratch)
      if (what) done.push(`mmap ${range} ${op.map.perms} (${what})`)
      else
        notRestored.push(
          `the shared mapping ${range} (${op.map.path || 'anonymous'}): its sharing cannot be made again`,
        )
    }
  }
  return done
}

/** Maps [start, end) of a snapshot map again: anonymous memory, or its file at its offset. Undefined for shared memory. */
async function mapAgain(
  proc: Process,
  map: MapState,
  start: bigint,
  end: bigint,
  scratch: Scratch,
): Promise<string | undefined> {
  const prot = protOf(map.perms)
  const shared = map.perms[3] === 's'
  if (map.inode === 0 || map.path === '' || map.path.startsWith('[')) {
    if (shared) return undefined
    const r = await proc.injectSyscall(SYS.mmap, [
      start,
      end - start,
      prot,
      MAP_PRIVATE | MAP_FIXED | MAP_ANONYMOUS,
      -1n,
      0n,
    ])
    if (r !== start) throw restoreFailure(`mmap of anonymous memory at ${hex(start)}`, r)
    return map.path || 'anonymous'
  }
  checkSameFile(proc, map)
  const fd = await proc.injectSyscall(SYS.openat, [
    AT_FDCWD,
    await scratch.write(map.path),
    O_RDONLY_CLOEXEC | (prot & 2n && shared ? 2n : 0n),
    0n,
  ])
  if (fd < 0n)
    throw new RestoreError(
      'ERR_RESTORE_FILE',
      `The snapshot mapped ${map.path} at ${hex(start)}, which was unmapped since, and the process cannot open it again (errno ${-fd}).`,
    )
  try {
    const offset = map.offset + (start - map.start)
    const r = await proc.injectSyscall(SYS.mmap, [
      start,
      end - start,
      prot,
      (shared ? MAP_SHARED : MAP_PRIVATE) | MAP_FIXED,
      fd,
      offset,
    ])
    if (r !== start) throw restoreFailure(`mmap of ${map.path} at ${hex(start)}`, r)
  } finally {
    await proc.injectSyscall(SYS.close, [fd])
  }
  return map.path
}

/** A file mapped again must be the one the snapshot mapped: same build-id when it had one. */
function checkSameFile(proc: Process, map: MapState): void {
  if (!map.buildId) return
  let now: string | undefined
  try {
    now = readElf(proc.hostFile(map.path)).buildId
  } catch (error) {
    throw new RestoreError(
      'ERR_RESTORE_FILE',
      `The snapshot mapped ${map.path}, which cannot be read now: ${String(error)}.`,
      { cause: error },
    )
  }
  if (now !== map.buildId)
    throw new RestoreError(
      'ERR_RESTORE_FILE',
      `The snapshot mapped ${map.path} with build-id ${map.buildId}; the file there now has ${now ?? 'none'}: it was rebuilt or replaced.`,
    )
}

/**
 * Every snapshot thread's registers, general and extended, written into its live thread (by tid in
 * the same process, by index in a new one). A register this CPU lacks (zmm16 in a snapshot from an
 * AVX-512 machine, restored on one without) is left out, and named in `notRestored` unless it was 0.
 */
function restoreRegisters(proc: Process, data: SnapshotData, target: RestoreTarget, notRestored: string[]): number[] {
  const tids: number[] = []
  for (const saved of data.threads) {
    const thread = proc.threads.find((t) => (target === 'same' ? t.tid === saved.tid : t.index === saved.index))
    if (!(thread instanceof ProcessThread)) continue
    const { general, area, lacking } = prepared(proc, thread, saved)
    thread.restoreRegisters(general, area)
    if (lacking.length > 0)
      notRestored.push(
        `registers of thread ${saved.index} that this CPU lacks: ${lacking.join(', ')} (the snapshot came from another CPU)`,
      )
    tids.push(thread.tid)
  }
  return tids
}

/** A snapshot thread's registers made ready to write into threads of one register layout. */
interface PreparedRegisters {
  /** The layout's register table (arch.registerDecoders): the same object for every thread of that layout. */
  readonly layout: object
  /** General registers by name (PTRACE_SETREGS). */
  readonly general: Readonly<Record<string, bigint>>
  /** The whole extended area holding the snapshot's extended registers, encoded once (PTRACE_SETREGSET). */
  readonly area: Uint8Array | undefined
  /** Registers of the snapshot this layout lacks, not 0. */
  readonly lacking: readonly string[]
}

/**
 * A fuzzing loop restores the same snapshot thousands of times: its registers are sorted and the
 * extended area encoded once per layout (the area holds nothing else of the thread's: its other
 * bytes are what this CPU's kernel puts there), then written without reading the thread's first.
 */
const preparedByThread = new WeakMap<ThreadState, PreparedRegisters>()

function prepared(proc: Process, thread: ProcessThread, saved: ThreadState): PreparedRegisters {
  const here = registerLayout(proc, thread)
  const known = preparedByThread.get(saved)
  if (known?.layout === here.table) return known
  const generalNames = new Set([...proc.arch.registers, ...proc.arch.aliases.keys()])
  const general: Record<string, bigint> = {}
  const extended: Record<string, bigint> = {}
  const lacking: string[] = []
  for (const [name, value] of Object.entries(saved.regs)) {
    if (!here.names.has(name)) {
      if (value !== 0n) lacking.push(name)
    } else if (generalNames.has(name)) general[name] = value
    else if (name !== 'mxcsr_mask') extended[name] = value // the CPU's, not the program's: the thread's stays
  }
  const template = Object.keys(extended).length > 0 ? thread.extendedArea() : undefined
  const area = template && proc.arch.encodeExtended?.(extended, template)
  const ready: PreparedRegisters = { layout: here.table, general, area, lacking }
  preparedByThread.set(saved, ready)
  return ready
}

/** The register table of a live thread's layout (its CPU's xsave components) and its names, by process and tid: read once. */
interface ThreadLayout {
  readonly table: object
  readonly names: ReadonlySet<string>
}

const layoutByThread = new WeakMap<Process, Map<number, ThreadLayout>>()

function registerLayout(proc: Process, thread: ProcessThread): ThreadLayout {
  let byTid = layoutByThread.get(proc)
  if (!byTid) layoutByThread.set(proc, (byTid = new Map<number, ThreadLayout>()))
  let layout = byTid.get(thread.tid)
  if (!layout) {
    const table = proc.arch.registerDecoders(thread.extendedArea())
    layout = { table, names: new Set(table.map((d) => d.name)) }
    byTid.set(thread.tid, layout)
  }
  return layout
}

/**
 * A page of the process for the paths that open() needs, mapped where neither the snapshot nor the
 * process has anything (so no planned mmap lands on it) and unmapped before the bytes are restored.
 */
class Scratch {
  private readonly proc: Process
  /** The ranges it must not land on, asked only when a path must be written. */
  private readonly taken: () => readonly { start: bigint; end: bigint }[]
  private page: bigint | undefined

  constructor(proc: Process, taken: () => readonly { start: bigint; end: bigint }[]) {
    this.proc = proc
    this.taken = taken
  }

  async write(path: string): Promise<bigint> {
    const bytes = Buffer.from(`${path}\0`)
    if (bytes.length > Number(PAGE))
      throw new RestoreError('ERR_RESTORE_FILE', `A path of ${bytes.length} bytes is too long to open.`)
    this.page ??= await this.map()
    this.proc.writeMemory(this.page, bytes)
    return this.page
  }

  async release(): Promise<void> {
    if (this.page === undefined) return
    const page = this.page
    this.page = undefined
    await this.proc.injectSyscall(SYS.munmap, [page, PAGE])
  }

  private async map(): Promise<bigint> {
    const lowest = this.taken().reduce((low, m) => (m.start < low ? m.start : low), 1n << 47n)
    const at = lowest - 16n * PAGE
    const r = await this.proc.injectSyscall(SYS.mmap, [
      at,
      PAGE,
      3n,
      MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
      -1n,
      0n,
    ])
    if (r !== at) throw restoreFailure(`mmap of a scratch page at ${hex(at)}`, r)
    this.proc.restored(false)
    return at
  }
}
