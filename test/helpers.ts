// Shared test helpers: fixture paths and a tracker that kills every process a test launched.
import { execFileSync } from 'node:child_process'
import { statSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { afterEach, expect } from 'vitest'
import { ProcsnapError, launch, type LaunchOptions, type Process } from '../src/index.js'

export const FIXTURES = fileURLToPath(new URL('../fixtures/c/bin/', import.meta.url))

/** Absolute path of a built fixture binary. */
export function fixture(name: string): string {
  return `${FIXTURES}${name}`
}

const launched: Process[] = []

/** launch() that registers the process for killing after the test, whatever the test did. */
export async function start(file: string, options?: LaunchOptions): Promise<Process> {
  const proc = await launch(file, options)
  launched.push(proc)
  return proc
}

/** Registers a process made otherwise (restore(), attach()) for killing after the test. */
export function track(proc: Process): Process {
  launched.push(proc)
  return proc
}

afterEach(async () => {
  for (const proc of launched.splice(0)) await proc.kill()
})

/** Awaits `run`, which must reject with a ProcsnapError of `code`; returns the error. */
export async function rejectsWithCode(run: Promise<unknown>, code: string): Promise<ProcsnapError> {
  const error = await run.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(error).toBeInstanceOf(ProcsnapError)
  expect((error as ProcsnapError).code).toBe(code)
  return error as ProcsnapError
}

/** What the vecregs/xstate fixtures load into vector register r, `bits` wide: pattern bytes 64r.., byte i = i * 7 + 1 + i / 256. */
export function vectorPattern(r: number, bits: number): bigint {
  let value = 0n
  for (let i = bits / 8 - 1; i >= 0; i--) {
    const at = 64 * r + i
    value = (value << 8n) | BigInt((at * 7 + 1 + Math.floor(at / 256)) & 0xff)
  }
  return value
}

/** Link-time value of a symbol, from nm (an oracle we did not write). */
export function nmSymbol(binary: string, name: string): bigint {
  const out = execFileSync('nm', [binary], { encoding: 'utf8' })
  const line = out.split('\n').find((l) => l.endsWith(` ${name}`))
  if (!line) throw new Error(`nm: no ${name} in ${binary}`)
  return BigInt(`0x${line.split(' ')[0]}`)
}

/** Every child process of this test worker except ps itself: after cleanup there should be none (no tracee, stopped or zombie). */
export function strayChildren(): string[] {
  const out = execFileSync('ps', ['-o', 'pid=,stat=,comm=', '--ppid', String(process.pid)], { encoding: 'utf8' }).trim()
  return out === ''
    ? []
    : out
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => !l.endsWith(' ps'))
}

export function le32(bytes: Uint8Array): number {
  return Buffer.from(bytes).readInt32LE(0)
}

export function le64(bytes: Uint8Array): bigint {
  return Buffer.from(bytes).readBigUInt64LE(0)
}

/** The ProcsnapError that `fn` throws; anything else thrown goes on, and throwing nothing fails. */
export function caughtProcsnapError(fn: () => unknown): ProcsnapError {
  try {
    fn()
  } catch (error) {
    if (error instanceof ProcsnapError) return error
    throw error
  }
  throw new Error('expected a ProcsnapError, nothing was thrown')
}

/** The `code` of what `run` throws, or undefined when it throws nothing (or something without one). */
export function codeOf(run: () => unknown): string | undefined {
  try {
    run()
  } catch (error) {
    return (error as { code?: string }).code
  }
  return undefined
}

/** Every directory down to `path` lets others in: what a run as another user needs of the repository. */
export function othersCanEnter(path: string): boolean {
  const parts = path.split('/').filter(Boolean)
  return parts.every((_, i) => (statSync('/' + parts.slice(0, i + 1).join('/')).mode & 0o005) === 0o005)
}

/** A small deterministic generator (xorshift32): the same cases on every run; random(n) is below n. */
export function random(seed: number): (n: number) => number {
  let x = seed
  return (n) => {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    return (x >>> 0) % n
  }
}

/** The message of the assertion `run` makes fail (an expect() that must not pass). */
export function failure(run: () => void): string {
  try {
    run()
  } catch (error) {
    return (error as Error).message
  }
  throw new Error('the assertion passed')
}
