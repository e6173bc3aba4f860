// Software breakpoints: sites in memory (one per address, shared by every breakpoint there), the
// original bytes under each int3, and the user-facing Breakpoint handle with hit counts.
import type { Emulation } from '../native/arch/index.js'
import { ReadOnlyError, ValueError } from '../errors.js'
import type { Location } from './modules.js'
import { SiteIndex } from './site-index.js'

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

/** What changes in a breakpoint: written by its table and the tracer, read by users through accessors. */
interface BreakpointState {
  readonly id: number
  readonly location: Location
  readonly temporary: boolean
  readonly internal: boolean
  address: bigint | undefined
  description: string
  hits: number
  enabled: boolean
  removed: boolean
  readonly condition: ((thread: number) => boolean) | undefined
}

/**
 * A breakpoint set by breakAt(). Its data fields are own enumerable properties, so that it prints,
 * compares (toEqual), clones and serializes as plain data; `enabled` arms and disarms it like
 * enable()/disable(); the other fields are read-only (a write throws ERR_READ_ONLY).
 */
export class Breakpoint {
  /** 1, 2, ... in creation order (0 for procsnap's own internal breakpoints). */
  declare readonly id: number
  /** The location as the caller wrote it. */
  declare readonly location: Location
  /** Removed at its first hit (runTo's). */
  declare readonly temporary: boolean
  /** procsnap's own (runTo, finish, library loads): never in proc.breakpoints. */
  declare readonly internal: boolean
  /** Resolved address, undefined while pending (its library is not loaded yet). */
  declare readonly address: bigint | undefined
  /** Symbolized form of the address ('counter!bump'), or the location while pending. */
  declare readonly description: string
  /** How many times a thread stopped here. */
  declare readonly hits: number
  /** Armed: setting it is enable() or disable(). */
  declare enabled: boolean
  declare readonly removed: boolean
  /** Not resolved yet: its library is not loaded. */
  declare readonly pending: boolean
  readonly #table: BreakpointTable
  readonly #state: BreakpointState

  static #field(
    name: string,
    read: (s: BreakpointState) => unknown,
    hint: string,
    enumerable = true,
  ): PropertyDescriptor {
    return {
      enumerable,
      get(this: Breakpoint) {
        return read(this.#state)
      },
      set() {
        throw new ReadOnlyError(`Breakpoint.${name} is kept by procsnap and cannot be set: ${hint}`)
      },
    }
  }

  static readonly #fields: PropertyDescriptorMap = {
    id: Breakpoint.#field('id', (s) => s.id, 'it numbers breakpoints in creation order.'),
    location: Breakpoint.#field('location', (s) => s.location, 'remove() it and set another with breakAt().'),
    temporary: Breakpoint.#field('temporary', (s) => s.temporary, 'it is fixed at creation.'),
    internal: Breakpoint.#field('internal', (s) => s.internal, 'it is fixed at creation.', false),
    address: Breakpoint.#field('address', (s) => s.address, 'remove() it and set another with breakAt().'),
    description: Breakpoint.#field('description', (s) => s.description, 'it is the symbolized address.'),
    hits: Breakpoint.#field('hits', (s) => s.hits, 'it counts stops; compare with a value read earlier.'),
    removed: Breakpoint.#field('removed', (s) => s.removed, 'call remove().'),
    pending: Breakpoint.#field(
      'pending',
      (s) => s.address === undefined && !s.removed,
      'it is armed when its library loads.',
    ),
    enabled: {
      enumerable: true,
      get(this: Breakpoint) {
        return this.#state.enabled
      },
      set(this: Breakpoint, value: unknown) {
        if (value === true) this.enable()
        else if (value === false) this.disable()
        else
          throw new ValueError(
            `Breakpoint.enabled is true or false (setting it is enable() or disable()); got ` +
              `${typeof value === 'string' ? JSON.stringify(value) : String(value)}.`,
          )
      },
    },
  }

  /** @internal Use Process.breakAt(). */
  constructor(table: BreakpointTable, state: BreakpointState) {
    this.#table = table
    this.#state = state
    Object.defineProperties(this, Breakpoint.#fields)
  }

  /** Takes the breakpoint out of the process; its int3 goes when no other breakpoint shares the address. */
  remove(): void {
    if (this.#state.removed) return
    this.#table.detach(this)
    this.#state.removed = true
    this.#table.forget(this)
  }

  disable(): void {
    if (!this.#state.enabled || this.#state.removed) return
    this.#state.enabled = false
    this.#table.detach(this)
  }

  enable(): void {
    if (this.#state.enabled || this.#state.removed) return
    this.#state.enabled = true
    if (this.#state.address !== undefined) this.#table.attach(this, this.#state.address)
  }

  /** The data fields only: what console.log and util.inspect show. */
  [Symbol.for('nodejs.util.inspect.custom')](
    _depth: number,
    options: object,
    inspect: (v: unknown, o: object) => string,
  ): string {
    const { id, location, address, description, hits, enabled, pending, removed } = this
    const data = { id, location, address, description, hits, enabled, pending, ...(removed ? { removed } : {}) }
    return `Breakpoint ${inspect(data, options)}`
  }
}

export class BreakpointTable {
  /** Sites by address; `byAddress` holds the same sites sorted, for reads and writes over a range. */
  readonly sites = new Map<bigint, Site>()
  private readonly byAddress = new SiteIndex<Site>()
  readonly all = new Set<Breakpoint>()
  private readonly states = new WeakMap<Breakpoint, BreakpointState>()
  private readonly instruction: Uint8Array
  private readonly peek: PeekFn
  private readonly poke: PokeFn

  constructor(instruction: Uint8Array, peek: PeekFn, poke: PokeFn) {
    this.instruction = instruction
    this.peek = peek
    this.poke = poke
  }

  create(location: Location, options: BreakpointOptions = {}): Breakpoint {
    const state: BreakpointState = {
      id: options.internal ? 0 : nextId++,
      location,
      temporary: options.temporary ?? false,
      internal: options.internal ?? false,
      address: undefined,
      description: typeof location === 'bigint' ? `0x${location.toString(16)}` : location,
      hits: 0,
      enabled: true,
      removed: false,
      condition: options.condition,
    }
    const bp = new Breakpoint(this, state)
    this.states.set(bp, state)
    this.all.add(bp)
    return bp
  }

  private state(bp: Breakpoint): BreakpointState {
    const state = this.states.get(bp)
    if (!state) throw new Error('a breakpoint of another process') // a procsnap bug: tables never share breakpoints
    return state
  }

  /** Gives a breakpoint its address and inserts the int3 there if it is enabled. */
  arm(bp: Breakpoint, address: bigint, description: string): void {
    const state = this.state(bp)
    state.address = address
    state.description = description
    if (state.enabled && !state.removed) this.attach(bp, address)
  }

  /** Whether a hit by thread `tid` stops at this breakpoint: enabled, not removed, and its condition holds. */
  accepts(bp: Breakpoint, tid: number): boolean {
    const state = this.state(bp)
    return state.enabled && !state.removed && (state.condition === undefined || state.condition(tid))
  }

  /** Counts a hit (+1), or takes back one that was not reported (-1). */
  count(bp: Breakpoint, delta: 1 | -1): void {
    this.state(bp).hits += delta
  }

  attach(bp: Breakpoint, address: bigint): void {
    let site = this.sites.get(address)
    if (!site) {
      const original = this.peek(address, this.instruction.length)
      this.poke(address, this.instruction)
      site = { address, original, inserted: true, owners: new Set() }
      this.sites.set(address, site)
      this.byAddress.add(site)
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
    this.byAddress.remove(site)
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

  /** Replaces int3 bytes in a buffer read from [address, address+len) with the original bytes; returns how many sites it patched. */
  patchRead(address: bigint, buf: Uint8Array): number {
    let patched = 0
    this.byAddress.forOverlapping(address, address + BigInt(buf.length), (site) => {
      if (!site.inserted) return
      patched++
      const at = Number(site.address - address)
      const { original } = site
      for (let i = Math.max(0, -at); i < original.length && at + i < buf.length; i++) buf[at + i] = original[i] ?? 0
    })
    return patched
  }

  /**
   * A user write over inserted sites: the new bytes become the sites' originals and the
   * int3 stays in place. Returns the bytes to actually write.
   */
  patchWrite(address: bigint, bytes: Uint8Array): Uint8Array {
    let out = bytes
    this.byAddress.forOverlapping(address, address + BigInt(bytes.length), (site) => {
      if (!site.inserted) return
      if (out === bytes) out = Uint8Array.from(bytes)
      const at = Number(site.address - address)
      const { original } = site
      for (let i = Math.max(0, -at); i < original.length && at + i < bytes.length; i++) {
        original[i] = bytes[at + i] ?? 0
        out[at + i] = this.instruction[i] ?? 0
      }
      site.emulation = undefined // the instruction may have changed
    })
    return out
  }

  /** After exec the address space is new: no site is in memory any more. */
  dropAllSites(): void {
    this.sites.clear()
    this.byAddress.clear()
    for (const bp of this.all) this.state(bp).address = undefined
  }

  userBreakpoints(): Breakpoint[] {
    return [...this.all].filter((bp) => !bp.internal)
  }

  /** What an exec re-arms by name: the user's breakpoints and a runTo's target given by name. */
  byName(): Breakpoint[] {
    return [...this.all].filter((bp) => !bp.internal || (bp.temporary && typeof bp.location === 'string'))
  }
}
