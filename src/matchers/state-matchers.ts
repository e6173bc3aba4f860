// Matchers on the state of a stopped process or a snapshot: registers, memory, where it stopped,
// its backtrace, its maps and open files.
import { basename } from 'node:path'
import type { MatcherState, MatcherResult } from 'vitest'
import { requireRegister, subjectOf } from './subject.js'
import { expectedBytes, registerMatches, showBytes, showExpected, showValue } from './values.js'

type Result = Exclude<MatcherResult, Promise<unknown>>

function result(
  state: MatcherState,
  pass: boolean,
  positive: () => string,
  negative: () => string,
  extra: { actual?: unknown; expected?: unknown } = {},
): Result {
  return { pass, message: () => (state.isNot ? negative() : positive()), ...extra }
}

export function toHaveRegister(this: MatcherState, received: unknown, name: string, expected: unknown): Result {
  const s = subjectOf(received, 'toHaveRegister')
  const actual = requireRegister(s, name)
  const pass = registerMatches(this, actual, expected, s.registerBits(name))
  return result(
    this,
    pass,
    () => `expected ${name} to be ${showExpected(this, expected)}, received ${showValue(actual)} at ${s.where()}`,
    () => `expected ${name} not to be ${showExpected(this, expected)} at ${s.where()}`,
    { actual, expected },
  )
}

export function toHaveRegisters(
  this: MatcherState,
  received: unknown,
  expected: Readonly<Record<string, unknown>>,
): Result {
  const s = subjectOf(received, 'toHaveRegisters')
  const wrong: string[] = []
  for (const [name, value] of Object.entries(expected)) {
    const actual = requireRegister(s, name)
    if (!registerMatches(this, actual, value, s.registerBits(name)))
      wrong.push(`${name}: expected ${showExpected(this, value)}, received ${showValue(actual)}`)
  }
  const names = Object.keys(expected).join(', ')
  return result(
    this,
    wrong.length === 0,
    () => `expected registers ${names} at ${s.where()}; ${wrong.length} differ:\n  ${wrong.join('\n  ')}`,
    () => `expected registers ${names} not all to match at ${s.where()}, but they do`,
  )
}

export function toHaveMemory(
  this: MatcherState,
  received: unknown,
  location: string | bigint,
  expected: unknown,
): Result {
  const s = subjectOf(received, 'toHaveMemory')
  const want = expectedBytes(expected)
  const address = s.resolve(location)
  const actual = s.read(address, want.length)
  const pass = Buffer.from(actual).equals(Buffer.from(want))
  const where = typeof location === 'bigint' ? s.symbolize(address) : `${location} (0x${address.toString(16)})`
  return result(
    this,
    pass,
    () => `expected ${where} to hold ${showBytes(want)}, received ${showBytes(actual)} (${s.label})`,
    () => `expected ${where} not to hold ${showBytes(want)} (${s.label})`,
    { actual, expected: want },
  )
}

export function toHaveStoppedAt(this: MatcherState, received: unknown, location: string | bigint): Result {
  const s = subjectOf(received, 'toHaveStoppedAt')
  const expected = s.resolve(location)
  const pc = s.stopPc()
  const name = typeof location === 'bigint' ? s.symbolize(location) : location
  return result(
    this,
    pc === expected,
    () =>
      `expected ${s.label} to be stopped at ${name} (0x${expected.toString(16)}), it is stopped ` +
      `at ${s.symbolize(pc)} (0x${pc.toString(16)})`,
    () => `expected ${s.label} not to be stopped at ${name} (0x${expected.toString(16)})`,
  )
}

export function toHaveBacktrace(this: MatcherState, received: unknown, expected: readonly string[]): Result {
  const s = subjectOf(received, 'toHaveBacktrace')
  const frames = s.backtrace()
  const matches = (name: string, i: number): boolean => {
    const f = frames[i]
    return (
      f !== undefined &&
      (name === f.symbol || name === f.location || (f.symbol !== undefined && name === `${f.module ?? ''}!${f.symbol}`))
    )
  }
  const pass = frames.length >= expected.length && expected.every(matches)
  const shown = frames.map((f) => f.location).join(' > ')
  return result(
    this,
    pass,
    () => `expected the backtrace to start with ${expected.join(' > ')}, received ${shown}`,
    () => `expected the backtrace not to start with ${expected.join(' > ')}, received ${shown}`,
  )
}

export function toHaveMapping(this: MatcherState, received: unknown, pathOrRegion: string, perms?: string): Result {
  const s = subjectOf(received, 'toHaveMapping')
  const named = s.maps().filter((m) => m.path === pathOrRegion || (m.path !== '' && basename(m.path) === pathOrRegion))
  const pass = named.some((m) => perms === undefined || m.perms.startsWith(perms))
  const what = `${pathOrRegion}${perms !== undefined ? ` with perms ${perms}` : ''}`
  const found = named.length
    ? `its maps: ${named.map((m) => `0x${m.start.toString(16)}-0x${m.end.toString(16)} ${m.perms}`).join(', ')}`
    : 'no map of that name'
  return result(
    this,
    pass,
    () => `expected ${s.label} to map ${what}; ${found}`,
    () => `expected ${s.label} not to map ${what}; ${found}`,
  )
}

export function toHaveOpenFd(this: MatcherState, received: unknown, fd: number, target?: unknown): Result {
  const s = subjectOf(received, 'toHaveOpenFd')
  const open = s.fds().find((f) => f.fd === fd)
  const targetMatches = (t: string): boolean =>
    target === undefined ||
    (target instanceof RegExp ? target.test(t) : typeof target === 'string' ? t === target : this.equals(t, target))
  const pass = open !== undefined && targetMatches(open.target)
  const shownTarget = target instanceof RegExp ? String(target) : showExpected(this, target)
  const what = `fd ${fd}${target !== undefined ? ` open on ${shownTarget}` : ' open'}`
  const found = open
    ? `fd ${fd} is ${open.target}`
    : `fd ${fd} is not open (open: ${s
        .fds()
        .map((f) => f.fd)
        .join(', ')})`
  return result(
    this,
    pass,
    () => `expected ${s.label} to have ${what}; ${found}`,
    () => `expected ${s.label} not to have ${what}; ${found}`,
  )
}
