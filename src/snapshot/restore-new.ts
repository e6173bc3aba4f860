// restore(snapshot): a new process of the snapshot's program, launched as the snapshot's was (no
// ASLR, the same isolation) and rewound at its entry point to the snapshot's state, as Qiling's
// ql.restore does for an emulated run, here for a real one. The executable and every library the
// snapshot mapped must be the same files (build-ids checked); the process starts with one thread.
import { existsSync } from 'node:fs'
import { readElf } from '../elf/index.js'
import { RestoreError } from '../errors.js'
import { INNER_CWD } from '../process/isolate.js'
import { launch, type LaunchOptions } from '../process/launch.js'
import type { Process } from '../process/process.js'
import type { SnapshotData } from './model.js'
import { holdsMemory, restoreInto, restorable } from './restore.js'
import type { Snapshot } from './snapshot.js'

/** Launch options a restored process may choose; the rest follow the snapshot (aslr, isolate). */
export type RestoreOptions = Pick<
  LaunchOptions,
  | 'env'
  | 'inheritEnv'
  | 'cwd'
  | 'stdin'
  | 'stdout'
  | 'stderr'
  | 'outputLimit'
  | 'onOutput'
  | 'timeout'
  | 'pin'
  | 'emulateStepOver'
  | 'schedule'
  | 'clock'
  | 'fixedRandom'
  | 'crash'
> & {
  /** The executable, when it is no longer at the snapshot's path (moved, another machine); its build-id must be the snapshot's. */
  exe?: string
}

/**
 * A new process of the snapshot's program in the snapshot's state, stopped where the snapshot was
 * taken: memory, maps, heap, registers, regular files at their offsets. Needs a 'writable' or 'full'
 * snapshot of one thread, taken without ASLR, and the same executable and libraries (build-ids).
 */
export async function restore(snapshot: Snapshot, options: RestoreOptions = {}): Promise<Process> {
  const data = checkSnapshot(snapshot)
  const cwd = options.cwd ?? process.cwd()
  const onHost = (path: string): string =>
    data.ownPid !== undefined && (path === INNER_CWD || path.startsWith(`${INNER_CWD}/`))
      ? cwd + path.slice(INNER_CWD.length)
      : path
  const exe = options.exe ?? onHost(data.exe)
  checkFiles(data, exe, onHost)
  const launchOptions: LaunchOptions = { ...options }
  delete (launchOptions as RestoreOptions).exe
  const proc = await launch(exe, {
    ...launchOptions,
    args: data.argv.slice(1),
    argv0: data.argv[0] ?? exe,
    aslr: false,
    isolate: data.ownPid !== undefined,
  })
  try {
    restorable(proc, snapshot, 'new')
    await restoreInto(proc, data, 'new')
  } catch (error) {
    await proc.kill()
    throw error
  }
  return proc
}

function checkSnapshot(given: Snapshot): SnapshotData {
  const snapshot = holdsMemory(given, 'restore')
  if (snapshot.aslrEnabled)
    throw new RestoreError(
      'ERR_RESTORE_PROCESS',
      'The snapshot was taken with ASLR on: a new process cannot have its addresses. ' +
        'Launch with { aslr: false } (the default) to take snapshots that restore.',
    )
  if (snapshot.data.threads.length !== 1)
    throw new RestoreError(
      'ERR_RESTORE_THREADS',
      `The snapshot has ${snapshot.data.threads.length} threads; restore() starts a new process with one. ` +
        'Take the snapshot before the program starts threads, or rewind the live process with proc.restore().',
    )
  return snapshot.data
}

/** The executable and every file the snapshot mapped with a build-id must be there, with that build-id. */
function checkFiles(data: SnapshotData, exe: string, onHost: (path: string) => string): void {
  const checked = new Set<string>()
  for (const map of data.maps) {
    if (!map.buildId || !map.path.startsWith('/') || checked.has(map.path)) continue
    checked.add(map.path)
    const file = map.path === data.exe ? exe : onHost(map.path)
    if (!existsSync(file))
      throw new RestoreError(
        'ERR_RESTORE_FILE',
        `The snapshot maps ${map.path}, which is not there (${file}): restore needs the same files. ` +
          (map.path === data.exe ? 'Pass { exe } when the program moved.' : 'Install or build it again.'),
      )
    let buildId: string | undefined
    try {
      buildId = readElf(file).buildId
    } catch (error) {
      throw new RestoreError('ERR_RESTORE_FILE', `${file} cannot be read as ELF: ${String(error)}`, { cause: error })
    }
    if (buildId !== map.buildId)
      throw new RestoreError(
        'ERR_RESTORE_FILE',
        `${file} has build-id ${buildId ?? '(none)'}, but the snapshot's ${map.path} had ${map.buildId}: it was rebuilt ` +
          'or is another program. Restore needs the very same executable and libraries.',
      )
  }
}
