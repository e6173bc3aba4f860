// Writes registers by name into a stopped thread, general and extended (x86_64: x87, SSE, AVX,
// AVX-512, PKRU through the xsave area): what restoring a snapshot's threads needs.
import { PtraceError } from '../errors.js'
import type { Arch } from '../native/arch/index.js'
import type { RegisterDecoder } from '../native/arch/types.js'
import { errnoName } from '../native/constants.js'
import { registerValue, unknownRegister, type RegisterSource } from './registers.js'

/** A stopped thread whose general block is cached by `block()` and written back by `commit()` (TracedThread). */
export interface WritableThread extends RegisterSource {
  readonly tid: number
  /** Throws unless the thread's process is stopped (TracedThread: ERR_PROCESS_RUNNING, ERR_PROCESS_EXITED). */
  ensureStopped(): void
}

/**
 * Writes `values` (registers by name: full general registers, their aliases, and the extended ones
 * by the names snapshots use) into `thread`, which must be stopped. Registers not named keep their
 * values; the general block is read and written (PTRACE_SETREGS) only when one of its registers is
 * named, the extended area (PTRACE_SETREGSET) only when one of its registers is, and only if
 * something changes. Every name and value is checked before anything is written: an unknown name
 * is RegisterError (ERR_UNKNOWN_REGISTER), as is a register this CPU lacks (zmm16 without
 * AVX-512: the message names the CPU's components); a value out of range is ValueError.
 * `mxcsr_mask` is accepted and left as the thread has it: it describes the CPU, not the program
 * (XRSTOR ignores it). The kernel keeps its own eflags bits (it masks what user space may set).
 */
export function writeThreadRegisters(thread: WritableThread, values: Readonly<Record<string, bigint>>): void {
  const { arch } = thread
  thread.ensureStopped()
  const general = new Map<number, bigint>()
  const aliases: [string, bigint][] = []
  const extended: string[] = []
  const index = generalIndex(arch)
  for (const name in values) {
    const value = values[name]
    const i = index.get(name)
    const alias = i === undefined ? arch.aliases.get(name) : undefined
    if (i !== undefined) general.set(i, registerValue(name, 64, value))
    else if (alias) aliases.push([name, registerValue(name, alias.bits, value)])
    else if (name !== 'mxcsr_mask') extended.push(name)
  }
  // Encoded first: a bad extended name or value throws before the general registers change.
  const template = extended.length > 0 ? readTemplate(thread, extended) : undefined
  const encoded = template && arch.encodeExtended?.(values, template, skippedNames(arch))
  if (general.size > 0 || aliases.length > 0) writeGeneral(thread, general, aliases)
  if (!template || !encoded || sameBytes(encoded, template)) return
  writeExtendedArea(thread, encoded)
}

/**
 * Writes a whole extended area (as `arch.encodeExtended` gives it for this thread's CPU) into the
 * stopped `thread`: restore writes an area it encoded once for a snapshot's thread, unread.
 */
export function writeExtendedArea(thread: WritableThread, area: Uint8Array): void {
  const { arch, tid } = thread
  thread.ensureStopped()
  const err = arch.writeExtendedArea?.(tid, area) ?? 0
  if (err !== 0)
    throw new PtraceError(
      'ERR_PTRACE',
      err,
      `Writing the extended registers (x87/SSE/AVX) of thread ${tid} failed (${errnoName(err)}): the thread is gone ` +
        `or not stopped, or the kernel refused the area (EINVAL: MXCSR or XSTATE_BV bits this CPU does not allow).`,
    )
}

/** The thread's extended area; a name neither its nor one this CPU lacks fails here, with a hint. */
function readTemplate(thread: WritableThread, extended: readonly string[]): Uint8Array {
  const { arch, tid } = thread
  const area = arch.readExtendedArea?.(tid)
  if (!area || !arch.encodeExtended || !arch.writeExtendedArea) throw unknownRegister(arch, extended[0] ?? '')
  const names = decoderNames(arch.registerDecoders(area))
  for (const name of extended) {
    // A name of this architecture that this CPU lacks goes on to the encoder, which says why.
    if (!names.has(name) && arch.explainMissingRegister?.(tid, name) === undefined) throw unknownRegister(arch, name)
  }
  return area
}

const indexes = new WeakMap<Arch, ReadonlyMap<string, number>>()

/** General register name -> index in the block. */
function generalIndex(arch: Arch): ReadonlyMap<string, number> {
  let index = indexes.get(arch)
  if (!index) indexes.set(arch, (index = new Map(arch.registers.map((name, i) => [name, i]))))
  return index
}

const skipped = new WeakMap<Arch, ReadonlySet<string>>()

/** What the encoder leaves to others: the general registers and their aliases; mxcsr_mask, kept as the thread has it. */
function skippedNames(arch: Arch): ReadonlySet<string> {
  let names = skipped.get(arch)
  if (!names) skipped.set(arch, (names = new Set([...arch.registers, ...arch.aliases.keys(), 'mxcsr_mask'])))
  return names
}

const nameSets = new WeakMap<readonly RegisterDecoder[], ReadonlySet<string>>()

/** The names of a decoder table (one table per register layout, so built once). */
function decoderNames(decoders: readonly RegisterDecoder[]): ReadonlySet<string> {
  let names = nameSets.get(decoders)
  if (!names) nameSets.set(decoders, (names = new Set(decoders.map((d) => d.name))))
  return names
}

function writeGeneral(thread: WritableThread, general: Map<number, bigint>, aliases: [string, bigint][]): void {
  const { arch } = thread
  const block = thread.block()
  const before = block.slice()
  for (const [i, value] of general) block[i] = value
  for (const [name, value] of aliases) {
    const alias = arch.aliases.get(name)
    const base = alias ? arch.registers.indexOf(alias.base) : -1
    if (!alias || base < 0) continue
    const mask = ((1n << BigInt(alias.bits)) - 1n) << BigInt(alias.shift)
    block[base] = ((block[base] ?? 0n) & ~mask) | ((value << BigInt(alias.shift)) & mask)
  }
  try {
    thread.commit()
  } catch (error) {
    block.set(before) // the cache keeps what the thread has
    if (!(error instanceof PtraceError)) throw error
    throw new PtraceError(
      'ERR_PTRACE',
      error.errno,
      `${error.message} The kernel refuses (EIO) segment selectors that are not user selectors and ` +
        `fs_base/gs_base beyond the user address space; check those values.`,
    )
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}
