// /proc/PID/maps as data: one entry per mapping, addresses as bigint.
import { closeSync, openSync, readFileSync } from 'node:fs'
import { errnoName } from '../native/constants.js'
import { lastErrno, sys } from '../native/libc.js'

export interface MemoryMap {
  readonly start: bigint
  readonly end: bigint
  /** 'r-xp' style: read, write, execute, private or shared. */
  readonly perms: string
  /** Offset in the mapped file. */
  readonly offset: bigint
  /** File path, a pseudo-path such as '[heap]', '[stack]', '[vdso]', or '' for anonymous memory. */
  readonly path: string
  readonly inode: number
}

/** Parses the text of /proc/PID/maps. */
export function parseMaps(text: string): MemoryMap[] {
  const maps: MemoryMap[] = []
  for (const line of text.split('\n')) {
    if (line === '') continue
    // start-end perms offset dev inode   path (the path may contain spaces and " (deleted)")
    const m = /^([0-9a-f]+)-([0-9a-f]+) (\S{4}) ([0-9a-f]+) \S+ (\d+)\s*(.*)$/.exec(line)
    if (!m) continue
    maps.push({
      start: BigInt(`0x${m[1]}`),
      end: BigInt(`0x${m[2]}`),
      perms: m[3] ?? '----',
      offset: BigInt(`0x${m[4]}`),
      inode: Number(m[5]),
      path: m[6] ?? '',
    })
  }
  return maps
}

export function readMaps(pid: number): MemoryMap[] {
  return parseMaps(readFileSync(`/proc/${pid}/maps`, 'latin1'))
}

/** Re-reads /proc/PID/maps through one open fd (pread from 0): half the cost of opening it each time. */
export class MapsReader {
  private readonly pid: number
  private fd = -1
  private buf = Buffer.allocUnsafe(16384)
  /** The last text read and its maps: a process stopped again with the same layout gets the same (frozen) array. */
  private last: { text: string; maps: readonly MemoryMap[] } | undefined

  constructor(pid: number) {
    this.pid = pid
  }

  read(): readonly MemoryMap[] {
    if (this.fd < 0) this.fd = openSync(`/proc/${this.pid}/maps`, 'r')
    let length = 0
    for (;;) {
      if (length === this.buf.length) {
        const bigger = Buffer.allocUnsafe(this.buf.length * 2)
        this.buf.copy(bigger)
        this.buf = bigger
      }
      // pread through koffi: a restore loop reads the maps at every stop, and Node's readSync costs more than the call.
      const n = Number(sys.pread64(this.fd, this.buf.subarray(length), this.buf.length - length, length))
      if (n < 0) {
        const code = errnoName(lastErrno()) // as Node's readSync would throw it
        throw Object.assign(new Error(`${code}: reading /proc/${this.pid}/maps failed`), { code })
      }
      if (n === 0) break
      length += n
    }
    const text = this.buf.toString('latin1', 0, length)
    if (this.last?.text !== text) this.last = { text, maps: Object.freeze(parseMaps(text)) }
    return this.last.maps
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd)
    this.fd = -1
  }
}

/** The mapping that contains `address`, by binary search over sorted maps. */
export function findMap<M extends { readonly start: bigint; readonly end: bigint }>(
  maps: readonly M[],
  address: bigint,
): M | undefined {
  let lo = 0
  let hi = maps.length - 1
  while (lo <= hi) {
    const mid = (lo + hi) >> 1
    const m = maps[mid]
    if (!m) break
    if (address < m.start) hi = mid - 1
    else if (address >= m.end) lo = mid + 1
    else return m
  }
  return undefined
}

/** Human description of where an address falls relative to the mappings, for error messages. */
export function describeUnmapped(maps: readonly MemoryMap[], address: bigint): string {
  const below = maps.filter((m) => m.end <= address).at(-1)
  const above = maps.find((m) => m.start > address)
  const name = (m: MemoryMap): string => `${hex(m.start)}-${hex(m.end)} ${m.path || '[anon]'}`
  const parts: string[] = []
  if (below) parts.push(`below it ends ${name(below)}`)
  if (above) parts.push(`above it starts ${name(above)}`)
  return parts.join('; ')
}

export function hex(value: bigint): string {
  return `0x${value.toString(16)}`
}
