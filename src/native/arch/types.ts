// What the tracer needs to know about a CPU architecture: register layout, aliases, breakpoint encoding.

/** A narrower view of a full register: `eax` is bits 0-31 of `rax`, `ah` bits 8-15. */
export interface RegisterAlias {
  readonly base: string
  readonly bits: 8 | 16 | 32
  readonly shift: 0 | 8
}

/** An instruction the tracer can execute itself to step over a breakpoint (see x86_64-emulate.ts). */
export interface Emulation {
  readonly length: number
  /** Register index whose value is pushed on the stack. */
  readonly push?: number | undefined
  /** Register copy: block[to] = block[from]. */
  readonly copy?: { readonly from: number; readonly to: number }
  /** Register load: block[to] = value (mov r32, imm32 zero-extends). */
  readonly load?: { readonly to: number; readonly value: bigint }
}

export interface RegisterFeatures {
  readonly xcr0: bigint
  readonly components: readonly string[]
  readonly xsaveSize: number
}

/** A thread's registers as the kernel gives them: the general block, and the extended area (x86_64: xsave). */
export interface RawRegisters {
  readonly block: BigUint64Array
  readonly extended: Uint8Array | undefined
}

/** Reads one register, full width, out of a thread's raw registers. */
export interface RegisterDecoder {
  readonly name: string
  decode(raw: RawRegisters): bigint
}

export interface Arch {
  readonly name: 'x86_64' | 'aarch64' | 'i386'
  /** e_machine of ELF files for this architecture. */
  readonly elfMachine: number
  /** Byte size of the general-purpose register block read by `readRegs`. */
  readonly regsSize: number
  /** General-purpose register names; register i lives at byte offset 8*i of the block. */
  readonly registers: readonly string[]
  readonly aliases: ReadonlyMap<string, RegisterAlias>
  readonly pc: string
  readonly sp: string
  readonly fp: string
  readonly returnValue: string
  /** Argument registers of the C calling convention, in order. */
  readonly args: readonly string[]
  /** Software breakpoint instruction bytes. */
  readonly breakpoint: Uint8Array
  /** How far past the breakpoint address the pc is when the trap is reported (1 for int3, 0 for brk). */
  readonly pcAfterTrap: bigint
  /** Reads the register block of a stopped thread into `into`; returns 0 or an errno. */
  readRegs(tid: number, into: Uint8Array): number
  writeRegs(tid: number, from: Uint8Array): number
  /** Registers beyond the general-purpose block (x87, SSE/AVX/AVX-512, ...) of a stopped thread, by name. */
  readonly readExtendedRegs?: (tid: number) => Record<string, bigint>
  /** A copy of the extended register area of a stopped thread (x86_64: the xsave area), undecoded. */
  readonly readExtendedArea?: (tid: number) => Uint8Array
  /** Writes a whole extended area (as `readExtendedArea` gives it, edited) into a stopped thread; 0 or an errno. */
  readonly writeExtendedArea?: (tid: number, area: Uint8Array) => number
  /**
   * A copy of `template` (an area from `readExtendedArea`) with the registers of `values` written in,
   * by the names `registerDecoders(template)` gives past the general block; the rest unchanged.
   * Names in `skip` are left out (the general registers, written by `writeRegs`).
   */
  readonly encodeExtended?: (
    values: Readonly<Record<string, bigint>>,
    template: Uint8Array,
    skip?: ReadonlySet<string>,
  ) => Uint8Array
  /**
   * Every register by name, in the order `readRegs` then `readExtendedRegs` give them, each decoded
   * on its own from raw registers whose extended area is `extended` (the same table for every area of one layout).
   */
  readonly registerDecoders: (extended: Uint8Array | undefined) => readonly RegisterDecoder[]
  /** Why `readExtendedRegs` has no register `name` that this architecture can have (a CPU without it, a layout not known here). */
  readonly explainMissingRegister?: (tid: number, name: string) => string | undefined
  /** Which register sets this CPU and kernel provide (x86_64: XCR0 and the xsave components). */
  readonly registerFeatures?: () => RegisterFeatures
  /** Recognizes an instruction that can be stepped over without running the thread. */
  readonly decodeEmulation?: (code: Uint8Array) => Emulation | undefined
  /** Executes it on a register block; false (nothing changed) if the stack store failed. */
  readonly applyEmulation?: (
    e: Emulation,
    regs: BigUint64Array,
    store: (address: bigint, value: bigint) => boolean,
  ) => boolean
}
