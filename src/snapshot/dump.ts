// proc.saveSnapshot(path): a snapshot written to a file straight from the stopped process, as gcore
// writes a core. Maps of 1 MiB or more are never copied into Node's memory: the writer reads them
// from the process a chunk at a time (live-content.ts), so a dump holds a few MiB whatever the size
// of the process, and loadSnapshot(path) gives what createSnapshot(options).save(path) would have.
import { Process } from '../process/process.js'
import { checkOptions, isString, oneOf, type OptionSchema } from '../options.js'
import { CaptureMemory, captureMap, Residency } from './capture-memory.js'
import { captureData, type SnapshotOptions } from './capture.js'
import { saveSnapshotData } from './format-file.js'
import { LiveReadError } from './live-content.js'
import type { SnapshotData } from './model.js'

/** What saveSnapshot's options accept: createSnapshot's, but a dump shares nothing with a later snapshot. */
export type SaveSnapshotOptions = Omit<SnapshotOptions, 'incremental'>

const SAVE_OPTIONS: OptionSchema = {
  level: oneOf('base', 'writable', 'full'),
  name: isString,
}

declare module '../process/process.js' {
  interface Process {
    /**
     * Writes a snapshot of the stopped process to `path` (procsnap/2, atomically) without holding its
     * memory: what `createSnapshot(options).save(path)` writes, at the memory cost of a few MiB.
     */
    saveSnapshot(path: string, options?: SaveSnapshotOptions): void
  }
}

Process.prototype.saveSnapshot = function saveSnapshot(
  this: Process,
  path: string,
  options: SaveSnapshotOptions = {},
): void {
  checkOptions('saveSnapshot', options, SAVE_OPTIONS)
  const { data } = captureData(this, 'process', this.threads, this.thread.index, options, true)
  // A live map that cannot be read whole (a file map past its file's end) is copied as a capture
  // copies it, and the file written again: at most once per map.
  let current = data
  for (;;) {
    try {
      saveSnapshotData(path, current)
      return
    } catch (error) {
      if (!(error instanceof LiveReadError)) throw error
      current = withCopied(this, current, error)
    }
  }
}

/** The data with the live map that failed replaced by a copy of what can be read of it. */
function withCopied(proc: Process, data: SnapshotData, failed: LiveReadError): SnapshotData {
  const i = data.maps.indexOf(failed.map)
  if (i < 0) throw failed
  const residency = new Residency(proc.pid)
  try {
    const copied = captureMap(proc, failed.map, data.level, failed.map.buildId, new CaptureMemory(residency, false))
    return { ...data, maps: data.maps.map((m, k) => (k === i ? copied : m)) }
  } finally {
    residency.close()
  }
}
