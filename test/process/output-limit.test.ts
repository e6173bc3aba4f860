// Captured output is bounded: each stream keeps its newest outputLimit bytes, cut on a whole UTF-8
// character, proc.outputDropped counts what went before, messages that quote output say so, and
// onOutput sees every byte. 600 MB of stdout once made proc.stdout throw an untyped string-length error.
import { createHash } from 'node:crypto'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { describe, expect, it } from 'vitest'
import { ProcsnapError, type OutputMode, type Process } from '../../src/index.js'
import { processMatchers } from '../../src/matchers/index.js'
import { fixture, start } from '../helpers.js'

expect.extend(processMatchers)

const MiB = 1024 * 1024
const HEX = Buffer.from('0123456789abcdef')
const UTF8_UNIT = Buffer.from('a€😀\n') // 9 bytes: 1 + 3 + 4 + 1

// A full garbage collection, to measure what stays referenced rather than what awaits collection.
setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

/** Bytes of Buffers still referenced after full collections (V8 frees their memory on another thread). */
async function heldBuffers(): Promise<number> {
  for (let i = 0; i < 3; i++) {
    gc()
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  return process.memoryUsage().arrayBuffers
}

/** Bytes [from, to) of what `writer BYTES kind` writes (see fixtures/c/writer.c). */
function written(kind: 'hex' | 'utf8', from: number, to: number): Buffer {
  const out = Buffer.allocUnsafe(to - from)
  for (let i = 0; i < out.length; i++) {
    const at = from + i
    const col = at % 9
    const line = Math.floor(at / 9)
    out[i] = kind === 'utf8' ? (UTF8_UNIT[col] ?? 0) : col === 8 ? 10 : (HEX[(line >>> (4 * (7 - col))) & 0xf] ?? 0)
  }
  return out
}

/** sha256 of the first `total` bytes of the hex stream, computed a MiB at a time. */
function writtenDigest(total: number): string {
  const hash = createHash('sha256')
  for (let at = 0; at < total; at += MiB) hash.update(written('hex', at, Math.min(at + MiB, total)))
  return hash.digest('hex')
}

/** Runs `writer BYTES kind FD` to its end, with every chunk onOutput gives counted and hashed. */
async function runWriter(
  total: number,
  options: { kind?: 'hex' | 'utf8'; fd?: 1 | 2; mode?: OutputMode; outputLimit?: number },
): Promise<{ proc: Process; streamed: { stream: string; bytes: number; digest: string } }> {
  const hash = createHash('sha256')
  const streams = new Set<string>()
  let bytes = 0
  const mode = options.mode ?? 'pipe'
  const proc = await start(fixture('writer'), {
    args: [String(total), options.kind ?? 'hex', String(options.fd ?? 1)],
    stdout: mode,
    stderr: mode,
    timeout: 60_000,
    ...(options.outputLimit !== undefined ? { outputLimit: options.outputLimit } : {}),
    onOutput: (stream, chunk) => {
      streams.add(stream)
      bytes += chunk.length
      hash.update(chunk)
    },
  })
  expect(await proc.wait()).toEqual({ exitCode: 0 })
  return { proc, streamed: { stream: [...streams].join(), bytes, digest: hash.digest('hex') } }
}

describe('a stream larger than outputLimit', () => {
  it.each(['pty', 'pipe'] as const)(
    'keeps its newest bytes, counts the rest, streams all of it in order, and holds memory within the limit (%s)',
    async (mode) => {
      const total = 128 * MiB
      const limit = MiB + 5 // ends mid-line: the cut is anywhere
      await runWriter(MiB, { mode, outputLimit: limit }) // the first launch's own memory is not the output's
      const rss = process.memoryUsage.rss()
      const held = await heldBuffers()
      const { proc, streamed } = await runWriter(total, { mode, outputLimit: limit })
      const growth = process.memoryUsage.rss() - rss
      const heldGrowth = (await heldBuffers()) - held
      expect(proc.stdout.length).toBe(limit)
      expect(proc.stdout).toBe(written('hex', total - limit, total).toString('latin1'))
      expect(proc.outputDropped).toEqual({ stdout: total - limit, stderr: 0 })
      expect(proc.stderr).toBe('')
      expect(streamed).toEqual({ stream: 'stdout', bytes: total, digest: writtenDigest(total) })
      // Everything kept (as before) holds all 128 MiB; here the ring, within the limit. The worker's
      // resident memory grows by some 40 MB in pty mode whatever the total (67 MB once under Node 24):
      // the heap that 4 KiB reads churn. Keeping everything would grow it by the whole 128 MiB.
      expect(heldGrowth).toBeLessThan(limit + MiB)
      expect(growth).toBeLessThan(total * 0.75)
    },
  )

  it('keeps whole UTF-8 characters: a character cut by the limit is dropped whole, and counted', async () => {
    const total = 4500 // 500 units of 'a€😀\n': the end is whole
    const all = written('utf8', 0, total)
    for (let limit = 1000; limit < 1009; limit++) {
      const { proc } = await runWriter(total, { kind: 'utf8', outputLimit: limit, mode: limit % 2 ? 'pty' : 'pipe' })
      const kept = Buffer.from(proc.stdout)
      expect(proc.stdout).not.toContain('\uFFFD')
      expect(kept.length).toBeLessThanOrEqual(limit)
      expect(kept.length).toBeGreaterThanOrEqual(limit - 3)
      expect(kept.equals(all.subarray(total - kept.length))).toBe(true)
      expect(proc.outputDropped.stdout).toBe(total - kept.length)
    }
  })

  it('applies to stderr apart from stdout; outputLimit 0 keeps nothing and onOutput still gets everything', async () => {
    const { proc, streamed } = await runWriter(3 * MiB, { fd: 2, outputLimit: 1000 })
    expect(proc.stderr).toBe(written('hex', 3 * MiB - 1000, 3 * MiB).toString('latin1'))
    expect(proc.outputDropped).toEqual({ stdout: 0, stderr: 3 * MiB - 1000 })
    const none = await runWriter(3 * MiB, { outputLimit: 0 })
    expect(none.proc.stdout).toBe('')
    expect(none.proc.outputDropped).toEqual({ stdout: 3 * MiB, stderr: 0 })
    expect(none.streamed).toEqual({ stream: 'stdout', bytes: 3 * MiB, digest: writtenDigest(3 * MiB) })
    expect(streamed.stream).toBe('stderr')
  })

  it('the default limit is 16 MiB: 20 MiB are cut to their newest 16 MiB, 3 MiB kept whole', async () => {
    for (const total of [20 * MiB, 3 * MiB]) {
      const proc = await start(fixture('writer'), { args: [String(total)], timeout: 60_000 })
      expect(await proc.wait()).toEqual({ exitCode: 0 })
      const kept = Math.min(total, 16 * MiB)
      expect(proc.stdout.length).toBe(kept)
      expect(proc.stdout.endsWith(written('hex', total - 100, total).toString('latin1'))).toBe(true)
      expect(proc.outputDropped).toEqual({ stdout: total - kept, stderr: 0 })
    }
  })
})

describe('messages that quote output', () => {
  it('say how many bytes were dropped before what they show', async () => {
    const total = 3 * MiB
    const note = `(first ${(total - 1000).toLocaleString('en-US')} bytes dropped: see launch's outputLimit and onOutput)`
    const proc = await start(fixture('writer'), { args: [String(total), 'hex', '2'], outputLimit: 1000 })
    let error: unknown
    await proc.runTo('libc.so.6!abort').catch((e: unknown) => (error = e))
    expect(error).toBeInstanceOf(ProcsnapError)
    expect((error as ProcsnapError).message).toContain(`Its stderr ${note}: `)
    const failure = (run: () => void): string => {
      try {
        run()
      } catch (e) {
        return (e as Error).message
      }
      throw new Error('the assertion passed')
    }
    expect(failure(() => expect(proc).toHaveExited(1))).toContain(`its stderr ${note}: `)
    expect(failure(() => expect(proc).toHaveOutput({ stderr: 'end\n' }))).toContain(
      `stderr of process ${proc.pid} ${note}:`,
    )
    const small = await start(fixture('echo'), { stdin: 'hi\n' })
    await small.wait()
    expect(failure(() => expect(small).toHaveOutput({ stderr: 'x' }))).toContain(`stderr of process ${small.pid}:\n`)
  })
})

describe('onOutput', () => {
  it('that throws: the error is uncaught, onOutput is not called again, and the capture goes on', async () => {
    const uncaught: unknown[] = []
    const listeners = process.listeners('uncaughtException')
    process.removeAllListeners('uncaughtException')
    process.on('uncaughtException', (error) => uncaught.push(error))
    try {
      let calls = 0
      const proc = await start(fixture('writer'), {
        args: ['1000000'],
        stdout: 'pipe',
        onOutput: () => {
          calls++
          throw new Error('the consumer broke')
        },
      })
      expect(await proc.wait()).toEqual({ exitCode: 0 })
      await new Promise((resolve) => setImmediate(resolve))
      expect(calls).toBe(1)
      expect(uncaught).toEqual([new Error('the consumer broke')])
      expect(proc.stdout.length).toBe(1_000_000)
    } finally {
      process.removeAllListeners('uncaughtException')
      for (const listener of listeners) process.on('uncaughtException', listener)
    }
  })
})
