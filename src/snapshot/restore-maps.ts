// Restore, step 1: the layout of the address space. Compares the snapshot's maps with the process's
// and plans the system calls that make them equal again: munmap what was mapped since, mmap again
// what was unmapped since (anonymous memory, or the file it mapped), mprotect what changed its
// permissions, and brk for the heap. The plan is pure data (planLayout); restore.ts runs it.
import type { MemoryMap } from '../process/maps.js'
import type { MapState } from './model.js'

/** Kernel maps that no system call of the process creates or removes: never touched. */
const KERNEL_MAPS = new Set(['[vvar]', '[vvar_vclock]', '[vdso]', '[vsyscall]', '[uprobes]'])

export type LayoutOp =
  | { readonly kind: 'munmap'; readonly start: bigint; readonly end: bigint; readonly path: string }
  | { readonly kind: 'mmap'; readonly start: bigint; readonly end: bigint; readonly map: MapState }
  | {
      readonly kind: 'mprotect'
      readonly start: bigint
      readonly end: bigint
      readonly perms: string
      readonly path: string
    }
  | { readonly kind: 'brk'; readonly from: bigint; readonly to: bigint }

export function isKernelMap(map: MemoryMap): boolean {
  return KERNEL_MAPS.has(map.path)
}

/** Same object behind both maps at `at`: the same file at the same offset, or both anonymous of the same kind. */
function sameBacking(snap: MapState, live: MemoryMap, at: bigint): boolean {
  if (snap.path !== live.path || snap.inode !== live.inode) return false
  if (snap.perms[3] !== live.perms[3]) return false // private against shared
  if (snap.inode === 0) return true // anonymous: the offset is the kernel's page number, not an identity
  return snap.offset + (at - snap.start) === live.offset + (at - live.start)
}

function covering<T extends MemoryMap>(maps: readonly T[], at: bigint): T | undefined {
  return maps.find((m) => m.start <= at && at < m.end)
}

/**
 * The operations that turn the process's layout (`live`) into the snapshot's (`snap`), in order:
 * the heap's break first, then every range compared piece by piece, munmaps before mmaps.
 */
export function planLayout(snap: readonly MapState[], live: readonly MemoryMap[]): LayoutOp[] {
  const ops: LayoutOp[] = []
  const snapHeap = snap.find((m) => m.path === '[heap]')
  const liveHeap = live.find((m) => m.path === '[heap]')
  // The heap moves with brk: its break is set back, and brk maps or unmaps the difference itself.
  if (liveHeap && (!snapHeap || snapHeap.end !== liveHeap.end))
    ops.push({ kind: 'brk', from: liveHeap.end, to: snapHeap ? snapHeap.end : liveHeap.start })
  else if (snapHeap && !liveHeap) ops.push({ kind: 'brk', from: snapHeap.start, to: snapHeap.end })
  const isHeap = (m: MemoryMap): boolean => m.path === '[heap]'
  const snapMaps = snap.filter((m) => !isKernelMap(m) && !isHeap(m))
  const liveMaps = live.filter((m) => !isKernelMap(m) && !isHeap(m))
  const bounds = [...new Set([...snapMaps, ...liveMaps].flatMap((m) => [m.start, m.end]))].sort((a, b) =>
    a < b ? -1 : a > b ? 1 : 0,
  )
  const unmaps: LayoutOp[] = []
  const maps: LayoutOp[] = []
  for (let i = 0; i + 1 < bounds.length; i++) {
    const start = bounds[i] as bigint
    const end = bounds[i + 1] as bigint
    const s = covering(snapMaps, start)
    const l = covering(liveMaps, start)
    if (!s && !l) continue
    if (!s && l) {
      pushMerged(unmaps, { kind: 'munmap', start, end, path: l.path })
      continue
    }
    if (!s) continue
    if (l && sameBacking(s, l, start)) {
      if (l.perms.slice(0, 3) !== s.perms.slice(0, 3))
        pushMerged(maps, { kind: 'mprotect', start, end, perms: s.perms, path: s.path })
      continue
    }
    if (l) pushMerged(unmaps, { kind: 'munmap', start, end, path: l.path })
    pushMerged(maps, { kind: 'mmap', start, end, map: s })
  }
  return [...ops, ...unmaps, ...maps]
}

/** Appends `op`, or extends the previous operation when it is the same kind, adjacent and of the same map. */
function pushMerged(ops: LayoutOp[], op: LayoutOp): void {
  const last = ops.at(-1)
  if (last && last.kind === op.kind && 'start' in last && 'start' in op && last.end === op.start) {
    if (op.kind === 'munmap' && last.kind === 'munmap') {
      ops[ops.length - 1] = { ...last, end: op.end }
      return
    }
    if (op.kind === 'mmap' && last.kind === 'mmap' && last.map === op.map) {
      ops[ops.length - 1] = { ...last, end: op.end }
      return
    }
    if (op.kind === 'mprotect' && last.kind === 'mprotect' && last.perms === op.perms && last.path === op.path) {
      ops[ops.length - 1] = { ...last, end: op.end }
      return
    }
  }
  ops.push(op)
}

/** PROT_* bits of a 'rwxp' string. */
export function protOf(perms: string): bigint {
  return (perms[0] === 'r' ? 1n : 0n) | (perms[1] === 'w' ? 2n : 0n) | (perms[2] === 'x' ? 4n : 0n)
}
