// What a test does with a snapshot that may be hostile: every reader of it (symbolize, pprint, diff,
// backtrace, memory, the golden view), and the time and peak memory that took.
import { readFileSync, writeFileSync } from 'node:fs'
import { goldenSections, renderGolden } from '../../src/golden/render.js'
import type { Snapshot } from '../../src/index.js'

/** Resident memory of this process, in bytes, from /proc/self/status (VmRSS now, VmHWM the peak since the last reset). */
function statusBytes(field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync('/proc/self/status', 'utf8'))
  return Number(m?.[1] ?? 0) * 1024
}

/** Runs `fn` and says how long it took and how far resident memory rose above where it started (the kernel's high-water mark). */
export function measured<T>(fn: () => T): { value: T; ms: number; peakGrowth: number; peak: number } {
  writeFileSync('/proc/self/clear_refs', '5') // resets VmHWM to the current RSS
  const before = statusBytes('VmRSS')
  const t0 = performance.now()
  const value = fn()
  const ms = performance.now() - t0
  const peak = statusBytes('VmHWM')
  return { value, ms, peakGrowth: peak - before, peak }
}

const sink = { write: (): boolean => true, isTTY: false }

/** Everything a user may do with a loaded snapshot, against the snapshot it was made from. */
export function exercise(snap: Snapshot, original: Snapshot): void {
  for (const m of snap.maps.slice(0, 64)) snap.symbolize(m.start)
  for (const t of snap.threads) {
    snap.backtrace(t.index)
    snap.pprintRegisters({ stream: sink, thread: t.index })
    snap.pprintBacktrace({ stream: sink, thread: t.index })
  }
  snap.pprintMaps({ stream: sink })
  original.diff(snap).toString()
  snap.diff(original).toString()
  snap.memory.find('procsnap')
  const golden = goldenSections(snap.data, snap.modules(), { root: process.cwd() })
  renderGolden({ key: 'hostile 1', test: 'test/snapshot/hostile.test.ts' }, golden)
}
