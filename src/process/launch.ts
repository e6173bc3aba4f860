// launch(): check the binary, spawn the launcher with the tracee's stdio and environment,
// seize it, let it exec the target, and stop at the program's entry point.
import { existsSync, readFileSync, realpathSync } from 'node:fs'
import { BinaryError, IsolationError, ProcsnapError, PtraceError } from '../errors.js'
import {
  arrayOf,
  checkOptions,
  either,
  integerIn,
  isBoolean,
  isBytes,
  isFunction,
  isNonEmptyString,
  isString,
  isTimeout,
  isUndefined,
  oneOf,
  recordOf,
  type OptionSchema,
} from '../options.js'
import { hostArch, type Arch } from '../native/arch/index.js'
import { ERRNO, PTRACE_O, SIG, errnoName } from '../native/constants.js'
import { lastErrno, sys } from '../native/libc.js'
import { withNamespaces } from '../native/namespaces.js'
import { ptraceCont, ptraceSeize, sendSignal, waitBlocking } from '../native/ptrace.js'
import { CLOCK_SYSCALLS, TRAPPED_SYSCALLS, launcherMessage } from '../native/seccomp.js'
import { spawnLauncher, type SpawnRequest } from '../native/spawn.js'
import { checkBinary, resolveBinary } from './binary.js'
import { enterNamespaces, IsolationPlan, type Isolation } from './isolate.js'
import { pinThread, spawnOnThisCpu, unpinThread } from './pinning.js'
import { Process } from './process.js'
import type { Schedule } from './schedule.js'
import { track } from './registry.js'
import { startNaps, stopNaps } from './waiter.js'
import { MAX_OUTPUT_LIMIT, Stdio, type OutputListener, type OutputMode } from './stdio.js'

export interface LaunchOptions {
  /** Arguments after argv[0]. */
  args?: readonly string[]
  /** argv[0]; default: the path as given. */
  argv0?: string
  /** Fed to the process's stdin, which is then closed. Default: /dev/null. */
  stdin?: string | Uint8Array
  /** Variables added to (or, with undefined, removed from) the base environment. */
  env?: Readonly<Record<string, string | undefined>>
  /**
   * Base environment: false (default) is a small fixed one, the same on every machine, so that
   * stack addresses do not move with the caller's environment; true is this process's env.
   */
  inheritEnv?: boolean
  /** Working directory of the process; default: this process's cwd. */
  cwd?: string
  /** Address space randomization; default false: the same addresses on every run. */
  aslr?: boolean
  /**
   * Give the program the same randomness on every run, so that two runs' memory compares equal:
   * the 16 AT_RANDOM bytes (stack canary, pointer guard) are a fixed pattern, getrandom() returns a
   * fixed stream, and the time-stamp counter the dynamic loader reads before the entry point counts
   * from 0. Default true; false leaves the kernel's randomness alone.
   */
  fixedRandom?: boolean
  /**
   * 'virtual' (default): the program and its children read a deterministic clock, the same on every
   * run. Every read (clock_gettime of any clock, gettimeofday, time, times, getrusage, rdtsc, rdtscp;
   * the vDSO's clock functions become syscalls) advances it by 1 ms from 2000-01-01T00:00:00Z
   * (monotonic clocks from 1 s). Sleeps take their real time and advance it by the time asked; a
   * poll, select, epoll or futex wait that times out advances it by its timeout. sysinfo(2) reports
   * the virtual uptime and a fixed machine (8 GiB of memory, 4 GiB free, no swap, no load), so that
   * programs sizing buffers by free memory (sort) behave the same everywhere. 'simulated': the
   * same clock, and under the serial schedule, while the process has two threads or more, sleeps and
   * timed waits run on virtual time instead (not executed / without their timeout, they expire when
   * no thread can run, earliest deadline first): for programs that do not wait on the outside world
   * (a child, a socket) with a timeout, which would then fire at once. 'real' leaves the kernel's clocks alone.
   */
  clock?: 'virtual' | 'real' | 'simulated'
  /** Milliseconds for every wait (launch, cont, step, ...); default 5000. */
  timeout?: number
  /**
   * Where the program's stdout goes. 'pty' (default) captures into proc.stdout through a
   * pseudo-terminal of its own (raw, 80x24), as a debugger runs a program: glibc then flushes
   * stdout at each newline, so what was printed before a crash is captured; the program sees a
   * terminal (isatty is true). 'pipe' captures through a pipe (stdout is then fully buffered by
   * glibc). 'inherit' shares this process's; 'ignore' discards. When no pty can be made here, the
   * default falls back to a pipe (see proc.stdioModes) and an explicit 'pty' throws PtyError.
   */
  stdout?: OutputMode
  /** Where stderr goes, as for stdout, on a pty of its own: proc.stderr stays apart from proc.stdout. */
  stderr?: OutputMode
  /**
   * Bytes kept of each captured stream (stdout and stderr apart): proc.stdout is the newest part,
   * cut to start on a whole UTF-8 character, and proc.outputDropped counts the bytes dropped from
   * the front. Default 16 MiB; at most buffer.constants.MAX_STRING_LENGTH, so the text always fits
   * in a string.
   */
  outputLimit?: number
  /** Given every chunk the captured streams read, in order, dropped ones included: for the whole output. */
  onOutput?: OutputListener
  /**
   * Run the tracee on the CPU of the calling JS thread, and keep that thread there while the
   * tracee lives: breakpoint round trips become same-CPU switches (several times faster on
   * small VMs). Default false.
   */
  pin?: boolean
  /**
   * Step over a breakpoint on a simple instruction (push, endbr64, nop, mov rbp,rsp: most function
   * entries) by executing it in the tracer instead of single-stepping the thread, as the kernel's
   * uprobes do. Default true; false always single-steps (the classic restore-step-reinsert).
   */
  emulateStepOver?: boolean
  /**
   * How the threads of a multi-threaded program run. 'serial' (default): one at a time, switched at
   * deterministic points (a syscall that blocks, sched_yield, a thread's exit, a stop), so the same
   * thread reaches the same breakpoint first in every run. 'free': all at once, as the kernel schedules them.
   */
  schedule?: Schedule
  /**
   * Run the program in new user, PID, UTS and mount namespaces, so that what it reads of its
   * surroundings is the same for every user and machine: uid and gid 0, pid 2 (a small init is pid
   * 1), hostname 'procsnap', its working directory at /tmp/procsnap (a bind mount of the real one)
   * and so its own path too when the binary lies under it. Default true; where the system refuses
   * namespaces the default runs the program without them (see proc.isolation, a warning once) and
   * an explicit true throws IsolationError.
   */
  isolate?: boolean
  /**
   * 'snapshot': when the program stops at a fatal signal (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT,
   * SIGTRAP, SIGSYS, with no handler of its own for it), a 'writable' snapshot is taken before the
   * signal is delivered, and `proc.crash` holds it with its crash report (crashReport). Default: none.
   */
  crash?: 'snapshot'
}

/** What each launch option accepts, checked at run time (ERR_BAD_OPTION). */
const LAUNCH_OPTIONS: OptionSchema = {
  args: arrayOf(isString),
  argv0: isString,
  stdin: either(isString, isBytes),
  env: recordOf(either(isString, isUndefined)),
  inheritEnv: isBoolean,
  cwd: isNonEmptyString,
  aslr: isBoolean,
  fixedRandom: isBoolean,
  clock: oneOf('virtual', 'real', 'simulated'),
  timeout: isTimeout,
  stdout: oneOf('pty', 'pipe', 'inherit', 'ignore'),
  stderr: oneOf('pty', 'pipe', 'inherit', 'ignore'),
  outputLimit: integerIn(0, MAX_OUTPUT_LIMIT, 'bytes'),
  onOutput: isFunction,
  pin: isBoolean,
  emulateStepOver: isBoolean,
  schedule: oneOf('serial', 'free'),
  isolate: isBoolean,
  crash: oneOf('snapshot'),
}

/** The default environment: fixed, so goldens do not depend on who runs the tests. */
export const DEFAULT_ENV: Readonly<Record<string, string>> = {
  PATH: '/usr/local/bin:/usr/bin:/bin',
  LANG: 'C',
  LC_ALL: 'C',
  // Resolve every PLT slot at load time: lazy binding rewrites the GOT while the program runs.
  LD_BIND_NOW: '1',
  // No restartable sequences: the kernel writes the current CPU number into every thread's rseq area.
  GLIBC_TUNABLES: 'glibc.pthread.rseq=0',
}

// Every descendant stays traced, those of vfork (posix_spawn, system) too: see family.ts.
const SEIZE_OPTIONS =
  PTRACE_O.TRACESYSGOOD |
  PTRACE_O.TRACECLONE |
  PTRACE_O.TRACEEXEC |
  PTRACE_O.TRACEFORK |
  PTRACE_O.TRACEVFORK |
  PTRACE_O.TRACESECCOMP |
  PTRACE_O.EXITKILL

function buildEnv(options: LaunchOptions): string[] {
  const base: Record<string, string | undefined> = options.inheritEnv ? { ...process.env } : { ...DEFAULT_ENV }
  for (const [k, v] of Object.entries(options.env ?? {})) base[k] = v
  return Object.entries(base)
    .filter((e): e is [string, string] => e[1] !== undefined)
    .map(([k, v]) => `${k}=${v}`)
}

/** A close-on-exec pipe; on failure, `undo` releases what was opened before it (the stdio's fds). */
function pipe(undo: () => void): [number, number] {
  const fds = new Int32Array(2)
  if (sys.pipe2(fds, 0o2000000) !== 0) {
    const errno = lastErrno()
    undo()
    throw new PtraceError('ERR_SPAWN_FAILED', errno, `pipe2 failed (${errnoName(errno)}): too many open files?`)
  }
  return [fds[0] ?? -1, fds[1] ?? -1]
}

/** What the strict Yama settings mean for a tracer. */
const SCOPE_MEANING: Readonly<Record<string, string>> = {
  '2': ' (only CAP_SYS_PTRACE may trace: run as root or grant the capability)',
  '3': ' (no process may trace: it cannot be lowered without a reboot)',
}

/** Why the kernel refused PTRACE_SEIZE, and what to change (Yama, a container's capability): launch's and attach's. */
export function deniedMessage(errno: number): string {
  const scopeFile = '/proc/sys/kernel/yama/ptrace_scope'
  const scope = existsSync(scopeFile) ? readFileSync(scopeFile, 'latin1').trim() : undefined
  const scopeHint =
    scope === undefined
      ? 'Yama is not active here, so the refusal comes from elsewhere'
      : `kernel.yama.ptrace_scope is ${scope}${SCOPE_MEANING[scope] ?? ''}`
  return (
    `The kernel refused to trace the process (PTRACE_SEIZE: ${errnoName(errno)}). ${scopeHint}. ` +
    'In a container, add the capability (docker run --cap-add=SYS_PTRACE) and make sure the seccomp profile allows ptrace; ' +
    'on a host, set kernel.yama.ptrace_scope to 0 or 1 (sysctl -w kernel.yama.ptrace_scope=1).'
  )
}

/** Launches a binary under ptrace, stopped at its entry point (before main, after the dynamic loader). */
export async function launch(file: string, options: LaunchOptions = {}): Promise<Process> {
  if (typeof file !== 'string' || file === '')
    throw new ProcsnapError(
      'ERR_BAD_ARGUMENT',
      `launch takes the path of a binary (a non-empty string), not ${file === '' ? 'an empty string' : typeof file}.`,
    )
  checkOptions('launch', options, LAUNCH_OPTIONS)
  const arch = hostArch()
  const resolved = resolveBinary(file)
  checkBinary(resolved, arch)
  const fixedRandom = options.fixedRandom ?? true
  const clockMode = options.clock ?? 'virtual'
  const virtualClock = clockMode !== 'real'
  const path = realpathSync.native(resolved)
  const cwd = options.cwd ?? process.cwd()
  if (!existsSync(cwd))
    throw new BinaryError(
      'ERR_FILE_NOT_FOUND',
      cwd,
      `The working directory ${cwd} does not exist. Create it or pass another { cwd }.`,
    )
  const timeout = options.timeout ?? 5000
  const stdio = new Stdio({
    stdin: options.stdin,
    stdout: options.stdout,
    stderr: options.stderr,
    outputLimit: options.outputLimit,
    onOutput: options.onOutput,
  })
  const pinned = options.pin === true && pinThread()
  // fixedRandom and the virtual clock stop the program at every rdtsc the loader runs before main: round
  // trips that cost far less on one CPU, so tracer and tracee share one until the entry point (see
  // Process.start). Not for isolate's handshake alone: one CPU slows the loader's work for 100
  // libraries and more (+0.5 to +2 ms) more than it speeds the handshake (-0.3 ms).
  const startupPinned = !pinned && (fixedRandom || virtualClock) && pinThread()
  // Until then, waits sleep in the kernel until a stop's SIGCHLD (waiter.ts): no spin keeps the CPU
  // from the tracee (an isolated one is in a scheduling group of its own), no stop waits for a timer.
  const sharedCpu = pinned || startupPinned
  if (sharedCpu) startNaps()
  const release = (): void => {
    stdio.close()
    if (sharedCpu) {
      unpinThread()
      stopNaps()
    }
  }
  const request: LauncherRequest = {
    path,
    argv: [options.argv0 ?? file, ...(options.args ?? [])],
    env: buildEnv(options),
    cwd: options.cwd,
    stdin: stdio.childFds[0],
    stdout: stdio.childFds[1],
    stderr: stdio.childFds[2],
    aslr: options.aslr ?? false,
    arch: arch.name,
  }
  // The launcher's go message; with fixedRandom or the virtual clock it also installs the seccomp filter and rdtsc faulting.
  const message = goMessage(fixedRandom, virtualClock)
  const isolated = await startIsolated(
    request,
    message,
    options.isolate,
    cwd,
    arch,
    timeout,
    release,
    SEIZE_OPTIONS,
    pinned || startupPinned,
  )
  const launcher = isolated.entered ? undefined : spawnSeized(isolated.request, release, SEIZE_OPTIONS)
  const pid = isolated.entered?.target ?? launcher?.pid ?? -1
  const group = isolated.entered?.init ?? pid
  stdio.started()
  const plan = isolated.plan
  const proc = new Process({
    pid,
    group,
    path: isolated.request.path,
    argv: isolated.request.argv,
    arch,
    timeout,
    stdio,
    pinned,
    emulateStepOver: options.emulateStepOver ?? true,
    crash: options.crash,
    schedule: options.schedule ?? 'serial',
    aslr: options.aslr ?? false,
    fixedRandom,
    virtualClock,
    simulatedTime: clockMode === 'simulated',
    startupPinned,
    isolation: isolated.isolation,
    hostPath: plan ? (p) => plan.outside(p) : undefined,
  })
  track(pid, proc, group)
  if (launcher) {
    sys.write(launcher.goWrite, message, message.length)
    sys.close(launcher.goWrite)
  } else ptraceCont(pid, 0) // the target, at its first stop after the init's fork
  try {
    await proc.start()
  } catch (error) {
    await proc.kill()
    throw error
  }
  return proc
}

type LauncherRequest = Omit<SpawnRequest, 'goFd'>

/** The go messages built so far, by fixedRandom and virtualClock: the filter is the same for every launch. */
const goMessages = new Map<string, Uint8Array>()

function goMessage(fixedRandom: boolean, virtualClock: boolean): Uint8Array {
  const key = `${fixedRandom}/${virtualClock}`
  let message = goMessages.get(key)
  if (!message) {
    const trapped = [...(fixedRandom ? TRAPPED_SYSCALLS : []), ...(virtualClock ? CLOCK_SYSCALLS : [])]
    message = launcherMessage(fixedRandom || virtualClock, trapped)
    goMessages.set(key, message)
  }
  return message
}

/** Spawns the launcher and seizes it; on failure, `release` frees the launch's resources and it throws. */
function spawnSeized(request: LauncherRequest, release: () => void, seize: number): { pid: number; goWrite: number } {
  const [goRead, goWrite] = pipe(release)
  const pid = spawnOnThisCpu(() => spawnLauncher({ ...request, goFd: goRead }))
  sys.close(goRead)
  if (pid < 0) {
    sys.close(goWrite)
    release()
    throw new PtraceError('ERR_SPAWN_FAILED', -pid, `posix_spawn failed (${errnoName(-pid)}) for ${request.path}.`)
  }
  const seized = ptraceSeize(pid, seize)
  if (seized !== 0) {
    sys.close(goWrite)
    sendSignal(pid, SIG.KILL)
    while (waitBlocking(pid)) {
      // reap the launcher
    }
    release()
    throw new PtraceError(
      seized === ERRNO.EPERM || seized === ERRNO.EACCES ? 'ERR_PTRACE_DENIED' : 'ERR_PTRACE',
      seized,
      deniedMessage(seized),
    )
  }
  return { pid, goWrite }
}

/** Why isolation was not tried or failed in this thread: later default launches skip it. */
let refusal: string | undefined

interface IsolatedStart {
  /** The request as the program sees it (its path and argv[0] under the inner cwd), or unchanged. */
  request: LauncherRequest
  isolation: Isolation
  plan?: IsolationPlan
  /** The init and the target, stopped at its first stop, when the namespaces were made. */
  entered?: { init: number; target: number }
}

/**
 * launch's isolate: spawns the launcher with the namespace setup and follows it to the target.
 * Where the system refuses, an explicit `isolate: true` throws IsolationError and the default
 * records why (proc.isolation), warns once and lets the caller launch without namespaces.
 */
async function startIsolated(
  request: LauncherRequest,
  message: Uint8Array,
  isolate: boolean | undefined,
  cwd: string,
  arch: Arch,
  timeout: number,
  release: () => void,
  seize: number,
  oneCpu: boolean,
): Promise<IsolatedStart> {
  if (isolate === false) return { request, isolation: { isolated: false, reason: 'isolate: false' } }
  if (isolate === undefined && refusal !== undefined)
    return { request, isolation: { isolated: false, reason: refusal } }
  let plan: IsolationPlan
  let go: Uint8Array
  try {
    plan = new IsolationPlan(cwd)
    go = withNamespaces(message, plan.setup)
  } catch (error) {
    release() // a cwd that vanished meanwhile, a NUL byte in its path
    throw error
  }
  const inside = {
    ...request,
    path: plan.inside(request.path),
    argv: request.argv.map((a, i) => (i === 0 ? plan.inside(a) : a)),
  }
  const launcher = spawnSeized(inside, release, seize)
  sys.write(launcher.goWrite, go, go.length)
  sys.close(launcher.goWrite)
  const result = await enterNamespaces(launcher.pid, arch, performance.now() + timeout, oneCpu)
  if (!('refused' in result)) return { request: inside, isolation: plan.isolation, plan, entered: result }
  if (result.errno === 0) {
    // Not a refusal of the system (the launcher vanished, or the setup outran the deadline): no fallback.
    release()
    throw new PtraceError(
      'ERR_SPAWN_FAILED',
      0,
      `Starting ${request.path} in new namespaces failed: ${result.refused}.`,
    )
  }
  if (isolate === true) {
    release()
    throw new IsolationError(
      result.errno,
      `The program cannot run in new namespaces here: ${result.refused}. Launch with { isolate: false } to run it without them.`,
    )
  }
  refusal = result.refused
  warnFallback(refusal)
  return { request, isolation: { isolated: false, reason: refusal } }
}

let warnedFallback = false

function warnFallback(reason: string): void {
  if (warnedFallback) return
  warnedFallback = true
  process.emitWarning(
    `procsnap: the program cannot run in new namespaces here (${reason}), so it sees this machine's ` +
      `uid, pids, hostname and working directory: goldens may differ between machines. Pass ` +
      `{ isolate: false } to launch() to say so and silence this warning.`,
    { code: 'PROCSNAP_ISOLATION_FALLBACK' },
  )
}
