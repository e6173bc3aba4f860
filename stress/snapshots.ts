// npm run stress: the fuzzer of snapshot files (test/snapshot/fuzz.ts) at 3000 seeded cases, on
// snapshots of counter at every level and of threads and noaccess (sparse maps) at 'full', each as
// procsnap/2 (what save() writes) and as procsnap/1 (still loaded).
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { launch, loadSnapshot, type Process, type SnapshotLevel } from '../src/index.js'
import { encodeSnapshotV1 } from '../src/snapshot/format.js'
import { encodeSnapshot } from '../src/snapshot/format-file.js'
import { fuzzReport, fuzzSnapshots, type FuzzOriginal } from '../test/snapshot/fuzz.js'
import { FIXTURES } from './procs.js'

const CASES = 3000
/** Another seed: PROCSNAP_FUZZ_SEED=12 npm run stress. */
const SEED = Number(process.env.PROCSNAP_FUZZ_SEED ?? 11)
const bin = (name: string): string => `${FIXTURES}${name}`

/** Stops `name` at `symbol`, snapshots it at each level, and saves and loads each back. */
async function snapshotsOf(
  name: string,
  symbol: string,
  levels: readonly SnapshotLevel[],
  dir: string,
  args: string[] = [],
): Promise<FuzzOriginal[]> {
  const proc: Process = await launch(bin(name), { args })
  try {
    proc.breakAt(symbol)
    await proc.cont()
    return levels.flatMap((level) => {
      const path = join(dir, `${name}-${level}.json`)
      proc.createSnapshot({ level }).save(path)
      const snapshot = loadSnapshot(path)
      return [
        { name: `${name} ${level}`, bytes: encodeSnapshot(snapshot.data), snapshot },
        { name: `${name} ${level} v1`, bytes: encodeSnapshotV1(snapshot.data), snapshot },
      ]
    })
  } finally {
    await proc.kill()
  }
}

export async function run(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'procsnap-stress-snapshots-'))
  try {
    const originals = [
      ...(await snapshotsOf('counter', 'bump', ['base', 'writable', 'full'], dir)),
      ...(await snapshotsOf('threads', 'worker_tick', ['writable', 'full'], dir, ['3', '2'])),
      ...(await snapshotsOf('noaccess', 'ready', ['full'], dir, [join(dir, 'counter-base.json')])),
    ]
    const started = performance.now()
    const result = fuzzSnapshots(originals, CASES, SEED, dir)
    const seconds = ((performance.now() - started) / 1000).toFixed(0)
    return `${fuzzReport(result)}\nOriginals: ${originals.map((o) => o.name).join(', ')}; seed ${SEED}; ${seconds} s in all.\n`
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
