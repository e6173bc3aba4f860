// The launcher's go message and the seccomp filter it installs (launch's fixedRandom): a classic
// BPF program that stops the listed syscalls for the tracer (SECCOMP_RET_TRACE) and allows the rest.

/** Syscalls the tracer answers itself when the program's randomness is fixed. */
export const TRAPPED_SYSCALLS: readonly number[] = [
  318, // getrandom
]

const AUDIT_ARCH_X86_64 = 0xc000003e
const SECCOMP_RET_TRACE = 0x7ff00000
const SECCOMP_RET_ALLOW = 0x7fff0000
const BPF_LD_W_ABS = 0x20
const BPF_JEQ_K = 0x15
const BPF_RET_K = 0x06
/** seccomp_data offsets: the syscall number, then the audit architecture. */
const DATA_NR = 0
const DATA_ARCH = 4
/** The launcher reads one pipe write of at most this many bytes (atomic up to PIPE_BUF). */
const MAX_MESSAGE = 4096
const HEADER = 8
const INSTRUCTION = 8

function instruction(code: number, jt: number, jf: number, k: number): Uint8Array {
  const out = new Uint8Array(INSTRUCTION)
  const view = new DataView(out.buffer)
  view.setUint16(0, code, true)
  out[2] = jt
  out[3] = jf
  view.setUint32(4, k >>> 0, true)
  return out
}

/** A filter that returns SECCOMP_RET_TRACE for each syscall of `trapped` on x86_64 and allows everything else. */
export function buildSeccompFilter(trapped: readonly number[]): Uint8Array[] {
  const n = trapped.length
  const program = [
    instruction(BPF_LD_W_ABS, 0, 0, DATA_ARCH),
    // another architecture (an i386 syscall): allowed, n + 1 ahead (past the load and the n compares)
    instruction(BPF_JEQ_K, 0, n + 1, AUDIT_ARCH_X86_64),
    instruction(BPF_LD_W_ABS, 0, 0, DATA_NR),
    // the i-th comparison jumps to RET_TRACE, n - i instructions ahead, or falls through to the next
    ...trapped.map((nr, i) => instruction(BPF_JEQ_K, n - i, 0, nr)),
    instruction(BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW),
    instruction(BPF_RET_K, 0, 0, SECCOMP_RET_TRACE),
  ]
  return program
}

/**
 * The go message (see launcher.ts): mode 1 just execs; mode 2 first sets no_new_privs, installs the
 * filter trapping `trapped` and turns rdtsc faulting on.
 */
export function launcherMessage(fixedRandom: boolean, trapped: readonly number[] = TRAPPED_SYSCALLS): Uint8Array {
  if (!fixedRandom) return Uint8Array.of(1)
  const filter = buildSeccompFilter(trapped)
  const message = new Uint8Array(HEADER + filter.length * INSTRUCTION)
  if (message.length > MAX_MESSAGE) throw new Error(`seccomp filter too long: ${filter.length} instructions`)
  message[0] = 2
  new DataView(message.buffer).setUint16(2, filter.length, true)
  filter.forEach((ins, i) => message.set(ins, HEADER + i * INSTRUCTION))
  return message
}
