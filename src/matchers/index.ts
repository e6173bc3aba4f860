// procsnap/matchers: the focused matchers for expect.extend(), typed on Vitest's expect().
// Each takes a live Process or a snapshot; all but toMatchProcessSnapshot support .not.
import type { ProcessSnapshotOptions } from '../golden/workflow.js'
import { toMatchProcessSnapshot } from './snapshot-matcher.js'
import { toHaveCrashed, toMatchCrashReport, type ExpectedCrash } from './crash-matchers.js'
import { toHaveBeenKilledBy, toHaveExited, toHaveOutput } from './exit-matchers.js'
import {
  toHaveBacktrace,
  toHaveMapping,
  toHaveMemory,
  toHaveOpenFd,
  toHaveRegister,
  toHaveRegisters,
  toHaveStoppedAt,
} from './state-matchers.js'

export const processMatchers = {
  toMatchProcessSnapshot,
  toHaveRegister,
  toHaveRegisters,
  toHaveMemory,
  toHaveStoppedAt,
  toHaveBacktrace,
  toHaveMapping,
  toHaveOpenFd,
  toHaveExited,
  toHaveBeenKilledBy,
  toHaveOutput,
  toHaveCrashed,
  toMatchCrashReport,
}

export { isSubject, type MatcherSubject } from './subject.js'
export { processSerializer } from './serializer.js'
export type { ProcessSnapshotOptions } from '../golden/workflow.js'
export type { ExpectedCrash } from './crash-matchers.js'

/** What toHaveMemory compares with: bytes, UTF-8 text, a 32-bit (number) or 64-bit (bigint) little-endian integer. */
export type ExpectedMemory = Uint8Array | readonly number[] | string | number | bigint

/** Where a value is expected, an asymmetric matcher (expect.any(BigInt), expect.stringContaining()) also does. */
export interface ProcessMatchers<R = unknown> {
  /** Compares with the golden file __process_snapshots__/<test file>/<key>.snap: written when missing (not in CI), rewritten with -u. */
  toMatchProcessSnapshot(nameOrOptions?: string | ProcessSnapshotOptions): R
  /** A register or alias (rax, eax, al, xmm0) equals a number or bigint; negative numbers compare signed. */
  toHaveRegister(name: string, value: unknown): R
  toHaveRegisters(values: Readonly<Record<string, unknown>>): R
  toHaveMemory(location: string | bigint, expected: ExpectedMemory): R
  /** The stop (or current) pc is exactly this location: 'bump', 'counter!bump', 'counter+0x1139', an address. */
  toHaveStoppedAt(location: string | bigint): R
  /** The backtrace starts with these functions, newest first ('bump', 'counter!bump'). */
  toHaveBacktrace(functions: readonly string[]): R
  /** A map of this path, base name or region ('[heap]'), with perms starting with `perms` ('r-x'). */
  toHaveMapping(pathOrRegion: string, perms?: string): R
  /** fd is open, on `target` (a string or RegExp) if given. */
  toHaveOpenFd(fd: number, target?: unknown): R
  toHaveExited(code?: number): R
  toHaveBeenKilledBy(signal: string | number): R
  toHaveOutput(output: { stdout?: unknown; stderr?: unknown }): R
  /**
   * The process crashed (launch's { crash: 'snapshot' }, or it is stopped at a fatal signal), or the
   * snapshot is of a crash: of this signal, at this function, with this signature.
   */
  toHaveCrashed(expected?: ExpectedCrash): R
  /**
   * The crash (signal, access, function, abort message, signature, frames), or how the process ended
   * without one, against its golden in __process_snapshots__: fails when a crash changes, disappears or appears.
   */
  toMatchCrashReport(name?: string): R
}

declare module 'vitest' {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any, @typescript-eslint/no-empty-object-type -- must repeat Vitest's own declaration
  interface Matchers<T = any> extends ProcessMatchers<T> {}
}
