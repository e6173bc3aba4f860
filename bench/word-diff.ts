// The native word-diff kernel (src/native/word-diff.ts) against memcmp over the same snapshot maps,
// and a diff of every page changed with the kernel against the same diff on the JS word scan.
import type { Snapshot } from '../src/index.js'
import { bytesAddress, useNativeWordDiff, wordDiff, type WordDiff } from '../src/native/word-diff.js'
import { pagediff } from './diff-pages.js'
import { RUNS, type Row } from './report.js'

const MIB = Number(process.env.BENCH_MIB ?? 256)
const PAGES = (MIB << 20) / 4096
/** Bytes a kernel call, as native-scan.ts hands them. */
const PIECE = 64 * 4096

interface KernelRun {
  /** µs a page: the kernel over a changed pair (a word found in every page). */
  kernel: number
  /** µs a page: memcmp (Buffer.equals) over an equal pair of the same size. */
  memcmp: number
  /** µs a page: a.diff(b).isEmpty, every page changed, with the kernel and with the JS scan. */
  native: number
  js: number
}

/** µs a page of `run`, after one untimed run (both sides warm: code, caches, THP) and a full collection. */
function perPage(run: () => unknown): number {
  run()
  ;(globalThis as { gc?: () => void }).gc?.()
  const t0 = performance.now()
  run()
  return ((performance.now() - t0) * 1000) / PAGES
}

/** The differing words of x against y, piece by piece, resumed past the cap: how many. */
function kernelOver(kernel: WordDiff, x: Uint8Array, y: Uint8Array): number {
  const [ax, ay] = [bytesAddress(x), bytesAddress(y)]
  let found = 0
  for (let piece = 0; piece < x.length; piece += PIECE) {
    const end = Math.min(piece + PIECE, x.length)
    for (let at = piece; ;) {
      const count = kernel.diff(ax + at, ay + at, (end - at) >> 3)
      found += count
      if (count < kernel.found.length) break
      at += 8 * ((kernel.found[count - 1] ?? 0) + 1)
    }
  }
  return found
}

async function kernelRun(kernel: WordDiff): Promise<KernelRun> {
  const [a, b] = (await pagediff(true)) as [Snapshot, Snapshot]
  const [again] = (await pagediff(false)) as [Snapshot]
  const big = (s: Snapshot): Uint8Array => {
    const content = s.maps.find((m) => m.content?.length === MIB << 20)?.content
    if (!content) throw new Error(`no ${MIB} MiB map in pagediff's snapshot`)
    return content
  }
  const [x, y, z] = [big(a), big(b), big(again)]
  let found = 0
  const scan = perPage(() => (found = kernelOver(kernel, x, y)))
  if (found < PAGES) throw new Error(`the kernel found ${found} words, expected ${PAGES}`)
  const memcmp = perPage(() => Buffer.from(x.buffer, x.byteOffset, x.length).equals(z))
  const native = perPage(() => a.diff(b).isEmpty)
  useNativeWordDiff(false)
  const js = perPage(() => a.diff(b).isEmpty)
  useNativeWordDiff(true)
  return { kernel: scan, memcmp, native, js }
}

export async function wordDiffRows(): Promise<Row[]> {
  const kernel = wordDiff()
  if (!kernel) return [] // not x86_64, or no executable memory: the JS scan is all there is
  const runs: KernelRun[] = []
  for (let r = 0; r < RUNS; r++) runs.push(await kernelRun(kernel))
  const pages = `${MIB} MiB map, ${PAGES.toLocaleString('en')} pages`
  return [
    {
      measure: `word-diff kernel (SSE2) over pagediff's map in two 'writable' snapshots, one byte changed in every page, µs a page (${pages}; baseline: memcmp, Buffer.equals, of two equal runs' maps)`,
      ours: runs.map((r) => r.kernel),
      baseline: runs.map((r) => r.memcmp),
      unit: 'µs',
      better: 'lower',
      target: 'memcmp-class',
    },
    {
      measure: `diff of those snapshots, only isEmpty read, µs a page, with the kernel (baseline: the JS word scan, PROCSNAP_KERNELS=0)`,
      ours: runs.map((r) => r.native),
      baseline: runs.map((r) => r.js),
      unit: 'µs',
      better: 'lower',
      target: 'faster',
    },
  ]
}
