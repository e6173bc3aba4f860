// Where an address is in a snapshot's maps: modules rebuilt offline from the maps (ELF files read
// again when they are still on disk with the same build-id), symbolization, and ASLR-proof map identities
// (thread stacks by thread: '[stack thread 2]').
import { basename, join } from 'node:path'
import { MAX_NAMED_ELF_BYTES, readElfMatching } from '../elf/cache.js'
import type { ElfFile } from '../elf/index.js'
import { INNER_CWD } from '../process/isolate.js'
import { findMap } from '../process/maps.js'
import { archInfo } from './arch-info.js'
import type { MapIdentity, MapState, SnapshotData } from './model.js'

export interface SnapshotModule {
  /** Base name: 'counter', 'libc.so.6'. */
  readonly name: string
  readonly path: string
  readonly start: bigint
  readonly end: bigint
  /** Run-time address minus link-time address. */
  readonly bias: bigint
  /** The ELF file, when it is readable here and matches the snapshot's build-id. */
  readonly elf: ElfFile | undefined
}

/** An address's place: the module or region containing it and the offset there. */
export interface Place {
  readonly map: MapState
  /** 'counter!g_counter+0x4', 'counter+0x4010', '[heap]+0x40', '[stack]-0x2f8', '[stack thread 2]-0x2f8', 'anon#1@libc.so.6+0x3000'. */
  readonly text: string
}

export function hex(value: bigint): string {
  return value < 0n ? `-0x${(-value).toString(16)}` : `0x${value.toString(16)}`
}

/** ELF files by path and build-id, shared by every snapshot of this process (null: unreadable or changed). */
const elfCache = new Map<string, ElfFile | null>()

function elfFor(path: string, buildId: string | undefined): ElfFile | undefined {
  const key = `${path}\0${buildId ?? ''}`
  let elf = elfCache.get(key)
  if (elf === undefined) {
    elf = readMatching(path.replace(/ \(deleted\)$/, ''), buildId)
    // An isolated program's working directory was a bind mount at /tmp/procsnap: most likely this cwd.
    if (!elf && path.startsWith(`${INNER_CWD}/`))
      elf = readMatching(join(process.cwd(), path.slice(INNER_CWD.length + 1)), buildId)
    elfCache.set(key, elf)
  }
  return elf ?? undefined
}

/** The file when it is ELF, of at most 512 MiB, of the build-id recorded (checked before its symbols are parsed); else null. */
function readMatching(path: string, buildId: string | undefined): ElfFile | null {
  try {
    return readElfMatching(path, buildId, MAX_NAMED_ELF_BYTES) ?? null // null: the file changed since the capture
  } catch {
    return null // a special file, not ELF, too large, unreadable: the module stays unsymbolized
  }
}

/** Capture hands over the ELF files the live process read (an isolated program's paths may not open here). */
export function rememberElf(path: string, buildId: string | undefined, elf: ElfFile): void {
  elfCache.set(`${path}\0${buildId ?? ''}`, elf)
}

/** Groups file-backed maps by path into modules, as the live process does (see process/modules.ts). */
export function modulesOf(maps: readonly MapState[]): SnapshotModule[] {
  const byPath = new Map<string, MapState[]>()
  for (const m of maps) {
    if (!m.path.startsWith('/') || m.inode === 0) continue
    const list = byPath.get(m.path)
    if (list) list.push(m)
    else byPath.set(m.path, [m])
  }
  const modules: SnapshotModule[] = []
  for (const [path, list] of byPath) {
    const first = list[0]
    if (!first) continue
    const elf = elfFor(path, first.buildId)
    if (!elf && first.buildId === undefined) continue // not ELF (a locale archive): no module
    const end = list.reduce((a, b) => (a.end >= b.end ? a : b)).end
    const atZero = list.find((m) => m.offset === 0n) ?? first
    modules.push({
      name: basename(path),
      path,
      start: first.start,
      end,
      bias: elf ? atZero.start - elf.minLoadVaddr : atZero.start,
      elf,
    })
  }
  return modules.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0))
}

/** The map holding an address, by binary search of sorted maps. */
export const mapAt: (maps: readonly MapState[], address: bigint) => MapState | undefined = findMap

export function moduleAt(modules: readonly SnapshotModule[], address: bigint): SnapshotModule | undefined {
  return modules.find((m) => address >= m.start && address < m.end)
}

/** What names regions: the maps, and the threads whose stack pointers mark their stacks. */
export type Layout = Pick<SnapshotData, 'arch' | 'maps' | 'threads'>

/**
 * 'module!symbol+0xoff', 'module+0xoff', a region-relative name, or undefined outside every map.
 * Stacks count down from their top: '[stack]-0x2f8', '[stack thread 2]-0x2f8'.
 */
export function symbolizeIn(layout: Layout, modules: readonly SnapshotModule[], address: bigint): string | undefined {
  const mod = moduleAt(modules, address)
  if (mod) {
    const hit = mod.elf?.symbolize(address - mod.bias)
    if (hit) return `${mod.name}!${hit.symbol.name}${hit.offset ? `+${hex(hit.offset)}` : ''}`
    return `${mod.name}+${hex(address - mod.start)}`
  }
  const map = mapAt(layout.maps, address)
  if (!map) return undefined
  if (map.path === '') {
    // .bss past the file's last page is anonymous memory right after the module: its symbols still apply
    const owner = modules.find((m) => m.end === map.start)
    const hit = owner?.elf?.symbolize(address - owner.bias)
    if (owner && hit) return `${owner.name}!${hit.symbol.name}${hit.offset ? `+${hex(hit.offset)}` : ''}`
  }
  const id = identities(layout).get(map) ?? 'anon'
  if (map.path === '[stack]' || id.startsWith(THREAD_STACK)) return `${id}-${hex(map.end - address)}`
  if (map.path.startsWith('[')) return `${map.path}+${hex(address - map.start)}`
  return `${id}+${hex(address - map.start)}`
}

export const THREAD_STACK = '[stack thread '

/**
 * The stacks of threads other than the initial one, which are anonymous maps (pthread_create's mmap),
 * named by thread index (creation order): '[stack thread 2]' is the anonymous map holding thread 2's
 * stack pointer, '[stack thread 2 guard]' the inaccessible map right below it. A thread whose stack
 * pointer went into its guard (a stack overflow) still names both. Threads not captured (a thread
 * snapshot holds one) name nothing; when two threads' stack pointers share a map, the first names it.
 */
export function threadStacks(layout: Layout): Map<MapState, string> {
  const names = new Map<MapState, string>()
  const sp = archInfo(layout.arch).sp
  const { maps } = layout
  const isGuard = (m: MapState | undefined): m is MapState => m?.path === '' && m.perms.startsWith('---')
  for (const t of [...layout.threads].sort((x, y) => x.index - y.index)) {
    const at = t.regs[sp]
    let map = at === undefined ? undefined : mapAt(maps, at)
    if (map?.path !== '') continue
    let i = maps.indexOf(map)
    const above = maps[i + 1]
    if (isGuard(map) && above?.path === '' && above.start === map.end && !above.perms.startsWith('---')) {
      map = above
      i++
    }
    if (names.has(map)) continue
    names.set(map, `${THREAD_STACK}${t.index}]`)
    const below = maps[i - 1]
    if (isGuard(below) && below.end === map.start && !names.has(below))
      names.set(below, `${THREAD_STACK}${t.index} guard]`)
  }
  return names
}

const identityCache = new WeakMap<
  readonly MapState[],
  { threads: Layout['threads']; ids: Map<MapState, MapIdentity> }
>()

/**
 * Names for maps that do not depend on where ASLR put them: 'path@0xoffset' for files, the pseudo-path
 * for '[heap]', '[stack]', '[vdso]'..., '[stack thread N]' (and its guard) for the stacks of threads,
 * and 'anon#k@<previous named map>' for other anonymous memory.
 */
export function identities(layout: Layout): Map<MapState, MapIdentity> {
  const cached = identityCache.get(layout.maps)
  if (cached && cached.threads === layout.threads) return cached.ids
  const ids = new Map<MapState, MapIdentity>()
  const stacks = threadStacks(layout)
  const seen = new Map<string, number>()
  let anchor = 'start'
  let anonCount = 0
  for (const m of layout.maps) {
    let id: string
    const stack = stacks.get(m)
    if (stack !== undefined) {
      id = stack
      anchor = stack
      anonCount = 0
    } else if (m.path === '') {
      anonCount++
      id = `anon#${anonCount}@${anchor}`
    } else {
      id = m.path.startsWith('[') ? m.path : `${m.path}@${hex(m.offset)}`
      anchor = m.path.startsWith('[') ? m.path : basename(m.path)
      anonCount = 0
    }
    const n = (seen.get(id) ?? 0) + 1
    seen.set(id, n)
    ids.set(m, n > 1 ? `${id}#${n}` : id)
  }
  identityCache.set(layout.maps, { threads: layout.threads, ids })
  return ids
}
