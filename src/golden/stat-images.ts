// A program that keeps what fstat() said of its terminal, pipe or socket (node keeps it for fds 0-2)
// holds values that belong to the machine and the moment, not to the program: the pty's number
// (st_ino, st_rdev), its device, and when it was last written (the times). Where a struct stat image
// of one of the process's non-file descriptors lies in memory, those words are written by name.
import type { FdState } from '../snapshot/model.js'

/** Offsets in x86_64's struct stat (kernel and glibc alike, 144 bytes) of the words that vary. */
const ST_DEV = 0
const ST_INO = 8
const ST_MODE = 24
const ST_RDEV = 40
const TIMES: readonly [number, string][] = [
  [72, 'st_atime'],
  [80, 'st_atime.ns'],
  [88, 'st_mtime'],
  [96, 'st_mtime.ns'],
  [104, 'st_ctime'],
  [112, 'st_ctime.ns'],
]
const STAT_SIZE = 144

/** Address of each varying word of a stat image of a descriptor in `bytes` (mapped at `start`) -> its name, '<fd1.st_ino>'. */
export function statImageWords(start: bigint, bytes: Buffer, fds: readonly FdState[]): Map<bigint, string> {
  const words = new Map<bigint, string>()
  const known = fds.filter((f) => f.stat !== undefined)
  if (known.length === 0) return words
  const first = Number((8n - (start % 8n)) % 8n)
  for (let at = first; at + STAT_SIZE <= bytes.length; at += 8) {
    const ino = bytes.readBigUInt64LE(at + ST_INO)
    for (const f of known) {
      const s = f.stat
      if (!s || ino !== s.ino) continue
      if (bytes.readBigUInt64LE(at + ST_DEV) !== s.dev || bytes.readBigUInt64LE(at + ST_RDEV) !== s.rdev) continue
      if (bytes.readUInt32LE(at + ST_MODE) !== s.mode) continue
      const base = start + BigInt(at)
      words.set(base + BigInt(ST_DEV), `fd${f.fd}.st_dev`)
      words.set(base + BigInt(ST_INO), `fd${f.fd}.st_ino`)
      words.set(base + BigInt(ST_RDEV), `fd${f.fd}.st_rdev`)
      for (const [offset, name] of TIMES) words.set(base + BigInt(offset), `fd${f.fd}.${name}`)
      break
    }
  }
  return words
}
