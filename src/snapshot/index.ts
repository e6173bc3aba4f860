// The snapshot layer's public surface. Importing it adds createSnapshot() to Process and its threads.
import './capture.js'
import './dump.js'
import './restore.js'
export type { RestoreReport, FdRestore } from './restore.js'
export { restore, type RestoreOptions } from './restore-new.js'
export type { SaveSnapshotOptions } from './dump.js'
export type { SnapshotOptions } from './capture.js'
export {
  ProcessSnapshot,
  ThreadSnapshot,
  SnapshotDiff,
  loadSnapshot,
  type Snapshot,
  type SnapshotThread,
  type PrintOptions,
} from './snapshot.js'
export { loadCore, type LoadCoreOptions } from './load-core.js'
export { SnapshotMemory, type SnapshotLocation } from './memory-view.js'
export { SNAPSHOT_FORMAT, encodeSnapshot, decodeSnapshot } from './format-file.js'
export type { SnapshotRegisters } from './registers.js'
export type {
  SnapshotLevel,
  SnapshotKind,
  SnapshotArch,
  SnapshotStop,
  Frame,
  MapState,
  SparseContent,
  PageRun,
  FdState,
  AuxvEntry,
  CpuInfo,
  RegisterValues,
  RegisterChange,
  MapChange,
  MemoryChange,
  ThreadChange,
  BacktraceChange,
  MapIdentity,
  SnapshotData,
  SnapshotDiffData,
  ThreadState,
  TracerAnswersState,
} from './model.js'
