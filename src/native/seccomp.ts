// The launcher's go message and the seccomp filter it installs (launch's fixedRandom and clock): a
// classic BPF program that stops the listed syscalls for the tracer (SECCOMP_RET_TRACE) and allows the rest.

/** A trapped syscall: its number, or a number trapped only when argument `whenArg` is not 0 (a timeout pointer). */
export type Trap = number | { readonly nr: number; readonly whenArg: number }

/** Syscalls the tracer answers itself when the program's randomness is fixed. */
export const TRAPPED_SYSCALLS: readonly Trap[] = [
  318, // getrandom
]

/** Syscalls the tracer answers or watches for the virtual clock (launch's clock: 'virtual'). */
export const CLOCK_SYSCALLS: readonly Trap[] = [
  228, // clock_gettime
  229, // clock_getres
  96, // gettimeofday
  201, // time
  100, // times
  98, // getrusage
  35, // nanosleep
  230, // clock_nanosleep
  7, // poll
  23, // select
  270, // pselect6
  271, // ppoll
  232, // epoll_wait
  281, // epoll_pwait
  441, // epoll_pwait2
  { nr: 202, whenArg: 3 }, // futex, only with a timeout: mutexes without one stay at full speed
  99, // sysinfo: the uptime, and the memory figures programs size buffers by
]

const AUDIT_ARCH_X86_64 = 0xc000003e
const SECCOMP_RET_TRACE = 0x7ff00000
const SECCOMP_RET_ALLOW = 0x7fff0000
const BPF_LD_W_ABS = 0x20
const BPF_JEQ_K = 0x15
const BPF_RET_K = 0x06
/** seccomp_data offsets: the syscall number, the audit architecture, then six 64-bit arguments. */
const DATA_NR = 0
const DATA_ARCH = 4
const DATA_ARGS = 16
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

/** One instruction whose jump targets are labels, resolved once the program is laid out. */
interface Line {
  code: number
  k: number
  jt?: string | undefined
  jf?: string | undefined
  label?: string
}

/**
 * A filter that returns SECCOMP_RET_TRACE for each syscall of `trapped` on x86_64 (a conditional one
 * when its argument is not 0) and allows everything else.
 */
export function buildSeccompFilter(trapped: readonly Trap[]): Uint8Array[] {
  const conditional = trapped.filter((t): t is Exclude<Trap, number> => typeof t !== 'number')
  const lines: Line[] = [
    { code: BPF_LD_W_ABS, k: DATA_ARCH },
    // another architecture (an i386 syscall): allowed
    { code: BPF_JEQ_K, k: AUDIT_ARCH_X86_64, jf: 'allow' },
    { code: BPF_LD_W_ABS, k: DATA_NR },
    ...trapped.map((t, i) =>
      typeof t === 'number' ? { code: BPF_JEQ_K, k: t, jt: 'trace' } : { code: BPF_JEQ_K, k: t.nr, jt: `arg${i}` },
    ),
    { code: BPF_RET_K, k: SECCOMP_RET_ALLOW },
    // classic BPF jumps forward only: the argument checks come before the two returns they end in
    ...conditional.flatMap((t): Line[] => {
      const offset = DATA_ARGS + 8 * t.whenArg
      return [
        // the low then the high 32 bits of the argument: trace unless both are 0
        { code: BPF_LD_W_ABS, k: offset, label: `arg${trapped.indexOf(t)}` },
        { code: BPF_JEQ_K, k: 0, jf: 'trace' },
        { code: BPF_LD_W_ABS, k: offset + 4 },
        { code: BPF_JEQ_K, k: 0, jt: 'allow', jf: 'trace' },
      ]
    }),
    { code: BPF_RET_K, k: SECCOMP_RET_ALLOW, label: 'allow' },
    { code: BPF_RET_K, k: SECCOMP_RET_TRACE, label: 'trace' },
  ]
  const at = new Map(lines.flatMap((l, i) => (l.label ? [[l.label, i] as const] : [])))
  const jump = (from: number, label: string | undefined): number => {
    if (label === undefined) return 0
    const offset = (at.get(label) ?? -1) - from - 1
    if (offset < 0 || offset > 255) throw new Error(`seccomp filter: no jump to ${label} from ${from}`)
    return offset
  }
  return lines.map((l, i) => instruction(l.code, jump(i, l.jt), jump(i, l.jf), l.k))
}

/**
 * The go message (see launcher.ts): mode 1 just execs; mode 2 first sets no_new_privs, installs the
 * filter trapping `trapped` and turns rdtsc faulting on.
 */
export function launcherMessage(trace: boolean, trapped: readonly Trap[] = TRAPPED_SYSCALLS): Uint8Array {
  if (!trace) return Uint8Array.of(1)
  const filter = buildSeccompFilter(trapped)
  const message = new Uint8Array(HEADER + filter.length * INSTRUCTION)
  if (message.length > MAX_MESSAGE) throw new Error(`seccomp filter too long: ${filter.length} instructions`)
  message[0] = 2
  new DataView(message.buffer).setUint16(2, filter.length, true)
  filter.forEach((ins, i) => message.set(ins, HEADER + i * INSTRUCTION))
  return message
}
