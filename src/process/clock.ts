// launch's clock: 'virtual': every way the program reads the time gives one deterministic clock, shared
// by its threads and children (family.ts). The vDSO's clock functions are rewritten at exec into plain
// syscalls, which the seccomp filter stops for the tracer (see CLOCK_SYSCALLS); rdtsc and rdtscp fault
// (TSC faulting stays on) and are emulated. Each read advances the clock by a fixed step; sleeps and
// timed waits (poll, select, epoll, futex) wait for real and, when they time out, advance it by their
// timeout: the same values on every run, and a loop towards a deadline ends.
// Under the serial schedule, while the process has two threads or more, time is simulated instead
// (`simulate` below): a sleep is not executed and a timed wait waits without its timeout; the
// tracer advances the clock to the earliest deadline when no thread can run (expire()).
import { parseImage } from '../elf/index.js'
import type { TraceeMemory } from './memory.js'
import { auxvLookup, readStackAuxv, type StackAuxv } from './initial-stack.js'
import { emulateTimestamp } from './rdtsc.js'
import type { TracedThread } from './thread.js'

const NS = 1_000_000_000n
/** CLOCK_REALTIME at the first read: 2000-01-01T00:00:00Z. */
export const VIRTUAL_EPOCH_S = 946_684_800n
/** CLOCK_MONOTONIC and CLOCK_BOOTTIME at the first read: 1 s after a virtual boot. */
export const VIRTUAL_MONOTONIC_S = 1n
/** How far the clock advances at each read: a loop that waits on the clock ends after 1000 reads per second. */
export const CLOCK_STEP_NS = 1_000_000n
/** TAI is ahead of UTC by 37 s since 2017 (the kernel reports 0 unless NTP sets it; a fixed, true value). */
const TAI_OFFSET = 37n * NS
/** times() counts in USER_HZ ticks, 100 per second on Linux. */
const USER_HZ_NS = NS / 100n

const MASK64 = (1n << 64n) - 1n
/** Skip the syscall: at a seccomp stop, a syscall number of -1 is not executed. */
const NO_SYSCALL = MASK64
const EFAULT = 14n
const ETIMEDOUT = 110n
const EINTR = 4n
/** Results of a wait broken off by a signal or a ptrace interrupt: ERESTARTSYS, -NOINTR, -NOHAND, -_RESTARTBLOCK, EINTR. */
const INTERRUPTED = new Set([512n, 513n, 514n, 516n, EINTR].map((e) => -e & MASK64))
const ENOSYS = 38n
/** The kernel's "restart through restart_syscall" result, seen at a syscall-exit stop. */
const ERESTART_RESTARTBLOCK = 516n
const SYS_RESTART_SYSCALL = 219n
const AT_IGNORE = 1n
const AT_SYSINFO_EHDR = 33n
/** Scratch space for a translated futex timeout: below the 128-byte red zone, which is all the ABI keeps. */
const SCRATCH_BELOW_SP = 512n
/** The memory sysinfo(2) reports under the virtual clock: 8 GiB, half of it free. */
const SYSINFO_RAM = 8n << 30n
/** select's nfds beyond this (the kernel's default fd limit ceiling) is not cleared on a timeout. */
const MAX_FDS = 1n << 20n

const SYS = {
  poll: 7n,
  select: 23n,
  nanosleep: 35n,
  gettimeofday: 96n,
  getrusage: 98n,
  sysinfo: 99n,
  times: 100n,
  time: 201n,
  futex: 202n,
  clock_gettime: 228n,
  clock_getres: 229n,
  clock_nanosleep: 230n,
  epoll_wait: 232n,
  pselect6: 270n,
  ppoll: 271n,
  epoll_pwait: 281n,
  epoll_pwait2: 441n,
} as const

type Kind = 'realtime' | 'monotonic' | 'cputime' | 'tai'

/** What each clock id reads: the kernel's clock ids (linux/time.h), then CPU-time clocks of a pid or tid. */
function clockKind(id: bigint): Kind | undefined {
  const clk = BigInt.asIntN(32, id)
  if (clk < 0n) return (clk & 7n) === 3n ? undefined : 'cputime' // 3: a dynamic (fd) clock, left to the kernel
  switch (clk) {
    case 0n: // REALTIME
    case 5n: // REALTIME_COARSE
    case 8n: // REALTIME_ALARM
      return 'realtime'
    case 1n: // MONOTONIC
    case 4n: // MONOTONIC_RAW
    case 6n: // MONOTONIC_COARSE
    case 7n: // BOOTTIME
    case 9n: // BOOTTIME_ALARM
      return 'monotonic'
    case 2n: // PROCESS_CPUTIME_ID
    case 3n: // THREAD_CPUTIME_ID
      return 'cputime'
    case 11n: // TAI
      return 'tai'
    default:
      return undefined
  }
}

/** A wait whose exit the clock watches: how far the clock moves if it times out, and what to put back. */
interface PendingWait {
  timedOut: (result: bigint) => boolean
  /** Relative timeout (ns) or absolute virtual deadline on the clock's `elapsed` scale. */
  advance: { by: bigint } | { to: bigint }
  /** Registers the tracer changed at the entry, put back at the exit. */
  restore?: Readonly<Record<string, bigint>>
  /** Simulated: the wait runs without its timeout, the tracer expires it at its virtual deadline. */
  simulated?: Simulated
}

interface Simulated {
  nr: bigint
  deadline: bigint
  /** What the syscall returns when it times out (0, or -ETIMEDOUT for futex). */
  result: bigint
  /** Writes what the syscall writes when it times out (select's cleared fd sets). */
  onTimeout?: () => void
  /** Writes the time left where select, pselect and ppoll have their timeout, as the kernel does. */
  left?: (ns: bigint) => void
  /** The virtual clock reached the deadline and the tracer interrupted the wait. */
  expired: boolean
}

export class VirtualClock {
  /** Nanoseconds since the first read: the one counter of the process, all threads share it. */
  private elapsed = 0n
  private readonly waits = new Map<number, PendingWait>()
  /** Simulated waits broken off by a stop of all threads: the restarted syscall keeps its deadline. */
  private readonly restarts = new Map<number, { nr: bigint; deadline: bigint }>()

  /** Nanoseconds of virtual time so far: a restore puts them back (snapshot/restore.ts). */
  get elapsedNs(): bigint {
    return this.elapsed
  }

  set elapsedNs(ns: bigint) {
    this.elapsed = ns
  }

  /** The virtual time of a clock kind, in ns, without advancing. */
  private now(kind: Kind): bigint {
    switch (kind) {
      case 'realtime':
        return VIRTUAL_EPOCH_S * NS + this.elapsed
      case 'tai':
        return VIRTUAL_EPOCH_S * NS + TAI_OFFSET + this.elapsed
      case 'monotonic':
        return VIRTUAL_MONOTONIC_S * NS + this.elapsed
      case 'cputime':
        return this.elapsed
    }
  }

  /** One read of the clock: it advances by a step first, so two reads never see the same time. */
  private read(kind: Kind): bigint {
    this.elapsed += CLOCK_STEP_NS
    return this.now(kind)
  }

  /**
   * At a seccomp stop: answers a clock read or a sleep, or watches a timed wait. False for another syscall.
   * `simulate` (the serial schedule, two threads or more): sleeps park the thread and timed waits lose
   * their timeout; each gets a virtual deadline (t.deadline) for expire().
   */
  answerSyscall(t: TracedThread, memory: TraceeMemory, simulate = false): boolean {
    const r = t.regs
    const nr = r.orig_rax
    const writes = (address: bigint, ...words: bigint[]): boolean => write(memory, address, words)
    const restart = this.restarts.get(t.tid)
    this.restarts.delete(t.tid)
    if (simulate && !t.stepping && this.simulate(t, memory, restart?.nr === nr ? restart.deadline : undefined))
      return true
    switch (nr) {
      case SYS.clock_gettime: {
        const kind = clockKind(r.rdi)
        if (!kind) return true // an id the kernel answers (EINVAL, a dynamic clock)
        const ns = this.read(kind)
        return skip(t, writes(r.rsi, ns / NS, ns % NS) ? 0n : -EFAULT)
      }
      case SYS.clock_getres: {
        if (!clockKind(r.rdi)) return true
        return skip(t, r.rsi === 0n || writes(r.rsi, 0n, 1n) ? 0n : -EFAULT)
      }
      case SYS.gettimeofday: {
        const ns = this.read('realtime')
        if (r.rsi !== 0n && !writes(r.rsi, 0n)) return skip(t, -EFAULT) // struct timezone: UTC, two ints
        return skip(t, r.rdi === 0n || writes(r.rdi, ns / NS, (ns % NS) / 1000n) ? 0n : -EFAULT)
      }
      case SYS.time: {
        const s = this.read('realtime') / NS
        return skip(t, r.rdi === 0n || writes(r.rdi, s) ? s : -EFAULT)
      }
      case SYS.times: {
        const cpu = this.read('cputime') / USER_HZ_NS
        const ok = r.rdi === 0n || writes(r.rdi, cpu, 0n, 0n, 0n)
        return skip(t, ok ? this.now('monotonic') / USER_HZ_NS : -EFAULT)
      }
      case SYS.getrusage:
        return this.getrusage(t, memory)
      case SYS.sysinfo:
        return this.sysinfo(t, memory)
      case SYS.nanosleep:
        return this.sleep(t, memory, r.rdi, 'monotonic', false)
      case SYS.clock_nanosleep: {
        const kind = clockKind(r.rdi)
        // THREAD_CPUTIME and other ids the kernel refuses (EINVAL) are left to it
        if (!kind || BigInt.asIntN(32, r.rdi) === 3n) return true
        return this.sleep(t, memory, r.rdx, kind, (r.rsi & 1n) !== 0n)
      }
      case SYS.poll:
        return this.watchMs(t, r.rdx)
      case SYS.epoll_wait:
      case SYS.epoll_pwait:
        return this.watchMs(t, r.r10)
      case SYS.select:
        return this.watchTimeval(t, memory, r.r8)
      case SYS.pselect6:
        return this.watchTimespec(t, memory, r.r8)
      case SYS.ppoll:
        return this.watchTimespec(t, memory, r.rdx)
      case SYS.epoll_pwait2:
        return this.watchTimespec(t, memory, r.r10)
      case SYS.futex:
        return this.watchFutex(t, memory)
      default:
        return false
    }
  }

  /**
   * The virtual clock reached `t`'s deadline (the tracer found no thread that can run): the clock
   * moves there. A parked sleeper returns 0 and is ready (true); a simulated wait is marked expired,
   * and the tracer interrupts it (false): its exit then gives the timeout's result.
   */
  expire(t: TracedThread): boolean {
    const deadline = t.deadline
    t.deadline = undefined
    if (deadline !== undefined && deadline > this.elapsed) this.elapsed = deadline
    if (t.parked) {
      t.parked = false
      skip(t, 0n)
      return true
    }
    const simulated = this.waits.get(t.tid)?.simulated
    if (simulated) simulated.expired = true
    return false
  }

  /** The exit of a timed wait watched at its seccomp stop: a timeout advances the clock by it. */
  syscallExit(t: TracedThread): void {
    const wait = this.waits.get(t.tid)
    if (!wait) return
    const result = t.regs.rax
    const simulated = wait.simulated
    if (simulated) {
      this.waits.delete(t.tid)
      t.deadline = undefined
      const restore = wait.restore ?? {}
      const left = (ns: bigint): void => simulated.left?.(ns)
      if (!INTERRUPTED.has(result)) {
        // woken, or it returned at once: the program sees what the kernel said, and the time left
        left(simulated.deadline > this.elapsed ? simulated.deadline - this.elapsed : 0n)
        t.setRegisters(restore)
      } else if (simulated.expired) {
        simulated.onTimeout?.()
        left(0n)
        t.setRegisters({ ...restore, rax: simulated.result & MASK64 })
      } else {
        // A stop of every thread broke it off: the kernel restarts it, and the restart keeps the deadline.
        t.setRegisters(restore)
        this.restarts.set(t.tid, { nr: simulated.nr, deadline: simulated.deadline })
      }
      return
    }
    if (wait.restore) {
      t.setRegisters(wait.restore)
      delete wait.restore
    }
    if (result === (-ENOSYS & MASK64)) {
      // A syscall-entry stop, after a restart: restart_syscall goes on with the wait (its exit is the one to see).
      if (t.regs.orig_rax === SYS_RESTART_SYSCALL) t.traceExit = true
      else this.waits.delete(t.tid)
      return
    }
    if (result === (-ERESTART_RESTARTBLOCK & MASK64)) {
      // Interrupted (a ptrace interrupt, a signal): restart_syscall follows, whose entry comes first.
      t.traceExit = true
      return
    }
    this.waits.delete(t.tid)
    if (!wait.timedOut(result)) return
    if ('by' in wait.advance) this.elapsed += wait.advance.by
    else if (wait.advance.to > this.elapsed) this.elapsed = wait.advance.to
  }

  /** A SIGSEGV at rdtsc or rdtscp (TSC faulting is on): the virtual clock's ns, as a 1 GHz counter. */
  emulateRdtsc(t: TracedThread, memory: TraceeMemory): boolean {
    return emulateTimestamp(t, memory, () => this.read('monotonic'))
  }

  /**
   * At exec, before the dynamic loader runs: each time function of the vDSO becomes a plain syscall
   * (`mov eax, NR; syscall; ret`), which the seccomp filter stops. libc, or a runtime that reads the
   * vDSO itself (Go), still finds the vDSO where the kernel put it, so the layout of the process is
   * that of a run without procsnap. Should the image not read as expected, the vDSO is hidden
   * instead: its auxv entry becomes AT_IGNORE (libc then makes syscalls, but ld.so lays out memory
   * differently without the vDSO's link map). `stack`: the new program's stack pointer, or its
   * auxiliary vector as already read from there.
   */
  patchVdso(stack: bigint | StackAuxv, memory: TraceeMemory): void {
    const auxv = typeof stack === 'bigint' ? readStackAuxv(memory, stack) : stack
    const found = auxv && auxvLookup(auxv.bytes, AT_SYSINFO_EHDR)
    if (!auxv || !found) return
    if (patchTimeFunctions(memory, found.value)) return
    write(memory, auxv.address + 16n * BigInt(found.index), [AT_IGNORE])
  }

  /**
   * Virtual time for a sleep or a timed wait at its seccomp stop; false when the syscall is none of
   * those (or has no timeout, or one already over): the usual handling then applies.
   */
  private simulate(t: TracedThread, memory: TraceeMemory, kept: bigint | undefined): boolean {
    const r = t.regs
    const nr = r.orig_rax
    const timespec = (pointer: bigint): bigint | undefined =>
      pointer === 0n ? undefined : readTimespec(memory, pointer)
    const zero =
      (...blocks: [bigint, number][]) =>
      () => {
        for (const [address, words] of blocks)
          if (address !== 0n && words > 0) write(memory, address, new Array<bigint>(words).fill(0n))
      }
    /** Writes the time left at `address`: a timespec, or a timeval. */
    const left =
      (address: bigint, timeval: boolean) =>
      (ns: bigint): void => {
        write(memory, address, [ns / NS, timeval ? (ns % NS) / 1000n : ns % NS])
      }
    /** A wait without its timeout (`untimed`: the registers that say so), expired at `deadline`. */
    const wait = (
      relative: bigint | undefined,
      untimed: Record<string, bigint>,
      result = 0n,
      onTimeout?: () => void,
      left?: (ns: bigint) => void,
    ): boolean => {
      if (relative === undefined || relative <= 0n) return false
      const deadline = kept ?? this.elapsed + relative
      const restore = Object.fromEntries(Object.keys(untimed).map((k) => [k, r[k as 'rax']]))
      t.setRegisters(untimed)
      t.deadline = deadline
      this.watch(t, {
        timedOut: () => false,
        advance: { by: 0n },
        restore,
        simulated: { nr, deadline, result, onTimeout, left, expired: false },
      })
      return true
    }
    const park = (request: bigint, kind: Kind, absolute: boolean): boolean => {
      const ts = readTimespec(memory, request)
      if (ts === undefined) return false
      const remaining = absolute ? ts - this.now(kind) : ts
      if (remaining <= 0n) return false
      t.deadline = kept ?? this.elapsed + remaining
      t.parked = true
      return true
    }
    const ms = (timeout: bigint): bigint => BigInt.asIntN(32, timeout) * 1_000_000n
    switch (nr) {
      case SYS.nanosleep:
        return park(r.rdi, 'monotonic', false)
      case SYS.clock_nanosleep: {
        const kind = clockKind(r.rdi)
        if (!kind || BigInt.asIntN(32, r.rdi) === 3n) return false
        return park(r.rdx, kind, (r.rsi & 1n) !== 0n)
      }
      case SYS.poll:
        return wait(ms(r.rdx), { rdx: MASK64 })
      case SYS.epoll_wait:
      case SYS.epoll_pwait:
        return wait(ms(r.r10), { r10: MASK64 })
      case SYS.epoll_pwait2:
        return wait(timespec(r.r10), { r10: 0n })
      case SYS.ppoll:
        return wait(timespec(r.rdx), { rdx: 0n }, 0n, undefined, left(r.rdx, false))
      case SYS.select:
      case SYS.pselect6: {
        // On a timeout the kernel clears the fd sets and writes the time left (none) back.
        const nfds = BigInt.asUintN(32, r.rdi)
        const words = Number(((nfds < MAX_FDS ? nfds : MAX_FDS) + 63n) / 64n)
        const sets = zero([r.rsi, words], [r.rdx, words], [r.r10, words])
        const timeval = nr === SYS.select
        if (!timeval) return wait(timespec(r.r8), { r8: 0n }, 0n, sets, left(r.r8, false))
        const [s, us] = (r.r8 === 0n ? undefined : read64(memory, r.r8, 2)) ?? []
        if (s === undefined || us === undefined || s < 0n || us < 0n || us >= 1_000_000n) return false
        return wait(s * NS + us * 1000n, { r8: 0n }, 0n, sets, left(r.r8, true))
      }
      case SYS.futex: {
        const op = r.rsi & 0x7fn
        // FUTEX_WAIT (relative) and FUTEX_WAIT_BITSET (absolute); the PI ops keep the usual handling
        if (op !== 0n && op !== 9n) return false
        const ts = timespec(r.r10)
        if (ts === undefined) return false
        const kind: Kind = (r.rsi & 0x100n) !== 0n ? 'realtime' : 'monotonic'
        return wait(op === 0n ? ts : ts - this.now(kind), { r10: 0n }, -ETIMEDOUT)
      }
      default:
        return false
    }
  }

  private getrusage(t: TracedThread, memory: TraceeMemory): boolean {
    const who = BigInt.asIntN(32, t.regs.rdi)
    if (who !== 0n && who !== -1n && who !== 1n) return true // EINVAL from the kernel
    // SELF and THREAD: all the CPU time is user time; CHILDREN: none (the virtual clock is this process's).
    const cpu = who === -1n ? 0n : this.read('cputime')
    const usage = [cpu / NS, (cpu % NS) / 1000n, ...new Array<bigint>(16).fill(0n)]
    return skip(t, write(memory, t.regs.rsi, usage) ? 0n : -EFAULT)
  }

  /**
   * sysinfo(2) describes one fixed machine: the virtual clock's uptime, no load, SYSINFO_RAM of memory
   * of which half is free, no swap, one process. Programs that size buffers by free memory (sort)
   * then do the same on every machine and every run.
   */
  private sysinfo(t: TracedThread, memory: TraceeMemory): boolean {
    const uptime = this.read('monotonic') / NS
    // struct sysinfo on x86_64, 14 words: uptime, loads[3], totalram, freeram, sharedram, bufferram,
    // totalswap, freeswap, procs (u16, padded), totalhigh, freehigh, mem_unit (u32, padded)
    const info = [uptime, 0n, 0n, 0n, SYSINFO_RAM, SYSINFO_RAM / 2n, 0n, 0n, 0n, 0n, 1n, 0n, 0n, 1n]
    return skip(t, write(memory, t.regs.rdi, info) ? 0n : -EFAULT)
  }

  /**
   * nanosleep and clock_nanosleep sleep for real; the clock advances by the time asked once they
   * return 0. An absolute deadline, computed from the virtual clock, becomes the same relative sleep.
   */
  private sleep(t: TracedThread, memory: TraceeMemory, request: bigint, kind: Kind, absolute: boolean): boolean {
    const ts = readTimespec(memory, request)
    if (ts === undefined) return true // EFAULT or EINVAL from the kernel
    const done = (rax: bigint): boolean => rax === 0n
    if (!absolute) {
      if (ts > 0n) this.watch(t, { timedOut: done, advance: { by: ts } })
      return true
    }
    const remaining = ts - this.now(kind)
    if (remaining <= 0n) return skip(t, 0n) // a deadline already past: the kernel returns at once too
    const r = t.regs
    const scratch = (r.rsp - SCRATCH_BELOW_SP) & ~15n
    if (t.stepping || !write(memory, scratch, [remaining / NS, remaining % NS])) return true
    const restore = { rsi: r.rsi, rdx: r.rdx, r10: r.r10 }
    // flags without TIMER_ABSTIME, the scratch timespec, and no remainder to write back (an absolute sleep has none)
    t.setRegisters({ rsi: r.rsi & ~1n, rdx: scratch, r10: 0n })
    this.watch(t, { timedOut: done, advance: { to: this.elapsed + remaining }, restore })
    return true
  }

  /** poll and epoll_wait: a timeout in milliseconds, negative for none. */
  private watchMs(t: TracedThread, timeout: bigint): boolean {
    const ms = BigInt.asIntN(32, timeout)
    if (ms > 0n) this.watch(t, { timedOut: (rax) => rax === 0n, advance: { by: ms * 1_000_000n } })
    return true
  }

  private watchTimespec(t: TracedThread, memory: TraceeMemory, pointer: bigint): boolean {
    const ns = pointer === 0n ? undefined : readTimespec(memory, pointer)
    if (ns) this.watch(t, { timedOut: (rax) => rax === 0n, advance: { by: ns } })
    return true
  }

  private watchTimeval(t: TracedThread, memory: TraceeMemory, pointer: bigint): boolean {
    const words = pointer === 0n ? undefined : read64(memory, pointer, 2)
    const [s, us] = words ?? [0n, 0n]
    const ns = s !== undefined && us !== undefined && s >= 0n && us >= 0n ? s * NS + us * 1000n : 0n
    if (ns > 0n) this.watch(t, { timedOut: (rax) => rax === 0n, advance: { by: ns } })
    return true
  }

  /**
   * futex with a timeout. FUTEX_WAIT's is relative; the others' is an absolute time that the program
   * computed from the virtual clock: it is given to the kernel as the same distance from the real
   * clock, in a timespec written below the red zone (r10 points to it until the exit).
   */
  private watchFutex(t: TracedThread, memory: TraceeMemory): boolean {
    const r = t.regs
    const op = r.rsi & 0x7fn
    // FUTEX_WAIT, then the ops whose timeout is absolute: the others' fourth argument is no timeout
    if (op !== 0n && op !== 9n && op !== 11n && op !== 6n && op !== 13n) return true
    const timedOut = (rax: bigint): boolean => rax === (-ETIMEDOUT & MASK64)
    const ts = readTimespec(memory, r.r10)
    if (ts === undefined) return true
    if (op === 0n) {
      if (ts > 0n) this.watch(t, { timedOut, advance: { by: ts } })
      return true
    }
    // FUTEX_LOCK_PI counts on CLOCK_REALTIME; WAIT_BITSET, WAIT_REQUEUE_PI, LOCK_PI2 on MONOTONIC unless FUTEX_CLOCK_REALTIME
    const realtime = op === 6n || (r.rsi & 0x100n) !== 0n
    const kind: Kind = realtime ? 'realtime' : 'monotonic'
    const remaining = ts - this.now(kind)
    const real =
      (realtime ? BigInt(Date.now()) * 1_000_000n : process.hrtime.bigint()) + (remaining > 0n ? remaining : 0n)
    const scratch = (r.rsp - SCRATCH_BELOW_SP) & ~15n
    if (t.stepping || !write(memory, scratch, [real / NS, real % NS])) return true
    const restore = { r10: r.r10 }
    t.setRegisters({ r10: scratch })
    this.watch(t, { timedOut, advance: { to: this.elapsed + remaining }, restore })
    return true
  }

  private watch(t: TracedThread, wait: PendingWait): void {
    this.waits.set(t.tid, wait)
    t.traceExit = true
  }
}

/** The vDSO's clock functions and the syscall each becomes. */
const VDSO_FUNCTIONS: readonly (readonly [string, number])[] = [
  ['__vdso_clock_gettime', 228],
  ['__vdso_gettimeofday', 96],
  ['__vdso_time', 201],
  ['__vdso_clock_getres', 229],
]
const ENDBR64 = [0xf3, 0x0f, 0x1e, 0xfa]
/** Largest vDSO image read (they are 8 KiB on x86_64). */
const MAX_VDSO = 1 << 16

/** Rewrites the vDSO at `base` (its ELF header, from AT_SYSINFO_EHDR); false if it does not look as expected. */
function patchTimeFunctions(memory: TraceeMemory, base: bigint): boolean {
  const header = new Uint8Array(64)
  try {
    memory.readRaw(base, header)
    const view = new DataView(header.buffer)
    // the image ends with its section headers: e_shoff + e_shnum * e_shentsize
    const size = Number(view.getBigUint64(0x28, true)) + view.getUint16(0x3c, true) * view.getUint16(0x3a, true)
    if (size <= 64 || size > MAX_VDSO) return false
    const image = new Uint8Array(size)
    memory.readRaw(base, image)
    const patched = patchedSpan(image)
    if (!patched) return false
    memory.writeRaw(base + BigInt(patched.offset), patched.bytes)
    return true
  } catch {
    return false
  }
}

/** The bytes from the first patched one to the last, the patches applied: one write. */
interface PatchedSpan {
  offset: number
  bytes: Uint8Array
}

/** The last vDSO image seen and its patched span: every process of this boot maps the same image. */
let lastVdso: { image: Uint8Array; span: PatchedSpan | undefined } | undefined

/** The image's patched span, parsed once per image seen (a parse costs more than the rest of an exec's handling). */
function patchedSpan(image: Uint8Array): PatchedSpan | undefined {
  if (lastVdso && Buffer.compare(lastVdso.image, image) === 0) return lastVdso.span
  const patches = parseVdsoPatches(image)
  let span: PatchedSpan | undefined
  if (patches && patches.length > 0) {
    const offset = Math.min(...patches.map(([at]) => at))
    const end = Math.max(...patches.map(([at, code]) => at + code.length))
    const bytes = image.slice(offset, end)
    for (const [at, code] of patches) bytes.set(code, at - offset)
    span = { offset, bytes }
  }
  lastVdso = { image, span }
  return span
}

/** The code to write over each clock function of a vDSO image, at its offset; undefined if one is missing or too small. */
function parseVdsoPatches(image: Uint8Array): [number, Uint8Array][] | undefined {
  const elf = parseImage(image, '[vdso]')
  const patches: [number, Uint8Array][] = []
  for (const [name, nr] of VDSO_FUNCTIONS) {
    const symbol = elf.findSymbol(name)
    if (!symbol) return undefined
    const at = Number(symbol.value - elf.minLoadVaddr)
    // an endbr64 stays first, for indirect-branch tracking
    const skip = ENDBR64.every((b, k) => image[at + k] === b) ? 4 : 0
    const code = Uint8Array.of(0xb8, nr & 0xff, nr >> 8, 0, 0, 0x0f, 0x05, 0xc3)
    if (symbol.size < BigInt(skip + code.length) || at + skip + code.length > image.length) return undefined
    patches.push([at + skip, code])
  }
  return patches
}

/** Skips the syscall at its seccomp stop with `result` (a negative errno for a failure). */
function skip(t: TracedThread, result: bigint): true {
  t.setRegisters({ orig_rax: NO_SYSCALL, rax: result & MASK64 })
  return true
}

function write(memory: TraceeMemory, address: bigint, words: readonly bigint[]): boolean {
  const bytes = new Uint8Array(8 * words.length)
  const view = new DataView(bytes.buffer)
  words.forEach((w, i) => view.setBigUint64(8 * i, w & MASK64, true))
  try {
    memory.writeRaw(address, bytes)
    return true
  } catch {
    return false
  }
}

function read64(memory: TraceeMemory, address: bigint, count: number): bigint[] | undefined {
  const bytes = new Uint8Array(8 * count)
  try {
    memory.readRaw(address, bytes)
  } catch {
    return undefined
  }
  const view = new DataView(bytes.buffer)
  return Array.from({ length: count }, (_, i) => view.getBigInt64(8 * i, true))
}

/** A valid timespec's nanoseconds, or undefined (unreadable, negative, tv_nsec out of range). */
function readTimespec(memory: TraceeMemory, address: bigint): bigint | undefined {
  const [s, ns] = read64(memory, address, 2) ?? []
  if (s === undefined || ns === undefined || s < 0n || ns < 0n || ns >= NS) return undefined
  return s * NS + ns
}
