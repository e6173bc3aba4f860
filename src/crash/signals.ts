// Signals that end a process, and their si_code values in words (asm-generic/siginfo.h).

/** Signals whose default action ends the process with a core: what a crash is. */
export const CRASH_SIGNALS: ReadonlySet<string> = new Set([
  'SIGSEGV',
  'SIGBUS',
  'SIGILL',
  'SIGFPE',
  'SIGABRT',
  'SIGTRAP',
  'SIGSYS',
])

/** si_code names and meanings by signal, for codes > 0 (sent by the kernel for a fault). */
const FAULT_CODES: Readonly<Record<string, readonly (readonly [string, string])[]>> = {
  SIGSEGV: [
    ['SEGV_MAPERR', 'address not mapped'],
    ['SEGV_ACCERR', 'invalid permissions for the mapping'],
    ['SEGV_BNDERR', 'failed address bound checks'],
    ['SEGV_PKUERR', 'denied by a protection key'],
  ],
  SIGBUS: [
    ['BUS_ADRALN', 'invalid address alignment'],
    ['BUS_ADRERR', 'nonexistent physical address: past the end of a mapped file'],
    ['BUS_OBJERR', 'object-specific hardware error'],
    ['BUS_MCEERR_AR', 'hardware memory error consumed'],
  ],
  SIGILL: [
    ['ILL_ILLOPC', 'illegal opcode'],
    ['ILL_ILLOPN', 'illegal operand'],
    ['ILL_ILLADR', 'illegal addressing mode'],
    ['ILL_ILLTRP', 'illegal trap'],
    ['ILL_PRVOPC', 'privileged opcode'],
    ['ILL_PRVREG', 'privileged register'],
    ['ILL_COPROC', 'coprocessor error'],
    ['ILL_BADSTK', 'internal stack error'],
  ],
  SIGFPE: [
    ['FPE_INTDIV', 'integer divide by zero'],
    ['FPE_INTOVF', 'integer overflow'],
    ['FPE_FLTDIV', 'floating-point divide by zero'],
    ['FPE_FLTOVF', 'floating-point overflow'],
    ['FPE_FLTUND', 'floating-point underflow'],
    ['FPE_FLTRES', 'floating-point inexact result'],
    ['FPE_FLTINV', 'floating-point invalid operation'],
    ['FPE_FLTSUB', 'subscript out of range'],
  ],
  SIGTRAP: [
    ['TRAP_BRKPT', 'process breakpoint'],
    ['TRAP_TRACE', 'process trace trap'],
  ],
  SIGSYS: [['SYS_SECCOMP', 'system call refused by a seccomp filter']],
}

/** Codes <= 0 and the kernel's own: who sent the signal. */
const SENDERS: ReadonlyMap<number, readonly [string, string]> = new Map([
  [0, ['SI_USER', 'sent by kill()']],
  [0x80, ['SI_KERNEL', 'sent by the kernel']],
  [-1, ['SI_QUEUE', 'sent by sigqueue()']],
  [-6, ['SI_TKILL', 'sent by tgkill() (raise, abort)']],
])

/** si_code's name and meaning ('SEGV_MAPERR', 'address not mapped'), or undefined for a code we do not know. */
export function codeOf(signal: string, code: number): { name: string; meaning: string } | undefined {
  const sender = SENDERS.get(code)
  if (sender) return { name: sender[0], meaning: sender[1] }
  const entry = code > 0 ? FAULT_CODES[signal]?.[code - 1] : undefined
  return entry && { name: entry[0], meaning: entry[1] }
}

/** What the signal means, as a noun: 'segmentation fault', 'abort'. */
export const SIGNAL_NOUNS: Readonly<Record<string, string>> = {
  SIGSEGV: 'segmentation fault',
  SIGBUS: 'bus error',
  SIGILL: 'illegal instruction',
  SIGFPE: 'arithmetic exception',
  SIGABRT: 'abort',
  SIGTRAP: 'trace/breakpoint trap',
  SIGSYS: 'bad system call',
}
