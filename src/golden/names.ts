// Names for addresses that do not move with ASLR, for golden files: each address is written
// relative to what contains it. Modules and named regions by offset ('counter!bump+0x4',
// 'counter+0x4010', '[heap]+0x40'); the initial stack by its stack pointer below the argument
// strings ('[stack]@sp+0x18') and by its top above them ('[stack]-0x2f8'), because the kernel
// shifts the one by a random amount and not the other. Addresses in modules that are not the
// project's (system libraries) are written by symbol only ('libc.so.6!write'), or by module alone
// where no symbol covers them, so that a rebuilt libc leaves them as they were. Names are demangled.
import { demangle } from '../snapshot/demangle.js'
import { stringsGap, archSp } from '../snapshot/diff-memory.js'
import type { FdState, Frame, MapState, SnapshotData, SnapshotStop } from '../snapshot/model.js'
import { hex, mapAt, symbolizeIn, threadStacks, type SnapshotModule } from '../snapshot/regions.js'

/** Values below this are numbers, never addresses (no map starts below 64 KiB: vm.mmap_min_addr). */
const LOWEST_ADDRESS = 0x10000n

const LOWEST_NUMBER = Number(LOWEST_ADDRESS)
/** 2^53, below which a number holds an address exactly, and its upper 32-bit half. */
const NUMBER_EXACT = 1n << 53n
const HIGH_WORD_EXACT = 1 << 21

/** Section flags: in memory at run time; thread-local (.tbss overlaps the sections after it). */
const SHF_ALLOC = 0x2n
const SHF_TLS = 0x400n

/** Linux's RESERVED_PIDS: after the first wrap of pid numbers, user processes get pids from 300 on. */
const MIN_USER_PID = 300

const ends = new WeakMap<SnapshotModule, bigint>()

/** The link-time end of a module's last section in memory (0 without its ELF file). */
function sectionsEnd(module: SnapshotModule): bigint {
  let end = ends.get(module)
  if (end === undefined) {
    end = 0n
    for (const s of module.elf?.sections ?? [])
      if ((s.flags & SHF_ALLOC) !== 0n && (s.flags & SHF_TLS) === 0n && s.addr + s.size > end) end = s.addr + s.size
    ends.set(module, end)
  }
  return end
}

/** A section of a module's ELF file. */
type ElfSection = NonNullable<SnapshotModule['elf']>['sections'][number]

const loaded = new WeakMap<SnapshotModule, readonly ElfSection[]>()

/** A module's sections in memory at run time, thread-local ones excluded (.tbss overlaps the sections after it). */
function loadedSections(module: SnapshotModule): readonly ElfSection[] {
  let list = loaded.get(module)
  if (list === undefined) {
    list = (module.elf?.sections ?? []).filter((s) => (s.flags & SHF_ALLOC) !== 0n && (s.flags & SHF_TLS) === 0n)
    loaded.set(module, list)
  }
  return list
}

export class AddressNamer {
  private readonly data: SnapshotData
  private readonly modules: readonly SnapshotModule[]
  /** Start of the argument strings in the initial stack, and the main thread's sp. */
  private readonly stack: { map: MapState; stringsStart: bigint; sp: bigint } | undefined

  /** The process id and the tids of its threads at the stop, by their symbolic names. */
  private readonly ids = new Map<bigint, string>()
  /**
   * Anonymous maps holding a thread's thread pointer (the TCB, with the static TLS blocks below it):
   * named from the thread pointer, '[tp thread 1]-0x40', as their start moves with libc's TLS size.
   */
  private readonly tps: { map: MapState; tp: bigint; index: number }[] = []
  /** Paths of the modules written in full (offsets); undefined: all of them. */
  private readonly project: ReadonlySet<string> | undefined
  /** Starts and ends of the maps below 2^53, merged where adjacent, as numbers: a cheap test before a bigint lookup. */
  private readonly spans: number[] = []
  /** The ids of `ids` as numbers. */
  private readonly idNumbers = new Set<number>()

  constructor(data: SnapshotData, modules: readonly SnapshotModule[], project?: ReadonlySet<string>) {
    this.data = data
    this.modules = modules
    this.project = project
    // Below 300 the kernel gives pids to nobody after boot (RESERVED_PIDS): small numbers stay numbers.
    // In a PID namespace of its own (isolate) the program sees small ids of its own, never these.
    if (data.ownPid === undefined) {
      if (data.pid >= MIN_USER_PID) this.ids.set(BigInt(data.pid), 'pid')
      for (const t of data.threads)
        if (t.tid >= MIN_USER_PID && t.tid !== data.pid) this.ids.set(BigInt(t.tid), `tid#${t.index}`)
    }
    for (const t of [...data.threads].sort((a, b) => a.index - b.index)) {
      const tp = t.regs.fs_base ?? t.regs.tpidr_el0
      const at = tp === undefined || tp === 0n ? undefined : mapAt(data.maps, tp)
      // A thread's own stack holds its TLS too: that stays named by the stack.
      if (at && at.path === '' && !this.tps.some((x) => x.map === at) && !threadStacks(data).has(at))
        this.tps.push({ map: at, tp: tp ?? 0n, index: t.index })
    }
    for (const id of this.ids.keys()) this.idNumbers.add(Number(id))
    // Modules too: one may span a hole between its maps, and an address there is named by the module.
    const ranges = [...data.maps, ...modules]
      .filter((r) => r.end <= NUMBER_EXACT)
      .map((r) => [Number(r.start), Number(r.end)] as const)
      .sort((a, b) => a[0] - b[0])
    for (const [start, end] of ranges) {
      const last = this.spans.length - 1
      if (last > 0 && start <= (this.spans[last] ?? 0)) this.spans[last] = Math.max(end, this.spans[last] ?? 0)
      else this.spans.push(start, end)
    }
    const map = data.maps.find((m) => m.path === '[stack]')
    const sp = data.threads.find((t) => t.index === 1)?.regs[archSp(data)]
    if (map && sp !== undefined) {
      const gap = stringsGap(map, data)
      this.stack = { map, sp, stringsStart: gap ? map.start + BigInt(gap.end) : map.end }
    }
  }

  /**
   * Whether the 64-bit value with these 32-bit halves may have a name (it may point into a map): false
   * for most data words, without the cost of a bigint. Values above 2^53 are left to name().
   */
  mayName(lo: number, hi: number): boolean {
    if (hi >= HIGH_WORD_EXACT) return true
    const value = hi * 0x100000000 + lo
    if (value < LOWEST_NUMBER) return false
    const spans = this.spans
    let low = 0
    let high = spans.length >> 1
    while (low < high) {
      const mid = (low + high) >> 1
      if ((spans[mid * 2 + 1] ?? 0) <= value) low = mid + 1
      else high = mid
    }
    return low < spans.length >> 1 && (spans[low * 2] ?? 0) <= value
  }

  /** Whether a 32-bit value may be the process's or a thread's id (see id()). */
  mayBeId(value: number): boolean {
    return this.idNumbers.has(value)
  }

  /**
   * The name of the value in a pointer-sized slot. A slot that a dynamic relocation fills with an ifunc
   * (glibc's strlen, memcpy, ...) is named by the symbol the relocation names, '<libc.so.6!strlen>',
   * not by the CPU-specific variant its resolver picked, which differs between machines. Another
   * function's address, such as one a program wrote over its GOT, is named as it is.
   */
  slotValue(slot: bigint, value: bigint): string | undefined {
    const owner = this.moduleAt(slot)
    const symbol = owner?.elf?.relocatedSlots.get(slot - owner.bias)
    if (symbol !== undefined) {
      const target = this.moduleAt(value)
      const elf = target?.elf
      if (target && elf?.findSymbol(symbol)?.type === 'ifunc') {
        // A variant has no exported name of its own, or one that contains the symbol's (__strcmp_avx2);
        // another function (getenv written over the slot) is shown as itself.
        const hit = elf.symbolize(value - target.bias)
        const exact = hit && hit.offset === 0n ? hit.symbol.name : undefined
        if (exact === undefined || exact.includes(symbol)) return `${target.name}!${demangle(symbol)}`
      }
    }
    return this.name(value)
  }

  private moduleAt(address: bigint): SnapshotModule | undefined {
    return this.modules.find((m) => address >= m.start && address < m.end)
  }

  /** Whether a module is written in full: the executable and the project's libraries. */
  isProject(module: SnapshotModule): boolean {
    return this.project === undefined || this.project.has(module.path)
  }

  /**
   * An address in a module: 'mod!symbol+0x4' in full, else 'mod!symbol'. Without a covering symbol, in
   * full 'mod!.got+0x8' (the section holding it: a stripped binary's GOT says what it is), else 'mod'.
   * `lookup` is where to look the symbol up: a caller frame's pc - 1, inside its call instruction.
   */
  private inModule(module: SnapshotModule, address: bigint, full: boolean, lookup = address): string {
    const vaddr = address - module.bias
    const hit = module.elf?.symbolize(lookup - module.bias)
    if (hit) {
      const offset = vaddr - hit.symbol.value
      return `${module.name}!${demangle(hit.symbol.name)}${full && offset ? `+${hex(offset)}` : ''}`
    }
    if (!full) return module.name
    const section = loadedSections(module).find((s) => vaddr >= s.addr && vaddr < s.addr + s.size)
    return section && section.name !== ''
      ? `${module.name}!${section.name}+${hex(vaddr - section.addr)}`
      : `${module.name}+${hex(address - module.start)}`
  }

  /** The module holding an address, or owning the anonymous map right after it (.bss past the file's last page). */
  private ownerAt(address: bigint): SnapshotModule | undefined {
    const module = this.moduleAt(address)
    if (module) return module
    const map = mapAt(this.data.maps, address)
    if (map?.path !== '') return undefined
    const owner = this.modules.find((m) => m.end === map.start)
    // Up to the end of its sections: libc's .bss holds statics that no exported symbol covers.
    if (owner && (owner.elf?.symbolize(address - owner.bias) || address < owner.bias + sectionsEnd(owner))) return owner
    return undefined
  }

  /** A backtrace frame: in full in the project's modules, by function only in others. */
  frame(f: Frame, depth: number): string {
    const lookup = depth > 0 ? f.pc - 1n : f.pc
    const module = this.moduleAt(lookup)
    return module ? this.inModule(module, f.pc, this.isProject(module), lookup) : f.location
  }

  /** Where the process stopped: a breakpoint in full (the test named that place), another stop as a frame. */
  stop(stop: SnapshotStop): string {
    const module = this.moduleAt(stop.pc)
    if (!module) return stop.location
    return this.inModule(module, stop.pc, stop.kind === 'breakpoint' || this.isProject(module))
  }

  /** The process's open descriptors, for the stat images of its terminals, pipes and sockets (stat-images.ts). */
  descriptors(): readonly FdState[] {
    return this.data.fds
  }

  /** The stable name of an address, or undefined when it is in no map (a number, then). */
  name(value: bigint): string | undefined {
    if (value < LOWEST_ADDRESS) return undefined
    const stack = this.stack
    if (stack && value >= stack.map.start && value < stack.map.end) {
      if (value >= stack.stringsStart) return `[stack]-${hex(stack.map.end - value)}`
      const offset = value - stack.sp
      return `[stack]@sp${offset < 0n ? '-' : '+'}${hex(offset < 0n ? -offset : offset)}`
    }
    const map = mapAt(this.data.maps, value)
    if (!map) return undefined
    const tls = this.tps.find((t) => t.map === map)
    if (tls) {
      const offset = value - tls.tp
      return `[tp thread ${tls.index}]${offset === 0n ? '' : offset < 0n ? `-${hex(-offset)}` : `+${hex(offset)}`}`
    }
    const module = this.ownerAt(value)
    if (module) return this.inModule(module, value, this.isProject(module))
    return symbolizeIn(this.data, this.modules, value)
  }

  /**
   * The process's own id or a thread's ('pid', 'tid#2'): pids differ in every run, so a golden
   * writes them by what they are. Only values of 300 and above, which no other pid can be mistaken for.
   */
  id(value: bigint): string | undefined {
    return this.ids.get(value)
  }

  /** A register or pointer-sized value: the process or a thread by id, its name when it points into a map, else hex. */
  value(value: bigint): string {
    const id = this.id(value)
    return id !== undefined ? `<${id}>` : (this.name(value) ?? hex(value))
  }
}
