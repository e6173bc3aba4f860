// A seeded fuzzer of snapshot files (issue 11): real snapshots mutated as JSON (wrong types, huge
// or negative numbers, 2^33 sizes, NaN, deep nesting, long strings, duplicated and missing keys, bad
// hex and base64, zlib bombs, pages that do not match their hash, hostile map paths) and as bytes
// (truncation, flips), each loaded and used as a test would use it. procsnap/2 files (a binary header,
// JSON metadata, raw pages) are mutated in their header, as bytes, and in their metadata and pages
// resealed with valid checksums, so that the checks behind the checksums are reached. No Vitest
// here: the test and stress/snapshots.ts share it.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { deflateRawSync } from 'node:zlib'
import { loadSnapshot, ProcsnapError, type Snapshot } from '../../src/index.js'
import { HEADER_BYTES, isV2 } from '../../src/snapshot/format-v2.js'
import { exercise, measured } from './exercise.js'
import { sealV2, splitV2 } from './v2-file.js'

/** A snapshot to mutate: its file's bytes, and the snapshot they load to (what diffs compare against). */
export interface FuzzOriginal {
  readonly name: string
  readonly bytes: Buffer
  readonly snapshot: Snapshot
}

/** 'ok', a ProcsnapError's code, or 'untyped <name>: <message>' (a failure of the loader). */
export type FuzzOutcome = string

export interface FuzzResult {
  readonly cases: number
  readonly outcomes: ReadonlyMap<FuzzOutcome, number>
  /** What an untyped or slow case was, to reproduce it: seed, case number, mutation. */
  readonly failures: readonly string[]
  readonly maxMs: number
  readonly slowest: string
  /** Highest resident memory of the process during a case, in bytes. */
  readonly peakRss: number
}

/** mulberry32: small, fast and seedable; every case draws from its own stream. */
export function rng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

type Rand = () => number
type Json = null | boolean | number | string | Json[] | { [key: string]: Json }
type Holder = { [key: string]: Json } | Json[]

const int = (r: Rand, n: number): number => Math.floor(r() * n)
const pick = <T>(r: Rand, list: readonly T[]): T => list[int(r, list.length)] as T

/** A page of zeros deflated: 64 MiB from 64 KB, the bomb put in place of a page. */
let bomb: string | undefined
const zlibBomb = (): string => (bomb ??= deflateRawSync(Buffer.alloc(64 << 20), { level: 9 }).toString('base64'))

/** Every place in the document that holds a value: its holder and key (iteratively: a mutant may be deep). */
function places(root: Json): Array<[Holder, string | number]> {
  const out: Array<[Holder, string | number]> = []
  const todo: Json[] = [root]
  for (let v = todo.pop(); v !== undefined; v = todo.pop()) {
    if (v === null || typeof v !== 'object') continue
    const holder = v
    const keys: Array<string | number> = Array.isArray(holder) ? holder.map((_, i) => i) : Object.keys(holder)
    for (const k of keys) {
      out.push([holder, k])
      todo.push(get(holder, k))
    }
  }
  return out
}

const get = (h: Holder, k: string | number): Json => (Array.isArray(h) ? h[k as number] : h[k as string]) as Json
function set(h: Holder, k: string | number, v: Json): void {
  if (Array.isArray(h)) h[k as number] = v
  else h[k as string] = v
}

const WRONG: readonly Json[] = [null, true, 0, -1, 1.5, '', 'x', [], {}, [null], { a: 1 }]
const NUMBERS: readonly number[] = [2 ** 33, 2 ** 31, 2 ** 53, 2 ** 64, -1, -(2 ** 33), 1e308, 0, 4095, 4097]
const HEXES: readonly string[] = [
  '0x',
  '0xZZ',
  '-0x-1',
  '0X10',
  ' 0x1',
  '0x' + 'f'.repeat(300),
  '-0x10',
  '0x1' + '0'.repeat(40),
]
const PATHS: readonly string[] = [
  '/proc/self/pagemap',
  '/dev/zero',
  '/proc/self/mem',
  '/',
  '../../../etc/passwd',
  '',
  '[heap]',
  '[stack]',
]

/** One JSON-aware change to the parsed file; its name says which. */
function mutateJson(r: Rand, file: Obj): string {
  const all = places(file)
  const [h, k] = pick(r, all)
  const v = get(h, k)
  const kind = int(r, 19)
  switch (kind) {
    case 0:
      set(h, k, pick(r, WRONG))
      return `wrong type at ${String(k)}`
    case 1:
      set(h, k, pick(r, NUMBERS))
      return `number at ${String(k)}`
    case 2:
      if (!Array.isArray(h)) delete h[k as string]
      else h.splice(k as number, 1)
      return `missing ${String(k)}`
    case 3:
      set(h, k, typeof v === 'string' ? v.repeat(1 + int(r, 4)) + 'A'.repeat(int(r, 1 << 20)) : 'B'.repeat(1 << 16))
      return `long string at ${String(k)}`
    case 4:
      set(h, k, pick(r, HEXES))
      return `bad hex at ${String(k)}`
    default:
      return kind >= 16 ? mutateValid(r, all) : mutateTargeted(r, file, kind)
  }
}

/** A well-formed value in an odd place (what the loader accepts and every reader must cope with): hex values swapped and extremes. */
function mutateValid(r: Rand, all: Array<[Holder, string | number]>): string {
  const hexes = all.filter(([h, k]) => {
    const v = get(h, k)
    return typeof v === 'string' && /^0x[0-9a-f]{1,16}$/.test(v)
  })
  if (hexes.length === 0) return 'no hex value'
  const [h, k] = pick(r, hexes)
  const other = get(...pick(r, hexes)) as string
  const near = (d: bigint): string => `0x${(BigInt(other) + d).toString(16)}`
  set(h, k, pick(r, ['0x0', '0xffffffffffffffff', '0x7fffffffffff', other, near(1n), near(4095n)]))
  return `valid hex at ${String(k)}`
}

type Obj = { [key: string]: Json }
const isObject = (v: Json | undefined): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v)
const objects = (v: Json | undefined): Obj[] => (Array.isArray(v) ? v.filter(isObject) : [])

/** Changes aimed at what the loader and readers must check: sizes, pages, maps, threads (whatever earlier changes left). */
function mutateTargeted(r: Rand, file: Obj, kind: number): string {
  const snapshot = isObject(file.snapshot) ? file.snapshot : {}
  const maps = objects(snapshot.maps)
  const threads = objects(snapshot.threads)
  const pages = isObject(file.pages) ? file.pages : {}
  const hashes = Object.keys(pages)
  const map = maps.length ? pick(r, maps) : undefined
  const held = maps.filter((m) => isObject(m.content) || isObject(m.sparse))
  const target = held.length ? pick(r, held) : map
  const c = target?.content ?? target?.sparse
  const contents = isObject(c) ? c : undefined
  switch (kind) {
    case 5:
      if (contents) contents.size = pick(r, [2 ** 33, 2 ** 31, -4096, 0, 4096 * 1e6, 1.5, Number(contents.size) + 1])
      return 'declared size'
    case 6:
      if (map) {
        const start = BigInt(typeof map.start === 'string' && /^0x[0-9a-f]+$/.test(map.start) ? map.start : '0x0')
        const end = start + BigInt(pick(r, [2 ** 33, 2 ** 31, 0, 4096]))
        map.end = `0x${end.toString(16)}`
        if (isObject(map.content)) map.content.size = Number(end - start)
      }
      return 'map end'
    case 7:
      if (hashes.length)
        pages[pick(r, hashes)] = pick(r, ['!!!', '', 'AAAA', zlibBomb(), pages[pick(r, hashes)] ?? null])
      return 'page data (bad base64, bomb, another page)'
    case 8:
      if (hashes.length) {
        const from = pick(r, hashes)
        pages[from.replace(/^./, (x) => (x === '0' ? '1' : '0'))] = pages[from] ?? null
        delete pages[from]
      }
      return 'page renamed'
    case 9: {
      const list = contents && Array.isArray(contents.pages) ? contents.pages : []
      if (list.length) list[int(r, list.length)] = pick(r, [null, hashes[0] ?? 'x', 'f'.repeat(64), [1, 'x'], 7])
      return 'page list entry'
    }
    case 10:
      if (map) map.path = pick(r, PATHS)
      return 'map path'
    case 11:
      if (Array.isArray(snapshot.maps)) {
        snapshot.maps.push(...maps.slice(0, int(r, maps.length)).map((m) => ({ ...m })))
        if (r() < 0.3) snapshot.maps.reverse()
      }
      return 'maps duplicated or reordered'
    case 12: {
      const t = threads.length ? pick(r, threads) : undefined
      if (t) t[pick(r, ['index', 'tid'])] = pick(r, [0, -1, 2 ** 40, 99])
      if (r() < 0.5) snapshot.current = pick(r, [0, 99, -1])
      if (t && r() < 0.5)
        t.regs = JSON.parse(`{"__proto__":"0x1","constructor":"0x2","rip":"0x${'f'.repeat(128)}"}`) as Json
      return 'threads, current, registers'
    }
    case 13:
      if (map) map.buildId = pick(r, ['', 'zz', 'ab'.repeat(20), 'a'.repeat(1 << 16)])
      return 'build-id'
    case 14: {
      const frames = threads[0] && Array.isArray(threads[0].backtrace) ? threads[0].backtrace : []
      for (let i = 0; i < 1000; i++) frames.push({ pc: '0x1', offset: '0x0', location: 'x', via: 'fp' })
      return 'long backtrace'
    }
    default:
      snapshot.extra = nested(int(r, 2) ? 10_000 : 100)
      return 'deep nesting'
  }
}

/** A placeholder that mutant() writes out as `depth` nested arrays (JSON.stringify would recurse). */
const nested = (depth: number): Json => `__deep_${depth}__`
const DEEP = /"__deep_(\d+)__"/g

/** Changes to the text or bytes: truncation, flipped bytes, NaN, duplicated keys, deep nesting. */
function mutateBytes(r: Rand, bytes: Buffer): { bytes: Buffer; what: string } {
  const text = bytes.toString('latin1')
  const at = int(r, bytes.length)
  switch (int(r, 6)) {
    case 0:
      return { bytes: bytes.subarray(0, at), what: `truncated at ${at}` }
    case 1: {
      const out = Buffer.from(bytes)
      const n = 1 + int(r, 16)
      for (let i = 0; i < n; i++) {
        const at = int(r, out.length)
        out[at] = (out[at] ?? 0) ^ (1 << int(r, 8))
      }
      return { bytes: out, what: `${n} bits flipped` }
    }
    case 2:
      return {
        bytes: Buffer.from(
          text.replace(/:(\d+)/, (_, d: string) => `:${pick(r, ['NaN', '1e999', '-0', d + '.5'])}`),
          'latin1',
        ),
        what: 'NaN',
      }
    case 3: {
      const key = pick(r, [
        '"kind":"thread",',
        '"size":8589934592,',
        '"format":"procsnap/1",',
        '"level":"full",',
        '"arch":"aarch64",',
      ])
      const i = text.indexOf('{', at)
      return {
        bytes: Buffer.from(i < 0 ? text : text.slice(0, i + 1) + key + text.slice(i + 1), 'latin1'),
        what: `duplicated key ${key}`,
      }
    }
    case 4: {
      const depth = pick(r, [1000, 100_000, 2_000_000])
      return {
        bytes: Buffer.from(text.slice(0, at) + '['.repeat(depth) + text.slice(at), 'latin1'),
        what: `${depth} brackets`,
      }
    }
    default:
      return {
        bytes: Buffer.concat([
          bytes.subarray(0, at),
          Buffer.from(Array.from({ length: 64 }, () => int(r, 256))),
          bytes.subarray(at),
        ]),
        what: 'random bytes inserted',
      }
  }
}

/** A procsnap/2 header field set to an odd value; the rest of the file as it was. */
function mutateHeader(r: Rand, bytes: Buffer): { bytes: Buffer; what: string } {
  const out = Buffer.from(bytes)
  const [name, at, wide] = pick(r, [
    ['version', 8, false],
    ['flags', 12, false],
    ['metadata length', 16, true],
    ['page count', 24, true],
    ['metadata crc', 32, false],
    ['pages crc', 36, false],
  ] as const)
  if (wide) {
    const old = out.readBigUInt64LE(at)
    out.writeBigUInt64LE(
      BigInt.asUintN(64, pick(r, [old + 1n, old - 1n, 0n, 1n << 40n, (1n << 64n) - 1n, 1n << 53n])),
      at,
    )
  } else out.writeUInt32LE(pick(r, [0, 1, 3, 0xffffffff, int(r, 2 ** 32)]), at)
  return { bytes: out, what: `header ${name}` }
}

/** Changes to a procsnap/2 map's runs and untouched list (whatever earlier changes left). */
function mutateRuns(r: Rand, file: Obj): string {
  const snapshot = isObject(file.snapshot) ? file.snapshot : {}
  const held = objects(snapshot.maps).filter((m) => isObject(m.content) || isObject(m.sparse))
  if (!held.length) return 'no runs'
  const map = pick(r, held)
  const c = (isObject(map.content) ? map.content : map.sparse) as Obj
  const runs = Array.isArray(c.runs) ? c.runs : []
  const run = runs.length ? pick(r, runs) : undefined
  switch (int(r, 6)) {
    case 0:
      if (Array.isArray(run)) run[int(r, run.length)] = pick(r, [...NUMBERS, 1, 0])
      return 'run number'
    case 1:
      if (run) runs.splice(int(r, runs.length + 1), 0, run)
      return 'run duplicated'
    case 2:
      runs.splice(int(r, runs.length), 1)
      return 'run removed'
    case 3:
      runs.push(
        pick(r, [
          [0, 2 ** 40, 0, 0],
          [0, 1, 0, 1],
          [2 ** 52, 1, 0],
          [0, 2 ** 20, 0],
        ]),
      )
      return 'huge run'
    case 4:
      map.untouched = pick(r, [
        [[0, 2 ** 52]],
        [[4096, 0]],
        [
          [0, 4096],
          [0, 4096],
        ],
        [[1, 2]],
        'x',
        [[0, 8192]],
      ])
      return 'untouched'
    default:
      runs.reverse()
      return 'runs reversed'
  }
}

/** A procsnap/2 mutant: its header, its bytes, or its metadata and pages changed and resealed. */
function mutantV2(r: Rand, bytes: Buffer): { bytes: Buffer; what: string } {
  const roll = r()
  if (roll < 0.15) return mutateBytes(r, bytes)
  if (roll < 0.3) return mutateHeader(r, bytes)
  const { meta, data } = splitV2(bytes)
  const file = JSON.parse(meta) as Obj
  const what: string[] = []
  const n = 1 + int(r, 3)
  for (let j = 0; j < n; j++) what.push(r() < 0.5 ? mutateRuns(r, file) : mutateJson(r, file))
  let pages = data
  if (r() < 0.2) {
    const k = int(r, 3)
    pages =
      k === 0
        ? data.subarray(0, Math.max(0, data.length - 4096))
        : k === 1
          ? Buffer.concat([data, Buffer.alloc(4096, 7)])
          : Buffer.from(data).fill(0xee, 0, Math.min(data.length, 64))
    what.push(['a page less', 'a page more', 'a page changed'][k] as string)
  }
  const text = JSON.stringify(file).replace(DEEP, (_, d: string) => '['.repeat(Number(d)) + ']'.repeat(Number(d)))
  return { bytes: sealV2(text, pages), what: `procsnap/2 ${what.join('; ')}` }
}

/** The mutated file of case `i`: one to three JSON changes, or one byte-level change. */
export function mutant(original: FuzzOriginal, seed: number, i: number): { bytes: Buffer; what: string } {
  const r = rng(seed * 1_000_003 + i)
  if (original.bytes.length > HEADER_BYTES && isV2(original.bytes)) return mutantV2(r, original.bytes)
  if (r() < 0.25) return mutateBytes(r, original.bytes)
  const file = JSON.parse(original.bytes.toString()) as Obj
  const what: string[] = []
  const n = 1 + int(r, 3)
  for (let j = 0; j < n; j++) what.push(mutateJson(r, file))
  const text = JSON.stringify(file).replace(DEEP, (_, d: string) => '['.repeat(Number(d)) + ']'.repeat(Number(d)))
  return { bytes: Buffer.from(text), what: what.join('; ') }
}

/** Loads one file and uses it every way a test may; 'ok' or the error's code, never a throw. */
export function runCase(path: string, original: Snapshot): FuzzOutcome {
  try {
    exercise(loadSnapshot(path), original)
    return 'ok'
  } catch (error) {
    if (error instanceof ProcsnapError) return error.code
    const e = error instanceof Error ? error : new Error(String(error))
    return `untyped ${e.name}: ${e.message.slice(0, 160)}`
  }
}

/** Runs `cases` mutants, spread over the originals, and tallies them. */
export function fuzzSnapshots(
  originals: readonly FuzzOriginal[],
  cases: number,
  seed: number,
  dir: string,
): FuzzResult {
  const outcomes = new Map<FuzzOutcome, number>()
  const failures: string[] = []
  let maxMs = 0
  let slowest = ''
  let peakRss = 0
  for (let i = 0; i < cases; i++) {
    const original = originals[i % originals.length] as FuzzOriginal
    const { bytes, what } = mutant(original, seed, i)
    const path = join(dir, 'case.json')
    writeFileSync(path, bytes)
    const { value: outcome, ms, peak } = measured(() => runCase(path, original.snapshot))
    const label = `seed ${seed} case ${i} (${original.name}: ${what})`
    outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1)
    if (outcome.startsWith('untyped') || ms > 1000) failures.push(`${label}: ${outcome}, ${ms.toFixed(0)} ms`)
    if (ms > maxMs) [maxMs, slowest] = [ms, `${label}: ${outcome}`]
    peakRss = Math.max(peakRss, peak)
  }
  return { cases, outcomes, failures, maxMs, slowest, peakRss }
}

/** The result as markdown: cases, outcomes by code, the slowest case, peak RSS, and any failure. */
export function fuzzReport(result: FuzzResult): string {
  const rows = [...result.outcomes].sort((a, b) => b[1] - a[1]).map(([o, n]) => `| ${o} | ${n} |`)
  return [
    `## Snapshot files: ${result.cases} fuzzed cases`,
    '',
    '| outcome | cases |',
    '|---|---|',
    ...rows,
    '',
    `- Slowest case: ${result.maxMs.toFixed(0)} ms (${result.slowest})`,
    `- Peak RSS during a case: ${(result.peakRss / 2 ** 20).toFixed(0)} MiB`,
    `- Failures (untyped error or over 1 s): ${result.failures.length}`,
    ...result.failures.map((f) => `  - ${f}`),
    '',
  ].join('\n')
}
