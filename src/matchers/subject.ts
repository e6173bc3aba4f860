// What a matcher asserts on: a live Process or a snapshot (process or thread), seen through one
// interface, so that every matcher works on both and words its failures the same way.
import { ProcsnapError, RegisterError } from '../errors.js'
import { Process } from '../process/process.js'
import { archInfo, unknownRegister } from '../snapshot/arch-info.js'
import { readFds } from '../snapshot/capture.js'
import type { FdState, Frame, SnapshotArch } from '../snapshot/model.js'
import { ProcessSnapshot, ThreadSnapshot, type Snapshot } from '../snapshot/snapshot.js'

export type MatcherSubject = Process | Snapshot

export interface SubjectMap {
  readonly start: bigint
  readonly end: bigint
  readonly perms: string
  readonly path: string
}

/** A matcher's view of its subject. */
export interface Subject {
  /** 'process 1234' or 'snapshot "after bump"'. */
  readonly label: string
  readonly process: Process | undefined
  /**
   * A register by name (aliases and vector registers too). An unknown name throws ERR_UNKNOWN_REGISTER
   * with near names; undefined means the architecture has it but this CPU's state does not (zmm16
   * without AVX-512).
   */
  register(name: string): bigint | undefined
  /** Why `register` gives no value for `name`, when the subject knows (the CPU lacks it, its place is unknown here). */
  missingRegister(name: string): string | undefined
  /** Width in bits of a register or alias. */
  registerBits(name: string): number
  /** Where the current thread is: 'counter!bump+0x4 (thread 1)'. */
  where(): string
  /** The pc of the stop (or of the current thread). */
  stopPc(): bigint
  read(location: string | bigint, length: number): Uint8Array
  resolve(location: string | bigint): bigint
  symbolize(address: bigint): string
  backtrace(): readonly Frame[]
  maps(): readonly SubjectMap[]
  fds(): readonly FdState[]
}

export function isSubject(value: unknown): value is MatcherSubject {
  return value instanceof Process || value instanceof ProcessSnapshot || value instanceof ThreadSnapshot
}

/** The subject, or an ERR_BAD_ARGUMENT that says what the matcher takes. */
export function subjectOf(value: unknown, matcher: string): Subject {
  if (value instanceof Process) return processSubject(value)
  if (value instanceof ProcessSnapshot || value instanceof ThreadSnapshot) return snapshotSubject(value)
  throw new ProcsnapError(
    'ERR_BAD_ARGUMENT',
    `${matcher} takes a Process (from launch()) or a snapshot (from createSnapshot() or loadSnapshot()), not ${describe(value)}.`,
  )
}

function describe(value: unknown): string {
  if (value === null || value === undefined) return String(value)
  if (typeof value === 'object') return `an object (${value.constructor.name})`
  return `a ${typeof value}`
}

function knownRegister(arch: SnapshotArch, name: string): void {
  const info = archInfo(arch)
  if (!info.aliases.has(name) && !info.registerInfo(name)) throw unknownRegister(arch, name)
}

/** A register the matcher compares: absent on this CPU is an error too, so that .not cannot pass on it. */
export function requireRegister(s: Subject, name: string): bigint {
  const value = s.register(name)
  if (value === undefined) {
    const why = s.missingRegister(name) ?? 'the CPU it ran on does not have it (or its kernel did not enable it)'
    throw new RegisterError(
      `${s.label} has no register ${name}: ${why}. Check the register set with snapshot.pprintRegistersAll().`,
    )
  }
  return value
}

function aliasBits(arch: SnapshotArch, name: string): number {
  const info = archInfo(arch)
  return info.aliases.get(name)?.bits ?? info.registerInfo(name)?.bits ?? 64
}

function processSubject(proc: Process): Subject {
  const arch = proc.arch.name as SnapshotArch
  const pc = (): bigint => proc.thread.pc
  return {
    label: `process ${proc.pid}`,
    process: proc,
    register(name) {
      knownRegister(arch, name)
      const regs = proc.regs as unknown as Record<string, bigint | undefined>
      if (name in regs || proc.arch.aliases.has(name) || proc.arch.registers.includes(name)) return regs[name]
      return proc.arch.readExtendedRegs?.(proc.thread.tid)[name]
    },
    missingRegister: (name) => proc.arch.explainMissingRegister?.(proc.thread.tid, name),
    registerBits: (name) => aliasBits(arch, name),
    where: () => `${proc.symbolize(pc())} (thread ${proc.thread.index})`,
    stopPc: () => {
      const stop = proc.lastStop
      return stop && 'pc' in stop ? stop.pc : pc()
    },
    read: (location, length) => proc.readMemory(location, length),
    resolve: (location) => proc.resolve(location),
    symbolize: (address) => proc.symbolize(address),
    backtrace: () => proc.createSnapshot().backtrace(),
    maps: () => proc.maps,
    fds: () => readFds(proc.pid),
  }
}

function snapshotSubject(snap: Snapshot): Subject {
  const info = archInfo(snap.arch)
  const pc = (): bigint => snap.regs[info.pc] ?? 0n
  return {
    label: snap.name !== undefined ? `snapshot "${snap.name}"` : `snapshot of process ${snap.pid}`,
    process: undefined,
    register: (name) => {
      knownRegister(snap.arch, name)
      return snap.regs[name]
    },
    missingRegister: () => undefined,
    registerBits: (name) => aliasBits(snap.arch, name),
    where: () => `${snap.symbolize(pc())} (thread ${snap.data.current})`,
    stopPc: () => snap.stop?.pc ?? pc(),
    read: (location, length) => snap.memory.read(location, length),
    resolve: (location) => snap.memory.resolve(location),
    symbolize: (address) => snap.symbolize(address),
    backtrace: () => snap.backtrace(),
    maps: () => snap.maps,
    fds: () => snap.fds,
  }
}
