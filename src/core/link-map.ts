// gdb finds a core's shared libraries through the executable's DT_DEBUG entry, which ld.so sets to
// its r_debug at run time. .dynamic lies in the RELRO region, read-only by then: a 'writable' or
// 'base' snapshot does not hold it, and the file on disk has 0 there, so gdb would list no library
// and unwind nothing past the executable. The kernel's cores hold that page (it was written); this
// builds it for a core: the map read from the executable on disk, DT_DEBUG set to ld.so's _r_debug.
import { closeSync, openSync, readSync } from 'node:fs'
import { basename } from 'node:path'
import type { CoreMap, CoreSource } from './types.js'

const AT_BASE = 7
const AT_ENTRY = 9
const PT_DYNAMIC = 2
const PT_NOTE = 4
const NT_GNU_BUILD_ID = 3
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

/** The GNU build-id in a PT_NOTE segment's bytes, as lowercase hex. */
function buildIdIn(notes: Uint8Array): string | undefined {
  const view = new DataView(notes.buffer, notes.byteOffset, notes.byteLength)
  for (let at = 0; at + 12 <= notes.length;) {
    const namesz = view.getUint32(at, true)
    const descsz = view.getUint32(at + 4, true)
    const desc = at + 12 + ((namesz + 3) & ~3)
    if (desc + descsz > notes.length) return undefined
    if (view.getUint32(at + 8, true) === NT_GNU_BUILD_ID && namesz === 4)
      return Buffer.from(notes.subarray(desc, desc + descsz)).toString('hex')
    at = desc + ((descsz + 3) & ~3)
  }
  return undefined
}

/**
 * [runtime address of .dynamic, its size] of the executable `file` loaded where the auxv says, when
 * the file is the one mapped (its build-id the snapshot's, where the snapshot recorded one).
 */
function dynamicOf(fd: number, entry: bigint, buildId: string | undefined): [bigint, number] | undefined {
  const head = readAt(fd, 64, 0)
  const view = new DataView(head.buffer)
  if (view.getUint32(0) !== 0x7f454c46 || head[4] !== 2) return undefined
  const phoff = Number(view.getBigUint64(32, true))
  const phnum = view.getUint16(56, true)
  const table = readAt(fd, 56 * phnum, phoff)
  const ph = new DataView(table.buffer)
  const bias = entry - view.getBigUint64(24, true)
  let dynamic: [bigint, number] | undefined
  let fileId: string | undefined
  for (let i = 0; i < phnum; i++) {
    const type = ph.getUint32(56 * i, true)
    const offset = Number(ph.getBigUint64(56 * i + 8, true))
    const filesz = Number(ph.getBigUint64(56 * i + 32, true))
    if (type === PT_NOTE && fileId === undefined && filesz <= 1 << 16) fileId = buildIdIn(readAt(fd, filesz, offset))
    if (type === PT_DYNAMIC)
      dynamic = [bias + ph.getBigUint64(56 * i + 16, true), Number(ph.getBigUint64(56 * i + 40, true))]
  }
  return buildId === undefined || fileId === buildId ? dynamic : undefined
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
  let fd: number
  try {
    fd = openSync(exePath, 'r')
  } catch {
    return undefined
  }
  try {
    const exeMap = data.maps.find((m) => m.path === data.exe)
    const dynamic = dynamicOf(fd, entry, exeMap?.buildId)
    if (!dynamic) return undefined
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
    closeSync(fd)
  }
}
