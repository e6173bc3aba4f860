// What is mapped where in a tracee: the maps (re-read after every run) and the loaded modules
// (kept until an exec or a change of ld.so's link map), and locations resolved against them.
import { readFileSync } from 'node:fs'
import { MemoryError, ProcsnapError } from '../errors.js'
import { readElf, type ElfFile } from '../elf/index.js'
import { describeUnmapped, findMap, hex, MapsReader, type MemoryMap } from './maps.js'
import {
  modulesFromMaps,
  parseLocation,
  resolveInModule,
  resolveLocation,
  symbolizeAddress,
  type Location,
  type Module,
  type ResolvedLocation,
} from './modules.js'

export class AddressSpace {
  private readonly pid: number
  private exePath: string
  private readonly onModulesRead: () => void
  private readonly reader: MapsReader
  private mapsCache: readonly MemoryMap[] | undefined
  private modulesCache: Module[] | undefined
  /**
   * The executable's module and the stack's mapping, read from the maps at the exec, while they are
   * a few lines long: by the entry point ld.so has mapped every library (5 lines each), and the
   * launch needs neither the rest nor a module per library to break at main (see resolve).
   */
  private atExec: { exe: Module | undefined; stack: MemoryMap | undefined } | undefined
  private readonly elves = new Map<string, ElfFile | null>()
  private auxv: Buffer | undefined
  private readonly hostPath: (path: string) => string

  /**
   * `onModulesRead` runs each time the module list is read afresh (the Process arms its rendezvous);
   * `hostPath` turns a path of the maps (as the tracee sees it) into one this process can open.
   */
  constructor(pid: number, exePath: string, onModulesRead: () => void, hostPath = (path: string): string => path) {
    this.pid = pid
    this.hostPath = hostPath
    this.exePath = exePath
    this.onModulesRead = onModulesRead
    this.reader = new MapsReader(pid)
  }

  /** The process ran: its maps may have changed (heap, mmap), its modules only through ld.so. */
  ran(): void {
    this.mapsCache = undefined
  }

  /**
   * After an exec of `exePath`: an open /proc/PID/maps still shows the old address space (empty), so
   * reopen it. `auxv`: the auxiliary vector's pairs when the caller read them (from the new stack).
   */
  execed(exePath: string, auxv?: Buffer): void {
    this.exePath = exePath
    this.reader.close()
    this.auxv = auxv // as read from the new stack, or from /proc/PID/auxv at first use
    this.reload()
    const maps = this.maps()
    const exe = modulesFromMaps(
      maps.filter((m) => m.path === exePath),
      (path, inode) => this.elfFor(path, inode),
    )[0]
    this.atExec = { exe, stack: maps.find((m) => m.path === '[stack]') }
  }

  /** The stack's mapping as the exec left it (it only grows down from there); undefined before an exec. */
  stackAtExec(): MemoryMap | undefined {
    return this.atExec?.stack
  }

  /** An exec or a link-map change: read everything again. */
  reload(): void {
    this.mapsCache = undefined
    this.modulesCache = undefined
  }

  maps(): readonly MemoryMap[] {
    this.mapsCache ??= this.reader.read()
    return this.mapsCache
  }

  modules(): Module[] {
    if (!this.modulesCache) {
      this.modulesCache = modulesFromMaps(this.maps(), (path, inode) => this.elfFor(path, inode))
      this.onModulesRead()
    }
    return this.modulesCache
  }

  exe(): Module | undefined {
    const modules = this.modules()
    return modules.find((m) => m.path === this.exePath) ?? modules[0]
  }

  /** A location as an address; for a breakpoint or an absolute address, it must be mapped. */
  resolve(location: Location, forBreakpoint = false): ResolvedLocation {
    const resolved = this.resolveInExe(location) ?? resolveLocation(location, this.modules(), this.exe())
    // Inside a module it is mapped; elsewhere (an absolute address) the maps must say so.
    if ((typeof location === 'bigint' || forBreakpoint) && !resolved.module) {
      const maps = this.maps()
      if (!findMap(maps, resolved.address)) {
        throw new MemoryError(
          'ERR_ADDRESS_UNMAPPED',
          resolved.address,
          0,
          `${hex(resolved.address)} is outside every mapping ` +
            `(${describeUnmapped(maps, resolved.address)}). Use a symbol, 'module+0xoffset', or an ` +
            `address from proc.maps.`,
        )
      }
    }
    return resolved
  }

  symbolize(address: bigint): string {
    return symbolizeAddress(this.modules(), address)
  }

  /**
   * A plain symbol ('main', not 'libc!write') that the executable defines, without listing the libraries:
   * resolveLocation searches the executable first, so the answer is the same. Only until the module
   * list is read (once it is, resolveLocation costs no more).
   */
  private resolveInExe(location: Location): ResolvedLocation | undefined {
    const exe = this.atExec?.exe
    if (this.modulesCache || !exe || typeof location !== 'string') return undefined
    const parsed = parseLocation(location)
    if (parsed.kind !== 'symbol' || parsed.module !== undefined) return undefined
    return resolveInModule(exe, parsed.symbol, parsed.offset)
  }

  /** A value of the auxiliary vector (AT_ENTRY, AT_RANDOM, ...), or undefined when absent. */
  auxvValue(type: bigint): bigint | undefined {
    // Read once an exec: the auxiliary vector never changes after it.
    this.auxv ??= readFileSync(`/proc/${this.pid}/auxv`)
    const auxv = this.auxv
    for (let i = 0; i + 16 <= auxv.length; i += 16) {
      if (auxv.readBigUInt64LE(i) === type) return auxv.readBigUInt64LE(i + 8)
    }
    return undefined
  }

  /** AT_ENTRY of the auxiliary vector: the program's entry point, relocated. */
  entryPoint(): bigint {
    const entry = this.auxvValue(AT_ENTRY)
    if (entry !== undefined) return entry
    throw new ProcsnapError(
      'ERR_SPAWN_FAILED',
      `No AT_ENTRY in /proc/${this.pid}/auxv after exec: cannot find the entry point.`,
    )
  }

  close(): void {
    this.reader.close()
  }

  /** ELF files by inode: a mapped file cannot change under its inode, so no stat is needed. */
  private elfFor(path: string, inode: number): ElfFile | undefined {
    const key = `${inode}:${path}`
    let elf = this.elves.get(key)
    if (elf === undefined) {
      try {
        elf = readElf(this.hostPath(path.replace(/ \(deleted\)$/, '')))
      } catch {
        elf = null // a mapped file that is not ELF (a locale archive, a font)
      }
      this.elves.set(key, elf)
    }
    return elf ?? undefined
  }
}

const AT_ENTRY = 9n
