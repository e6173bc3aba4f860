// Page work on large buffers shared with one helper thread (the machine's other core): the crc32 of
// each 4096-byte page, and reading a file's pages into memory with their crc32s. The bytes must be
// in a SharedArrayBuffer (capture and load allocate large buffers so: `allocateShared`); anything
// else, or anything small, is done by the calling thread alone. The call stays synchronous: both
// threads take 2 MiB chunks from a shared list, the helper joins when it is ready (it starts once, in
// ~30 ms, while the caller already works), and a chunk the helper took but did not finish in time is
// done again by the caller, so that a dead helper costs time, never a result. The caller returns only
// when every chunk is done (the file descriptor stays open meanwhile); a job given up after a stall
// is marked so, and the helper starts no read for it after that; each job has crc32s of its own.
// The caller computes crc32s with the CRC kernel (native/crc32-pages.ts) where it runs; the helper
// uses zlib's (loading koffi in a worker that may be terminated mid-load can abort the process).
import { readSync } from 'node:fs'
import { Worker } from 'node:worker_threads'
import { crc32 } from 'node:zlib'
import { crc32Pages, hasCrcKernel } from '../native/crc32-pages.js'

const PAGE = 4096
/** Bytes one thread takes at a time. */
const CHUNK_BYTES = 2 << 20
/** Below this the helper is not worth a message. */
export const SHARED_MIN_BYTES = 8 << 20
/** How long the caller waits without progress for chunks the helper took before doing them itself (it died). */
const STALL_MS = 30_000
/** Chunk states in a job's Int32Array; then a count of finished chunks, then 1 once the caller gave up waiting. */
const FREE = 0
const TAKEN = 1
const DONE = 2
const FAILED = 3

/** One piece of work, as posted to the helper: every buffer in it is shared. */
interface Job {
  readonly state: SharedArrayBuffer
  readonly bytes: SharedArrayBuffer
  readonly byteOffset: number
  readonly length: number
  /** Where each page's crc32 goes (u32 per page, from `crcOffset`), or none. */
  readonly crcs: SharedArrayBuffer | undefined
  readonly crcOffset: number
  /** Read [position, position + length) of `fd` into the bytes first; -1: the bytes are there. */
  readonly fd: number
  readonly position: number
}

/** Writes the crc32 of each 4096-byte page of `bytes` into `out` from its start. */
type CrcPages = (bytes: Uint8Array, out: Uint32Array) => void
export type ReadSync = (fd: number, into: Uint8Array, at: number, length: number, position: number) => number

/**
 * One chunk of a job; true when done, false when the file ended early or a read failed. Runs in both
 * threads: the helper gets its source text, so it refers to nothing but its arguments.
 */
function doChunk(
  job: Job,
  index: number,
  chunkBytes: number,
  crcInto: CrcPages,
  read: ReadSync,
  inHelper: boolean,
): boolean {
  const from = index * chunkBytes
  const to = Math.min(job.length, from + chunkBytes)
  const bytes = new Uint8Array(job.bytes, job.byteOffset + from, to - from)
  const state = new Int32Array(job.state)
  if (job.fd >= 0)
    for (let done = 0; done < bytes.length;) {
      if (inHelper && Atomics.load(state, state.length - 1) !== 0) return false // given up: the descriptor may be closed
      const n = read(job.fd, bytes, done, bytes.length - done, job.position + from + done)
      if (n <= 0) return false
      done += n
    }
  if (job.crcs) {
    crcInto(bytes, new Uint32Array(job.crcs, job.crcOffset + (from / 4096) * 4, bytes.length / 4096))
  }
  return true
}

const HELPER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads')
const helperChunks = new Int32Array(workerData)
const { crc32 } = require('node:zlib')
const crcInto = (bytes, out) => { for (let p = 0; p < out.length; p++) out[p] = crc32(bytes.subarray(p * 4096, p * 4096 + 4096)) }
const { readSync } = require('node:fs')
const doChunk = ${doChunk.toString()}
parentPort.on('message', (job) => {
  const state = new Int32Array(job.state)
  const chunks = state.length - 2
  for (let i = 0; i < chunks; i++) {
    if (Atomics.compareExchange(state, i, ${FREE}, ${TAKEN}) !== ${FREE}) continue
    let ok = false
    try { ok = doChunk(job, i, ${CHUNK_BYTES}, crcInto, readSync, true) } catch { ok = false }
    Atomics.store(state, i, ok ? ${DONE} : ${FAILED})
    if (ok) Atomics.add(helperChunks, 0, 1)
    Atomics.add(state, chunks, 1)
    Atomics.notify(state, chunks)
  }
})`

/** The helper: started at first use, never keeps the process alive; undefined once it failed or is turned off. */
let helper: Worker | undefined
let helperOff = process.env.PROCSNAP_IO_THREAD === '0'
/** Tests: the caller lets the helper finish a chunk before it takes any, so that the helper's code surely runs. */
let helperFirst = false
/** Chunks the helper has done, ever: for tests and benchmarks. */
const helperChunks = new Int32Array(new SharedArrayBuffer(4))

function theHelper(): Worker | undefined {
  if (helperOff) return undefined
  if (!helper) {
    try {
      const worker = new Worker(HELPER_SOURCE, { eval: true, workerData: helperChunks.buffer })
      worker.unref()
      const gone = (): void => {
        if (helper !== worker) return // one stopped on purpose
        helper = undefined
        helperOff = true
      }
      worker.on('error', gone)
      worker.on('exit', gone)
      helper = worker
    } catch {
      helperOff = true
    }
  }
  return helper
}

/** A zeroed buffer the helper thread can work on (a SharedArrayBuffer's), for large sizes; an ordinary one otherwise. */
export function allocateShared(size: number): Uint8Array {
  return size >= SHARED_MIN_BYTES ? new Uint8Array(new SharedArrayBuffer(size)) : new Uint8Array(size)
}

function isShared(bytes: ArrayBufferView): boolean {
  return bytes.buffer instanceof SharedArrayBuffer
}

/** A job posted to the helper, which the caller joins later (`finishShared`). */
interface Started {
  readonly job: Job
  readonly chunks: number
  readonly state: Int32Array
}

/** Posts a job to the helper, which starts on it at once; the caller joins with finishShared. */
function startShared(job: Job): Started {
  const chunks = Math.ceil(job.length / CHUNK_BYTES)
  const state = new Int32Array(job.state)
  const helping = theHelper()
  helping?.postMessage(job)
  if (helping && helperFirst) Atomics.wait(state, chunks, 0, STALL_MS)
  return { job, chunks, state }
}

/**
 * Takes the chunks left, waits for those the helper took; true when every chunk was done. A chunk
 * the helper failed or left unfinished past STALL_MS is done here again (the work is idempotent).
 */
function finishShared({ job, chunks, state }: Started, callerRead: ReadSync = readSync): boolean {
  const run = (i: number): void => {
    let ok = false
    try {
      ok = doChunk(job, i, CHUNK_BYTES, crcPagesInto, callerRead, false)
    } catch {
      // a read that failed: the caller reads alone and reports it
    }
    Atomics.store(state, i, ok ? DONE : FAILED)
    Atomics.add(state, chunks, 1)
  }
  for (let i = 0; i < chunks; i++) if (Atomics.compareExchange(state, i, FREE, TAKEN) === FREE) run(i)
  let finished = Atomics.load(state, chunks)
  let since = performance.now()
  while (finished < chunks) {
    Atomics.wait(state, chunks, finished, STALL_MS)
    const now = Atomics.load(state, chunks)
    if (now !== finished) {
      finished = now
      since = performance.now()
    } else if (performance.now() - since >= STALL_MS) {
      Atomics.store(state, chunks + 1, 1)
      break
    }
  }
  let ok = true
  for (let i = 0; i < chunks; i++) {
    const s = Atomics.load(state, i)
    if (s === DONE) continue
    if (s === TAKEN || s === FAILED) run(i) // the helper stalled, died or failed: once more here
    if (Atomics.load(state, i) !== DONE) ok = false
  }
  return ok
}

function job(bytes: Uint8Array, crcs: Uint32Array | undefined, fd: number, position: number): Job {
  return {
    state: new SharedArrayBuffer((Math.ceil(bytes.length / CHUNK_BYTES) + 2) * 4),
    bytes: bytes.buffer as SharedArrayBuffer,
    byteOffset: bytes.byteOffset,
    length: bytes.length,
    crcs: crcs?.buffer as SharedArrayBuffer | undefined,
    crcOffset: crcs?.byteOffset ?? 0,
    fd,
    position,
  }
}

/** Whether crcs of `bytes` can be shared out: large, whole pages, both buffers shared. */
function sharable(bytes: Uint8Array, crcs: Uint32Array | undefined): boolean {
  return (
    bytes.length >= SHARED_MIN_BYTES &&
    bytes.length % PAGE === 0 &&
    isShared(bytes) &&
    (!crcs || isShared(crcs)) &&
    !helperOff
  )
}

/** The crc32 of each 4096-byte page of `bytes` (a multiple of 4096 long). */
export function crcPages(bytes: Uint8Array): Uint32Array {
  return startCrcPages(bytes)?.finish() ?? crcPagesHere(bytes)
}

/**
 * crc32s of a large shared buffer's pages, begun by the helper now, while the caller does something
 * else with the bytes (writes them); `finish` joins in and returns them. Undefined when the buffer
 * is not one to share (small, not shared, not whole pages, no helper), or when this thread has the
 * CRC kernel (five times zlib: faster alone than sharing): crcPages does it then.
 */
export function startCrcPages(bytes: Uint8Array): { finish(): Uint32Array } | undefined {
  const pages = bytes.length / PAGE
  if (hasCrcKernel() || !sharable(bytes, undefined)) return undefined
  const crcs = new Uint32Array(new SharedArrayBuffer(pages * 4))
  const started = startShared(job(bytes, crcs, -1, 0))
  return { finish: () => (finishShared(started) ? crcs : crcPagesHere(bytes)) }
}

function crcPagesHere(bytes: Uint8Array): Uint32Array {
  const pages = bytes.length / PAGE
  if (!Number.isInteger(pages)) throw new RangeError(`crcPages: ${bytes.length} bytes are not whole pages`)
  const crcs = new Uint32Array(pages)
  crcPagesInto(bytes, crcs)
  return crcs
}

/** The crc32 of each page of `bytes` into `out`: by the kernel (native/crc32-pages.ts) where it runs, else zlib's per page. */
function crcPagesInto(bytes: Uint8Array, out: Uint32Array): void {
  if (crc32Pages(bytes, out)) return
  for (let p = 0; p < out.length; p++) out[p] = crc32(bytes.subarray(p * PAGE, p * PAGE + PAGE))
}

/**
 * Reads [position, position + into.length) of `fd` into `into` and, with `crcs`, each page's crc32
 * into crcs[0..], sharing the work when it is large; false when that did not complete (the file
 * ended early, a read failed): the caller then reads it alone, to learn how. The helper reads with
 * pread(2); the caller with `callerRead` if given (the same bytes by another way: process_vm_readv).
 */
export function readPagesShared(
  fd: number,
  into: Uint8Array,
  position: number,
  crcs: Uint32Array | undefined,
  callerRead?: ReadSync,
): boolean {
  if (!sharable(into, crcs) || position + into.length > Number.MAX_SAFE_INTEGER) return false
  return finishShared(startShared(job(into, crcs?.subarray(0, into.length / PAGE), fd, position)), callerRead)
}

/**
 * readPagesShared begun now and joined later: the helper reads (and crcs) while the caller does
 * something else, then `finish(callerRead)` takes the chunks left and returns what readPagesShared
 * would. Undefined when the buffers are not ones to share: the caller reads alone.
 */
export function startReadPages(
  fd: number,
  into: Uint8Array,
  position: number,
  crcs: Uint32Array | undefined,
): { finish(callerRead?: ReadSync): boolean } | undefined {
  if (!sharable(into, crcs) || position + into.length > Number.MAX_SAFE_INTEGER) return undefined
  const started = startShared(job(into, crcs?.subarray(0, into.length / PAGE), fd, position))
  return { finish: (callerRead) => finishShared(started, callerRead) }
}

/** For tests and benchmarks: the helper thread on, off (which stops it), or on and first to work. */
export async function setSharedPages(mode: 'on' | 'off' | 'helper-first'): Promise<void> {
  helperOff = mode === 'off'
  helperFirst = mode === 'helper-first'
  const on = !helperOff
  const running = helper
  helper = undefined
  if (!on && running) await running.terminate()
  else helper = running
}

/** How many chunks the helper thread has done since the process started. */
export function sharedPagesHelped(): number {
  return Atomics.load(helperChunks, 0)
}
