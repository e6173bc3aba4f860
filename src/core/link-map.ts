// gdb finds a core's shared libraries through the executable's DT_DEBUG entry, which ld.so sets to
// its r_debug at run time. .dynamic lies in the RELRO region, read-only by then: a 'writable' or
// 'base' snapshot does not hold it, and the file on disk has 0 there, so gdb would list no library
// and unwind nothing past the executable. The kernel's cores hold that page (it was written); this
// builds it for a core: the map read from the executable on disk, DT_DEBUG set to ld.so's _r_debug.
import { closeSync, openSync, readSync } from 'node:fs'
import { basename } from 'node:path'
import { readElf } from '../elf/index.js'
import type { CoreMap, CoreSource } from './types.js'

const AT_BASE = 7
const AT_ENTRY = 9
const PT_DYNAMIC = 2
const DT_NULL = 0n
const DT_DEBUG = 21n
/** Larger maps are not read (a RELRO region is a few pages). */
const MAX_MAP = 16 << 20

/** The address a location ('ld-linux-x86-64.so.2!_r_debug') names in the snapshot, or undefined. */
export type CoreResolve = (location: string) => bigint | undefined

function readAt(fd: number, length: number, position: number): Uint8Array {
  const bytes = new Uint8Array(length)
  let done = 0
  while (done < length) {
    const n = readSync(fd, bytes, done, length - done, position + done)
    if (n <= 0) break
    done += n
  }
  return bytes
}

/**
 * [runtime address of .dynamic, its size] of the executable at `path` loaded where the auxv says
 * (AT_ENTRY), when the file is the one mapped (its build-id the snapshot's, where one was recorded).
 */
function dynamicOf(path: string, entry: bigint, buildId: string | undefined): [bigint, number] | undefined {
  const elf = readElf(path)
  if (buildId !== undefined && elf.buildId !== buildId) return undefined
  const dynamic = elf.segments.find((s) => s.type === PT_DYNAMIC)
  return dynamic && [entry - elf.entry + dynamic.vaddr, Number(dynamic.memsz)]
}

/**
 * The executable's map that holds .dynamic, with its bytes from the file and DT_DEBUG pointing at
 * ld.so's r_debug, when the snapshot does not hold that map; undefined otherwise (held already, a
 * static executable, a file that is gone or another than the one mapped).
 */
export function dynamicMap(data: CoreSource, exePath: string, resolve: CoreResolve): CoreMap | undefined {
  const value = (type: number): bigint | undefined => data.auxv.find((e) => e.type === type)?.value
  const entry = value(AT_ENTRY)
  const base = value(AT_BASE)
  const interp = base ? data.maps.find((m) => m.start === base && m.path.startsWith('/')) : undefined
  const rDebug = interp ? resolve(`${basename(interp.path)}!_r_debug`) : undefined
  if (entry === undefined || rDebug === undefined) return undefined
  let fd: number | undefined
  try {
    const exeMap = data.maps.find((m) => m.path === data.exe)
    const dynamic = dynamicOf(exePath, entry, exeMap?.buildId)
    if (!dynamic) return undefined
    fd = openSync(exePath, 'r')
    const [at, size] = dynamic
    const map = data.maps.find((m) => m.start <= at && at < m.end && m.inode !== 0)
    const length = map ? Number(map.end - map.start) : 0
    if (!map || map.content || map.sparse || length > MAX_MAP || at + BigInt(size) > map.end) return undefined
    const content = readAt(fd, length, Number(map.offset))
    const view = new DataView(content.buffer)
    for (let off = Number(at - map.start); off + 16 <= Number(at - map.start) + size; off += 16) {
      const tag = view.getBigInt64(off, true)
      if (tag === DT_NULL) break
      if (tag === DT_DEBUG) {
        view.setBigUint64(off + 8, rDebug, true)
        return { ...map, content }
      }
    }
    return undefined
  } catch {
    return undefined
  } finally {
    if (fd !== undefined) closeSync(fd)
  }
}
