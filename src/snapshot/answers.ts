// What procsnap answered for the program when a snapshot was taken (fixedRandom's stream position,
// the virtual clock's time), kept beside the snapshot's data while it lives, for proc.restore: the
// program's next getrandom or clock read after a restore must see what it saw the first time.
import type { Process, TracerAnswers } from '../process/process.js'
import type { SnapshotData } from './model.js'

const answersOf = new WeakMap<SnapshotData, TracerAnswers>()

export function rememberAnswers(data: SnapshotData, proc: Process): void {
  answersOf.set(data, proc.answers)
}

/** The answers' state at the capture of `data`; undefined for a loaded snapshot. */
export function answersAt(data: SnapshotData): TracerAnswers | undefined {
  return answersOf.get(data)
}
