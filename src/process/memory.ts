// Reading and writing tracee memory by address, with errors that say which mapping is missing or refused.
import { MemoryError, ProcessStateError } from '../errors.js'
import { crcPages, readPagesShared, startReadPages, type ReadSync } from '../files/shared-pages.js'
import { ERRNO, errnoName } from '../native/constants.js'
import { openPagemap } from '../native/pagemap.js'
import {
  closeFd,
  openProcessMem,
  preadMem,
  pwriteMem,
  readProcessMemory,
  readProcessMemoryRanges,
} from '../native/memory.js'
import type { BreakpointTable } from './breakpoints.js'
import { describeUnmapped, findMap, hex, type MemoryMap } from './maps.js'

export class TraceeMemory {
  private readonly pid: number
  private readonly maps: () => readonly MemoryMap[]
  private fd = -1
  /** The pagemap fd, or -errno once refused; undefined before it is asked for. */
  private pagemap: number | undefined
  /** Set once the breakpoint table exists, so reads show original bytes, never int3. */
  table: BreakpointTable | undefined

  constructor(pid: number, maps: () => readonly MemoryMap[]) {
    this.pid = pid
    this.maps = maps
  }

  /** Reads `length` bytes at `address` into a new buffer; breakpoint bytes show as the original code. */
  read(address: bigint, length: number): Uint8Array {
    const out = new Uint8Array(length)
    this.readInto(address, out)
    return out
  }

  /** Reads `target.length` bytes at `address` into `target`, reusing the caller's buffer. */
  readInto(address: bigint, target: Uint8Array): void {
    this.readRaw(address, target)
    this.table?.patchRead(address, target)
  }

  /**
   * Reads several ranges at once (one system call), one after another into `target` from its start;
   * breakpoint bytes show as the original code. False when some range could not be read whole (the
   * caller reads them one by one with readInto, which says why).
   */
  readRanges(ranges: readonly (readonly [address: bigint, length: number])[], target: Uint8Array): boolean {
    let total = 0
    for (const [, length] of ranges) total += length
    if (readProcessMemoryRanges(this.pid, ranges, target) !== total) return false
    if (this.table) {
      let at = 0
      for (const [address, length] of ranges) {
        this.table.patchRead(address, target.subarray(at, at + length))
        at += length
      }
    }
    return true
  }

  /** The bytes as they are in memory, int3 included: for the breakpoint table only. */
  readRaw(address: bigint, target: Uint8Array): void {
    // A large capture buffer: half of it read by a helper thread through /proc/PID/mem (files/shared-pages.ts).
    if (readPagesShared(this.memFd(), target, Number(address), undefined, this.vmRead)) return
    let done = 0
    while (done < target.length) {
      const n = readProcessMemory(this.pid, address + BigInt(done), target, done, target.length - done)
      if (n <= 0) break
      done += n
    }
    if (done === target.length) return
    // process_vm_readv honours page permissions; /proc/PID/mem reads what a debugger may read.
    const rest = target.subarray(done)
    const n = preadMem(this.memFd(), address + BigInt(done), rest)
    if (n === rest.length) return
    throw this.failure('read', address + BigInt(done + Math.max(n, 0)), target.length, n < 0 ? -n : 0)
  }

  /**
   * readInto with each page's crc32 into `crcs`, begun now (a helper thread reads a large shared
   * buffer while the caller writes the previous one: a dump's pass that writes) and completed by
   * `finish`, which throws as readInto does.
   */
  startRead(address: bigint, target: Uint8Array, crcs?: Uint32Array): { finish(): void } {
    const started = startReadPages(this.memFd(), target, Number(address), crcs)
    return {
      finish: () => {
        const done = started?.finish(this.vmRead) ?? false
        if (!done) this.readRaw(address, target)
        const patched = this.table?.patchRead(address, target) ?? 0
        if (crcs && (!done || patched > 0)) crcs.set(crcPages(target))
      },
    }
  }

  /** Writes bytes, through read-only mappings too (as a debugger does); int3 sites keep their int3. */
  write(address: bigint, bytes: Uint8Array): void {
    this.writeRaw(address, this.table ? this.table.patchWrite(address, bytes) : bytes)
  }

  writeRaw(address: bigint, bytes: Uint8Array): void {
    const n = pwriteMem(this.memFd(), address, bytes)
    if (n !== bytes.length) throw this.failure('write', address, bytes.length, n < 0 ? -n : 0)
  }

  /** process_vm_readv, as the shared read calls it (the descriptor is the helper's, for pread). */
  private readonly vmRead: ReadSync = (_fd, into, at, length, position) =>
    readProcessMemory(this.pid, BigInt(position), into, at, length)

  close(): void {
    if (this.fd >= 0) closeFd(this.fd)
    this.fd = -1
    if (this.pagemap !== undefined && this.pagemap >= 0) closeFd(this.pagemap)
    this.pagemap = undefined
  }

  /** /proc/PID/pagemap, opened once (a restore loop asks it which pages were touched each time); undefined if refused. */
  pagemapFd(): number | undefined {
    this.pagemap ??= openPagemap(this.pid)
    return this.pagemap >= 0 ? this.pagemap : undefined
  }

  private memFd(): number {
    if (this.fd < 0) {
      const fd = openProcessMem(this.pid)
      if (fd === -(ERRNO.ENOENT ?? 2) || fd === -(ERRNO.ESRCH ?? 3)) throw this.gone('open', 0n, 0)
      if (fd < 0)
        throw new MemoryError(
          'ERR_MEMORY_ACCESS',
          0n,
          0,
          `Cannot open /proc/${this.pid}/mem (${errnoName(-fd)}): the process is gone or not traced by us.`,
        )
      this.fd = fd
    }
    return this.fd
  }

  /** The process died under us (killed outside procsnap between two stops): no memory left to use. */
  private gone(op: string, at: bigint, length: number): ProcessStateError {
    return new ProcessStateError(
      'ERR_PROCESS_ENDED',
      `Cannot ${op} ${op === 'open' ? `/proc/${this.pid}/mem` : `${length} bytes at ${hex(at)}`}: ` +
        `process ${this.pid} is gone. It was killed or ended outside procsnap since its last stop ` +
        `(a SIGKILL from elsewhere, the OOM killer); await proc.wait() to learn how it ended.`,
    )
  }

  private failure(op: 'read' | 'write', at: bigint, length: number, errno: number): MemoryError | ProcessStateError {
    const maps = this.maps()
    // Every live process has mappings (its stack at least): none means it died and is a zombie.
    if (maps.length === 0) return this.gone(op, at, length)
    const map = findMap(maps, at)
    if (!map) {
      return new MemoryError(
        'ERR_ADDRESS_UNMAPPED',
        at,
        length,
        `Cannot ${op} ${length} bytes at ${hex(at)}: no mapping contains ${hex(at)} ` +
          `(${describeUnmapped(maps, at) || 'the process has no mappings'}). Check the address, or ` +
          `name the location by symbol.`,
      )
    }
    return new MemoryError(
      'ERR_MEMORY_ACCESS',
      at,
      length,
      `Cannot ${op} ${length} bytes at ${hex(at)} in ${hex(map.start)}-${hex(map.end)} ` +
        `${map.perms} ${map.path || '[anon]'}: the kernel refused (${errnoName(errno)}).` +
        (map.path.startsWith('[vvar') || map.path === '[vsyscall]' ? ` ${map.path} is not readable by ptrace.` : ''),
      errno ? errnoName(errno) : undefined,
    )
  }
}
