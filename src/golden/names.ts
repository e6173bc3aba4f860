// Names for addresses that do not move with ASLR, for golden files: each address is written
// relative to what contains it. Modules and named regions by offset ('counter!bump+0x4',
// 'counter+0x4010', '[heap]+0x40'); the initial stack by its stack pointer below the argument
// strings ('[stack]@sp+0x18') and by its top above them ('[stack]-0x2f8'), because the kernel
// shifts the one by a random amount and not the other.
import { stringsGap, archSp } from '../snapshot/diff-memory.js'
import type { MapState, SnapshotData } from '../snapshot/model.js'
import { hex, mapAt, symbolizeIn, type SnapshotModule } from '../snapshot/regions.js'

/** Values below this are numbers, never addresses (no map starts below 64 KiB: vm.mmap_min_addr). */
const LOWEST_ADDRESS = 0x10000n

/** The register that holds a thread's thread pointer (x86_64; aarch64's is tpidr). */
const THREAD_POINTER = 'fs_base'

/** Linux's RESERVED_PIDS: after the first wrap of pid numbers, user processes get pids from 300 on. */
const MIN_USER_PID = 300

export class AddressNamer {
  private readonly data: SnapshotData
  private readonly modules: readonly SnapshotModule[]
  /** Start of the argument strings in the initial stack, and the main thread's sp. */
  private readonly stack: { map: MapState; stringsStart: bigint; sp: bigint } | undefined

  /** The process id and the tids of its threads at the stop, by their symbolic names. */
  private readonly ids = new Map<bigint, string>()
  /** Each thread's thread pointer (fs_base: glibc's struct pthread, what pthread_self() returns), by thread index. */
  private readonly threadPointers = new Map<bigint, string>()

  constructor(data: SnapshotData, modules: readonly SnapshotModule[]) {
    this.data = data
    this.modules = modules
    // Below 300 the kernel gives pids to nobody after boot (RESERVED_PIDS): small numbers stay numbers.
    if (data.pid >= MIN_USER_PID) this.ids.set(BigInt(data.pid), 'pid')
    for (const t of data.threads)
      if (t.tid >= MIN_USER_PID && t.tid !== data.pid) this.ids.set(BigInt(t.tid), `tid#${t.index}`)
    // The main thread's block is placed by ld.so after allocations that depend on the CPU (its list
    // of glibc-hwcaps directories): written by thread, the same pointer reads the same on every CPU.
    for (const t of data.threads) {
      const tp = t.regs[THREAD_POINTER]
      if (tp !== undefined && tp >= LOWEST_ADDRESS && !this.threadPointers.has(tp))
        this.threadPointers.set(tp, `pthread#${t.index}`)
    }
    const map = data.maps.find((m) => m.path === '[stack]')
    const sp = data.threads.find((t) => t.index === 1)?.regs[archSp(data)]
    if (map && sp !== undefined) {
      const gap = stringsGap(map, data)
      this.stack = { map, sp, stringsStart: gap ? map.start + BigInt(gap.end) : map.end }
    }
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
        if (exact === undefined || exact.includes(symbol)) return `${target.name}!${symbol}`
      }
    }
    return this.name(value)
  }

  private moduleAt(address: bigint): SnapshotModule | undefined {
    return this.modules.find((m) => address >= m.start && address < m.end)
  }

  /** The stable name of an address, or undefined when it is in no map (a number, then). */
  name(value: bigint): string | undefined {
    if (value < LOWEST_ADDRESS) return undefined
    const thread = this.threadPointers.get(value)
    if (thread !== undefined) return thread
    const stack = this.stack
    if (stack && value >= stack.map.start && value < stack.map.end) {
      if (value >= stack.stringsStart) return `[stack]-${hex(stack.map.end - value)}`
      const offset = value - stack.sp
      return `[stack]@sp${offset < 0n ? '-' : '+'}${hex(offset < 0n ? -offset : offset)}`
    }
    if (!mapAt(this.data.maps, value)) return undefined
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
