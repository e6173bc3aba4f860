// Software breakpoints: sites in memory (one per address, shared by every breakpoint there), the
// original bytes under each int3, and the user-facing Breakpoint handle with hit counts.
import type { Emulation } from '../native/arch/index.js'
import type { Location } from './modules.js'

/** Writes bytes into the tracee; throws on failure. */
export type PokeFn = (address: bigint, bytes: Uint8Array) => void
/** Reads bytes from the tracee as they are in memory (int3 included); throws on failure. */
export type PeekFn = (address: bigint, length: number) => Uint8Array

/** One address patched with the breakpoint instruction. */
export interface Site {
  readonly address: bigint
  /** The bytes the breakpoint instruction replaced. */
  original: Uint8Array
  inserted: boolean
  readonly owners: Set<Breakpoint>
  /** How to step over the site without running the thread: undefined until decoded, null if it cannot be. */
  emulation?: Emulation | null
}

export interface BreakpointOptions {
  temporary?: boolean
  internal?: boolean
  /** Checked at each hit with the stopped thread; a false answer continues silently (finish uses it). */
  condition?: (thread: number) => boolean
}

let nextId = 1

export class Breakpoint {
  readonly id: number
  /** The location as the caller wrote it. */
  readonly location: Location
  /** Resolved address, undefined while pending (its library is not loaded yet). */
  address: bigint | undefined = undefined
  /** Symbolized form of the address ('counter!bump'), or the location while pending. */
  description: string
  hits = 0
  enabled = true
  removed = false
  readonly temporary: boolean
  readonly internal: boolean
  readonly condition: ((thread: number) => boolean) | undefined
  private readonly table: BreakpointTable

  constructor(table: BreakpointTable, location: Location, options: BreakpointOptions = {}) {
    this.table = table
    this.id = options.internal ? 0 : nextId++
    this.location = location
    this.description = typeof location === 'bigint' ? `0x${location.toString(16)}` : location
    this.temporary = options.temporary ?? false
    this.internal = options.internal ?? false
    this.condition = options.condition
  }

  get pending(): boolean {
    return this.address === undefined && !this.removed
  }

  /** Takes the breakpoint out of the process; its int3 goes when no other breakpoint shares the address. */
  remove(): void {
    if (this.removed) return
    this.table.detach(this)
    this.removed = true
    this.table.forget(this)
  }

  disable(): void {
    if (!this.enabled || this.removed) return
    this.enabled = false
    this.table.detach(this)
  }

  enable(): void {
    if (this.enabled || this.removed) return
    this.enabled = true
    if (this.address !== undefined) this.table.attach(this, this.address)
  }
}

export class BreakpointTable {
  readonly sites = new Map<bigint, Site>()
  readonly all = new Set<Breakpoint>()
  private readonly instruction: Uint8Array
  private readonly peek: PeekFn
  private readonly poke: PokeFn

  constructor(instruction: Uint8Array, peek: PeekFn, poke: PokeFn) {
    this.instruction = instruction
    this.peek = peek
    this.poke = poke
  }

  create(location: Location, options?: BreakpointOptions): Breakpoint {
    const bp = new Breakpoint(this, location, options)
    this.all.add(bp)
    return bp
  }

  /** Gives a breakpoint its address and inserts the int3 there if it is enabled. */
  arm(bp: Breakpoint, address: bigint, description: string): void {
    bp.address = address
    bp.description = description
    if (bp.enabled && !bp.removed) this.attach(bp, address)
  }

  attach(bp: Breakpoint, address: bigint): void {
    let site = this.sites.get(address)
    if (!site) {
      const original = this.peek(address, this.instruction.length)
      this.poke(address, this.instruction)
      site = { address, original, inserted: true, owners: new Set() }
      this.sites.set(address, site)
    }
    site.owners.add(bp)
  }

  detach(bp: Breakpoint): void {
    if (bp.address === undefined) return
    const site = this.sites.get(bp.address)
    if (!site) return
    site.owners.delete(bp)
    if (site.owners.size > 0) return
    if (site.inserted) this.poke(site.address, site.original)
    this.sites.delete(site.address)
  }

  forget(bp: Breakpoint): void {
    this.all.delete(bp)
  }

  /** The code at a site as the program sees it (original bytes, not the int3); undefined if unreadable. */
  codeAt(site: Site, length: number): Uint8Array | undefined {
    try {
      const code = this.peek(site.address, length)
      code.set(site.original.subarray(0, length))
      return code
    } catch {
      return undefined
    }
  }

  siteAt(address: bigint): Site | undefined {
    return this.sites.get(address)
  }

  /** Writes plain data (a stack word of an emulated push) through the table's writer. */
  store(address: bigint, bytes: Uint8Array): void {
    this.poke(address, bytes)
  }

  /** Puts the original bytes back for a moment (to step over the site). */
  lift(site: Site): void {
    if (!site.inserted) return
    this.poke(site.address, site.original)
    site.inserted = false
  }

  reinsert(site: Site): void {
    if (site.inserted || !this.sites.has(site.address)) return
    this.poke(site.address, this.instruction)
    site.inserted = true
  }

  /** Replaces int3 bytes in a buffer read from [address, address+len) with the original bytes. */
  patchRead(address: bigint, buf: Uint8Array): void {
    if (this.sites.size === 0) return
    const end = address + BigInt(buf.length)
    for (const site of this.sites.values()) {
      if (!site.inserted || site.address + BigInt(site.original.length) <= address || site.address >= end) continue
      for (let i = 0; i < site.original.length; i++) {
        const at = site.address + BigInt(i) - address
        if (at >= 0n && at < BigInt(buf.length)) buf[Number(at)] = site.original[i] ?? 0
      }
    }
  }

  /**
   * A user write over inserted sites: the new bytes become the sites' originals and the
   * int3 stays in place. Returns the bytes to actually write.
   */
  patchWrite(address: bigint, bytes: Uint8Array): Uint8Array {
    if (this.sites.size === 0) return bytes
    let out = bytes
    const end = address + BigInt(bytes.length)
    for (const site of this.sites.values()) {
      if (!site.inserted || site.address + BigInt(site.original.length) <= address || site.address >= end) continue
      if (out === bytes) out = Uint8Array.from(bytes)
      for (let i = 0; i < site.original.length; i++) {
        const at = site.address + BigInt(i) - address
        if (at < 0n || at >= BigInt(bytes.length)) continue
        site.original[i] = bytes[Number(at)] ?? 0
        out[Number(at)] = this.instruction[i] ?? 0
      }
      site.emulation = undefined // the instruction may have changed
    }
    return out
  }

  /** After exec the address space is new: no site is in memory any more. */
  dropAllSites(): void {
    this.sites.clear()
    for (const bp of this.all) bp.address = undefined
  }

  userBreakpoints(): Breakpoint[] {
    return [...this.all].filter((bp) => !bp.internal)
  }
}
