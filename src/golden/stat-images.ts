// A program that keeps what fstat() said of its terminal, pipe or socket (node keeps it for fds 0-2)
// holds values that belong to the machine and the moment, not to the program: the pty's number
// (st_ino, st_rdev), its device, its owner (/dev/null is root's, or nobody's in the user namespace of
// a run that is not root's) and when it was last written (the times). Where a struct stat image
// of one of the process's non-file descriptors lies in memory, those words are written by name.
import type { FdState } from '../snapshot/model.js'

/** Offsets in x86_64's struct stat (kernel and glibc alike, 144 bytes) of the words that vary. */
const ST_DEV = 0
const ST_INO = 8
const ST_MODE = 24
const ST_UID = 28
const ST_GID = 32
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

/** A field of a stat image, written by name: 8 bytes, or 4 for the owner's ids. */
export interface StatWord {
  readonly name: string
  readonly size: 4 | 8
}

/** Address of each varying field of a stat image of a descriptor in `bytes` (mapped at `start`) -> its name, 'fd1.st_ino'. */
export function statImageWords(start: bigint, bytes: Buffer, fds: readonly FdState[]): Map<bigint, StatWord> {
  const words = new Map<bigint, StatWord>()
  // By inode (/dev/null and a pty can both be inode 3, on two devices): one lookup per word.
  const byIno = new Map<bigint, FdState[]>()
  for (const f of fds) {
    if (!f.stat) continue
    const list = byIno.get(f.stat.ino) // appended in place: a copy per descriptor is quadratic in a loaded snapshot's fds
    if (list) list.push(f)
    else byIno.set(f.stat.ino, [f])
  }
  if (byIno.size === 0) return words
  const first = Number((8n - (start % 8n)) % 8n)
  for (let at = first; at + STAT_SIZE <= bytes.length; at += 8) {
    const candidates = byIno.get(bytes.readBigUInt64LE(at + ST_INO))
    if (!candidates) continue
    const f = candidates.find(
      ({ stat: s }) =>
        s !== undefined &&
        bytes.readBigUInt64LE(at + ST_DEV) === s.dev &&
        bytes.readBigUInt64LE(at + ST_RDEV) === s.rdev &&
        bytes.readUInt32LE(at + ST_MODE) === s.mode,
    )
    if (!f) continue
    const base = start + BigInt(at)
    const word = (offset: number, name: string, size: 4 | 8 = 8): void => {
      words.set(base + BigInt(offset), { name: `fd${f.fd}.${name}`, size })
    }
    word(ST_DEV, 'st_dev')
    word(ST_INO, 'st_ino')
    word(ST_UID, 'st_uid', 4)
    word(ST_GID, 'st_gid', 4)
    word(ST_RDEV, 'st_rdev')
    for (const [offset, name] of TIMES) word(offset, name)
  }
  return words
}
