// Diff of two snapshots, a expected/old and b actual/new: maps paired by identity (not address), so
// under ASLR only real changes show; a pointer that moved with its map is no change at all.
import { inspect } from 'node:util'
import { ProcsnapError } from '../errors.js'
import { diffMemory, placeMatcher, type MapPair, type SamePlace } from './diff-memory.js'
import { levelRank } from './memory-view.js'
import type {
  BacktraceChange,
  MapChange,
  MemoryChange,
  RegisterChange,
  SnapshotData,
  SnapshotDiffData,
  SnapshotLevel,
  ThreadChange,
} from './model.js'
import { identities, type SnapshotModule } from './regions.js'

/** `modulesB` symbolizes the changed ranges, at their addresses in b. */
export function diffSnapshots(a: SnapshotData, b: SnapshotData, modulesB: readonly SnapshotModule[]): SnapshotDiffData {
  if (a.arch !== b.arch) {
    throw new ProcsnapError(
      'ERR_SNAPSHOT_MISMATCH',
      `Cannot diff a ${a.arch} snapshot with a ${b.arch} snapshot: registers and memory layouts ` +
        `differ. Compare snapshots of the same architecture.`,
    )
  }
  const level: SnapshotLevel = levelRank(a.level) <= levelRank(b.level) ? a.level : b.level
  const levelNote = a.level !== b.level ? `a is ${a.level}, b is ${b.level}: compared at ${level}` : undefined
  const pairs = pairMaps(a, b)
  const places = placeMatcher(a, b, pairs)
  const regs = diffRegisters(a, b, places.same)
  const maps = diffMaps(a, b, pairs)
  const changes = diffMemory(pairs, level, places, a, b, modulesB)
  const threads = diffThreads(a, b)
  const backtrace = diffBacktraces(a, b)
  const stop = sameStop(a, b) ? undefined : { before: a.stop, after: b.stop }
  const isEmpty = !stop && regs.length + maps.length + changes.count + threads.length + backtrace.length === 0
  let memory: readonly MemoryChange[] | undefined
  const data: SnapshotDiffData = {
    level,
    ...(levelNote ? { levelNote } : {}),
    ...(stop ? { stop } : {}),
    regs,
    maps,
    // The records are made on first read, then `memory` is a plain property like the others.
    get memory(): readonly MemoryChange[] {
      memory ??= settle(data, changes.records())
      return memory
    },
    threads,
    backtrace,
    isEmpty,
  }
  // util.inspect (console.log) of the diff, or of anything holding this object, shows the records, not
  // a getter: hidden from keys, spread, clones and toEqual, and gone once the records are made.
  Object.defineProperty(data, inspect.custom, { value: showRecords, configurable: true })
  return data
}

function showRecords(this: SnapshotDiffData): SnapshotDiffData {
  void this.memory
  return this // inspect shows the object itself when its custom inspect returns it
}

/** Puts the records in place of the diff's `memory` getter: a data property, as if made with the diff. */
function settle(data: SnapshotDiffData, memory: readonly MemoryChange[]): readonly MemoryChange[] {
  Reflect.defineProperty(data, 'memory', { value: memory, writable: true, enumerable: true, configurable: true })
  Reflect.deleteProperty(data, inspect.custom)
  return memory
}

export function pairMaps(a: SnapshotData, b: SnapshotData): MapPair[] {
  const idsA = identities(a)
  const byId = new Map([...identities(b)].map(([m, id]) => [id, m]))
  const pairs: MapPair[] = []
  for (const m of a.maps) {
    const id = idsA.get(m) ?? ''
    const other = byId.get(id)
    if (other) pairs.push({ identity: id, a: m, b: other })
  }
  return pairs
}

function diffRegisters(a: SnapshotData, b: SnapshotData, same: SamePlace): RegisterChange[] {
  const changes: RegisterChange[] = []
  for (const ta of a.threads) {
    const tb = b.threads.find((t) => t.index === ta.index)
    if (!tb) continue
    for (const [name, before] of Object.entries(ta.regs)) {
      const after = Object.hasOwn(tb.regs, name) ? tb.regs[name] : undefined // 'constructor' is no register
      if (after === undefined || sameLanes(before, after, same)) continue // compare only what both sides hold
      changes.push({ thread: ta.index, name, before, after })
    }
  }
  return changes
}

const LANE = (1n << 64n) - 1n

/** A vector register holds 64-bit lanes, each of which may be a pointer that moved with its map. */
function sameLanes(before: bigint, after: bigint, same: SamePlace): boolean {
  if (before === after) return true
  for (let x = before, y = after; x !== 0n || y !== 0n; x >>= 64n, y >>= 64n) {
    if (!same(x & LANE, y & LANE)) return false
  }
  return true
}

function diffMaps(a: SnapshotData, b: SnapshotData, pairs: readonly MapPair[]): MapChange[] {
  const changes: MapChange[] = []
  const pairedA = new Set(pairs.map((p) => p.a))
  const pairedB = new Set(pairs.map((p) => p.b))
  const idsA = identities(a)
  const idsB = identities(b)
  for (const m of a.maps)
    if (!pairedA.has(m)) changes.push({ kind: 'removed', identity: idsA.get(m) ?? '', before: m, fields: [] })
  for (const p of pairs) {
    const fields: string[] = []
    if (p.a.perms !== p.b.perms) fields.push('perms')
    if (p.a.end - p.a.start !== p.b.end - p.b.start) fields.push('size')
    if (p.a.buildId !== p.b.buildId) fields.push('buildId')
    if (fields.length) changes.push({ kind: 'changed', identity: p.identity, before: p.a, after: p.b, fields })
  }
  for (const m of b.maps)
    if (!pairedB.has(m)) changes.push({ kind: 'added', identity: idsB.get(m) ?? '', after: m, fields: [] })
  return changes
}

function diffThreads(a: SnapshotData, b: SnapshotData): ThreadChange[] {
  const changes: ThreadChange[] = []
  for (const t of a.threads)
    if (!b.threads.some((x) => x.index === t.index)) changes.push({ kind: 'removed', index: t.index, tid: t.tid })
  for (const t of b.threads)
    if (!a.threads.some((x) => x.index === t.index)) changes.push({ kind: 'added', index: t.index, tid: t.tid })
  return changes
}

function diffBacktraces(a: SnapshotData, b: SnapshotData): BacktraceChange[] {
  const changes: BacktraceChange[] = []
  for (const ta of a.threads) {
    const tb = b.threads.find((t) => t.index === ta.index)
    if (!tb) continue
    const same =
      ta.backtrace.length === tb.backtrace.length &&
      ta.backtrace.every((f, i) => f.location === tb.backtrace[i]?.location)
    if (!same) changes.push({ thread: ta.index, before: ta.backtrace, after: tb.backtrace })
  }
  return changes
}

function sameStop(a: SnapshotData, b: SnapshotData): boolean {
  const x = a.stop
  const y = b.stop
  if (!x || !y) return x === y
  return (
    x.kind === y.kind &&
    x.location === y.location &&
    x.thread === y.thread &&
    (x.kind !== 'signal' || (y.kind === 'signal' && x.signal === y.signal && x.code === y.code))
  )
}
