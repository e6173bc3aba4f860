// Snapshot files by version: save() writes procsnap/2 (format-v2-write.ts), streamed to disk;
// loading reads procsnap/2 from the file in blocks, and procsnap/1 JSON (format.ts) as before.
import { readSync } from 'node:fs'
import { FileError, SnapshotFormatError } from '../errors.js'
import { withRegularFile } from '../files/read.js'
import { readPagesShared } from '../files/shared-pages.js'
import { memorySink, writeFileStreaming, type ByteSink } from '../files/write.js'
import { decodeSnapshotV1, readSnapshotDataV1 } from './format.js'
import { FORMAT_V2, MAGIC, isV2 } from './format-v2.js'
import { LoadError, decodeSnapshotV2, type ByteSource } from './format-v2-read.js'
import { writeSnapshotV2 } from './format-v2-write.js'
import type { SnapshotData } from './model.js'

/** The format snapshot.save() writes. */
export const SNAPSHOT_FORMAT = FORMAT_V2

/** The bytes save() writes, in one buffer (a snapshot of gigabytes is better saved to a file). */
export function encodeSnapshot(data: SnapshotData): Buffer {
  const sink = memorySink()
  writeSnapshotV2(data, sink)
  return sink.bytes()
}

/** Streams the snapshot to `out` as procsnap/2. */
export function writeSnapshot(data: SnapshotData, out: ByteSink): void {
  writeSnapshotV2(data, out)
}

/** Writes atomically: a temporary file in the same directory, written in large blocks, renamed over the target. */
export function saveSnapshotData(path: string, data: SnapshotData): void {
  writeFileStreaming(path, (out) => writeSnapshotV2(data, out))
}

/** Parses and validates a snapshot file's bytes, either version; never evaluates anything from them. */
export function decodeSnapshot(bytes: Uint8Array, source = 'buffer'): SnapshotData {
  if (!isV2(bytes)) return decodeSnapshotV1(bytes, source)
  const src: ByteSource = {
    size: bytes.length,
    read(into, at, length, position) {
      const n = Math.max(0, Math.min(length, bytes.length - position))
      into.set(bytes.subarray(position, position + n), at)
      return n
    },
  }
  return decodeSnapshotV2(src, source)
}

/** Reads a snapshot file of either version; a procsnap/2 file is read in blocks, never whole. */
export function readSnapshotData(path: string): SnapshotData {
  let data: SnapshotData | undefined
  try {
    data = withRegularFile(path, { what: 'snapshot file' }, (fd, size) => {
      const head = Buffer.alloc(MAGIC.length)
      if (readSync(fd, head, 0, head.length, 0) !== head.length || !isV2(head)) return undefined
      return decodeSnapshotV2(fileSource(fd, size), path)
    })
  } catch (error) {
    if (!(error instanceof FileError)) throw error
    throw new SnapshotFormatError('ERR_SNAPSHOT_CORRUPT', path, error.message)
  }
  // Missing, or not procsnap/2: the procsnap/1 reader says which.
  return data ?? readSnapshotDataV1(path)
}

/** The most one read(2) moves on Linux. */
const MAX_READ = 0x7ffff000

function fileSource(fd: number, size: number): ByteSource {
  return {
    size,
    read(into, at, length, position) {
      let done = 0
      try {
        while (done < length) {
          const n = readSync(fd, into, at + done, Math.min(length - done, MAX_READ), position + done)
          if (n <= 0) break
          done += n
        }
      } catch (error) {
        throw new LoadError(
          `reading at ${position + done} failed (${(error as NodeJS.ErrnoException).code ?? String(error)})`,
        )
      }
      return done
    },
    readPages: (into, position, crcs) => position + into.length <= size && readPagesShared(fd, into, position, crcs),
  }
}
