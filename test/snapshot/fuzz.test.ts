// The seeded fuzzer of snapshot files (test/snapshot/fuzz.ts) on real snapshots of real processes:
// 300 mutants, each ending in success or a ProcsnapError with a code, within a second, in bounded
// memory. `npm run stress` runs 3000 (stress/snapshots.ts).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, expect, it } from 'vitest'
import { encodeSnapshotV1 } from '../../src/snapshot/format.js'
import { encodeSnapshot } from '../../src/snapshot/format-file.js'
import { loadSnapshot, type SnapshotLevel } from '../../src/index.js'
import { fixture, start } from '../helpers.js'
import { fuzzReport, fuzzSnapshots, mutant, runCase, type FuzzOriginal } from './fuzz.js'

const dir = mkdtempSync(join(tmpdir(), 'procsnap-fuzz-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** Snapshots of counter at bump at each level (procsnap/2 and /1), and of threads (every thread) at worker_tick. */
async function originals(): Promise<FuzzOriginal[]> {
  const out: FuzzOriginal[] = []
  const counter = await start(fixture('counter'))
  counter.breakAt('bump')
  await counter.cont()
  for (const level of ['base', 'writable', 'full'] as SnapshotLevel[]) {
    const snapshot = counter.createSnapshot({ level, name: `counter ${level}` })
    out.push({ name: `counter ${level}`, bytes: encodeSnapshot(snapshot.data), snapshot })
    out.push({ name: `counter ${level} v1`, bytes: encodeSnapshotV1(snapshot.data), snapshot })
  }
  const threads = await start(fixture('threads'), { args: ['3', '2'] })
  threads.breakAt('worker_tick')
  await threads.cont()
  const snapshot = threads.createSnapshot({ level: 'writable' })
  out.push({ name: 'threads writable', bytes: encodeSnapshot(snapshot.data), snapshot })
  // loaded back, as a user compares a file against a file
  return out.map((o) => ({ ...o, snapshot: loadSnapshot(save(o)) }))
}

function save(o: FuzzOriginal): string {
  const path = join(dir, `${o.name.replace(/ /g, '-')}.json`)
  o.snapshot.save(path)
  return path
}

it('300 seeded mutants of real snapshot files: each a result or a ProcsnapError, under a second, memory bounded', async () => {
  const result = fuzzSnapshots(await originals(), 300, 11, dir)
  const report = fuzzReport(result)
  expect(result.failures, report).toEqual([])
  expect(result.maxMs, report).toBeLessThan(1000)
  expect(result.peakRss, report).toBeLessThan(1024 * 2 ** 20)
  expect(result.outcomes.get('ok') ?? 0, report).toBeGreaterThan(0)
  expect(result.outcomes.get('ERR_SNAPSHOT_CORRUPT') ?? 0, report).toBeGreaterThan(0)
}, 60_000)

it('a 16 GiB PROT_NONE reservation renamed [stack] (stress seed 11, case 1355): read a window past AT_PLATFORM, never the whole map', async () => {
  const proc = await start(fixture('noaccess'), { args: ['/etc/hostname'] })
  proc.breakAt('ready')
  await proc.cont()
  const snapshot = loadSnapshot(
    save({ name: 'noaccess full', bytes: Buffer.alloc(0), snapshot: proc.createSnapshot({ level: 'full' }) }),
  )
  await proc.kill()
  const m = mutant({ name: 'noaccess full v1', bytes: encodeSnapshotV1(snapshot.data), snapshot }, 11, 1355)
  expect(m.what).toBe('map path')
  const path = join(dir, 'case-1355.json')
  writeFileSync(path, m.bytes)
  expect(runCase(path, snapshot)).not.toMatch(/^untyped/) // was: RangeError: Invalid typed array length: 17179869184
}, 60_000)
