// What a core file is written from: the parts of a snapshot's data (src/snapshot/model.ts
// SnapshotData) it reads, declared here so that src/core stays below src/snapshot (which calls it).
import type { MemoryMap } from '../process/maps.js'

/** A map and the bytes a snapshot holds of it (model.ts MapState). */
export interface CoreMap extends MemoryMap {
  /** GNU build-id of the mapped file, when it has one. */
  readonly buildId?: string
  readonly content?: Uint8Array
  readonly sparse?: { readonly size: number; readonly pages: ReadonlyMap<number, Uint8Array> }
  readonly untouched?: readonly (readonly [from: number, to: number])[]
}

export interface CoreThread {
  readonly tid: number
  readonly index: number
  /** Registers by full name: user_regs_struct's and the xsave area's (st0, xmm0, ymm0, zmm0, k0, ...). */
  readonly regs: Readonly<Record<string, bigint>>
}

export type CoreStop =
  | {
      readonly kind: 'signal'
      readonly thread: number
      readonly signo: number
      readonly code: number
      readonly faultAddress?: bigint
    }
  | { readonly kind: 'breakpoint' | 'step' | 'launch' | 'attach' | 'interrupted'; readonly thread: number }

export interface CoreCpu {
  readonly xcr0?: bigint
}

export interface CoreSource {
  readonly kind: 'process' | 'thread'
  readonly arch: string
  readonly pid: number
  /** The pid the program sees of itself in a PID namespace of its own. */
  readonly ownPid?: number
  readonly exe: string
  readonly argv: readonly string[]
  readonly stop: CoreStop | undefined
  readonly threads: readonly CoreThread[]
  readonly current: number
  readonly maps: readonly CoreMap[]
  readonly auxv: readonly { readonly type: number; readonly value: bigint }[]
  readonly cpu: CoreCpu
}
