// launch's isolate: the program runs in new user, PID, UTS and mount namespaces, so that what it
// reads of its surroundings (its ids, pid, hostname, working directory, its own path) is the same
// for every user, machine and project path. The launcher clones an init (pid 1 inside, a child of
// the tracer) that forks the target (pid 2); the tracer follows both forks and detaches the init.
import { mkdirSync, realpathSync } from 'node:fs'
import type { Arch } from '../native/arch/index.js'
import { ERRNO, PTRACE_EVENT, SIG, errnoName, wStopSig, wPtraceEvent, wifStopped } from '../native/constants.js'
import { NAMESPACE_STEPS, type NamespaceSetup } from '../native/namespaces.js'
import { ptraceCont, ptraceDetach, ptraceEventMsg, sendSignal } from '../native/ptrace.js'
import { SPIN_MS, Waiter } from './waiter.js'

/** What the program sees of its surroundings, or why it sees the real ones (proc.isolation). */
export type Isolation =
  | {
      readonly isolated: true
      /** Its uid and gid (root of its own user namespace, mapped to whoever runs the tests). */
      readonly uid: number
      readonly gid: number
      /** Its pid: 2, as the child of a small init that is pid 1. */
      readonly pid: number
      readonly hostname: string
      /** Its working directory: the real one bind-mounted at a fixed path, or '/' when that was the cwd. */
      readonly cwd: string
    }
  | {
      readonly isolated: false
      /** 'isolate: false', or the step the system refused and why. */
      readonly reason: string
    }

/** Where the working directory appears inside. */
export const INNER_CWD = '/tmp/procsnap'
export const INNER_HOSTNAME = 'procsnap'
/** The kernel's own value for "no NIS domain". */
const INNER_DOMAIN = '(none)'
const INNER_ID = 0
/** The target is the init's first child. */
const INNER_PID = 2

/** How the real working directory and paths under it map to what the program sees. */
export class IsolationPlan {
  readonly setup: NamespaceSetup
  /** The real working directory, symlinks resolved (what the bind mount shows). */
  readonly outerCwd: string
  readonly innerCwd: string

  constructor(cwd: string) {
    this.outerCwd = realpathSync.native(cwd)
    this.innerCwd = this.outerCwd === '/' ? '/' : INNER_CWD
    if (this.innerCwd !== '/') {
      try {
        mkdirSync(INNER_CWD, { recursive: true, mode: 0o755 }) // the mount point; empty on the host
      } catch {
        // not creatable here (read-only /tmp): the bind mount fails and says so
      }
    }
    const uid = process.geteuid?.() ?? 0
    const gid = process.getegid?.() ?? 0
    this.setup = {
      uidMap: `${INNER_ID} ${uid} 1\n`,
      gidMap: `${INNER_ID} ${gid} 1\n`,
      hostname: INNER_HOSTNAME,
      domainName: INNER_DOMAIN,
      cwd: this.innerCwd === '/' ? '' : this.innerCwd,
    }
  }

  /** A real path as the program sees it: under the working directory, moved to the inner one. */
  inside(path: string): string {
    const rest = this.under(path, this.outerCwd)
    return rest === undefined ? path : join(this.innerCwd, rest)
  }

  /** A path the program sees (in /proc/PID/maps) as a path this process can open. */
  outside(path: string): string {
    const rest = this.under(path, this.innerCwd)
    return rest === undefined ? path : join(this.outerCwd, rest)
  }

  get isolation(): Isolation {
    return {
      isolated: true,
      uid: INNER_ID,
      gid: INNER_ID,
      pid: INNER_PID,
      hostname: INNER_HOSTNAME,
      cwd: this.innerCwd,
    }
  }

  private under(path: string, dir: string): string | undefined {
    if (dir === '/') return undefined
    if (path === dir) return ''
    return path.startsWith(`${dir}/`) ? path.slice(dir.length + 1) : undefined
  }
}

function join(dir: string, rest: string): string {
  return rest === '' ? dir : `${dir}/${rest}`
}

/** The processes of an isolated launch: the init (pid 1 inside, the tracer's child) and the target. */
export interface Entered {
  init: number
  target: number
}

/** A refusal: what failed and why, in words for proc.isolation and IsolationError. */
export interface Refused {
  refused: string
  /** The errno of the refused step; 0 when no step was refused (the launcher vanished, a timeout). */
  errno: number
}

/**
 * Follows the launcher (already seized and given its go message) through the namespace setup: its
 * clone of the init, the init's fork of the target (`oneCpu`: all on this thread's CPU). Returns
 * with the target stopped at its first stop (auto-attached by PTRACE_O_TRACEFORK) and the init
 * detached; on a refused step, with every process of the attempt killed and reaped.
 */
export async function enterNamespaces(
  launcher: number,
  arch: Arch,
  deadline: number,
  oneCpu: boolean,
): Promise<Entered | Refused> {
  // The launcher sharing this thread's CPU: each wait spins (yielding it at every poll, so the launcher
  // does its namespace work meanwhile) and sees each stop without the SIGCHLD round trip through the
  // event loop. Elsewhere a spin would only keep this CPU busy, where the kernel could place the init.
  const spinMs = oneCpu ? undefined : 0
  // The launcher, still in this thread's session (and scheduling group), gets the CPU at each yield:
  // a full spin catches its fork. The init (setsid) has a group of its own: its waits nap (waiter.ts).
  const launcherEnd = await followUntilFork(launcher, arch, deadline, oneCpu ? SPIN_MS : 0)
  if ('refused' in launcherEnd) {
    await reap(launcher, deadline)
    return launcherEnd
  }
  const init = launcherEnd.child
  const initEnd = await followUntilFork(init, arch, deadline, spinMs)
  await reap(launcher, deadline) // it ended right after the clone, meanwhile
  if ('refused' in initEnd) {
    await reap(init, deadline)
    return initEnd
  }
  // The target was auto-attached by the fork: let the init go, it only waits for the target now.
  ptraceDetach(init, 0)
  const target = initEnd.child
  const first = await new Waiter(target, spinMs).next(deadline, () => sendSignal(init, SIG.KILL))
  if (!first || !wifStopped(first.status)) {
    sendSignal(init, SIG.KILL)
    await reap(init, deadline)
    return { refused: 'the target ended before its first instruction', errno: 0 }
  }
  return { init, target }
}

/** Resumes `pid` through its stops until it forks (its child's pid) or reports a failed step (int3). */
async function followUntilFork(
  pid: number,
  arch: Arch,
  deadline: number,
  spinMs: number | undefined,
): Promise<{ child: number } | Refused> {
  const waiter = new Waiter(pid, spinMs)
  for (;;) {
    const w = await waiter.next(deadline, () => sendSignal(pid, SIG.KILL))
    if (!w) return { refused: `the launcher (pid ${pid}) vanished`, errno: 0 }
    if (!wifStopped(w.status)) {
      const timedOut = performance.now() >= deadline
      return { refused: timedOut ? 'the namespace setup timed out' : 'the launcher ended early', errno: 0 }
    }
    const event = wPtraceEvent(w.status)
    const signal = wStopSig(w.status)
    if (event === PTRACE_EVENT.FORK) {
      const child = Number(ptraceEventMsg(pid) ?? 0n)
      ptraceCont(pid, 0)
      return { child }
    }
    if (event === 0 && signal === SIG.TRAP) {
      const refused = failedStep(pid, arch)
      sendSignal(pid, SIG.KILL)
      ptraceCont(pid, 0)
      if (!refused) return { refused: 'the launcher stopped on an unexpected SIGTRAP', errno: 0 }
      return refused
    }
    // Its own exec (a seize that landed during it), the first stop of an auto-attached child, a signal.
    ptraceCont(pid, event === 0 ? signal : 0)
  }
}

/** The step and errno the launcher put in rdi and rsi before its int3. */
function failedStep(pid: number, arch: Arch): Refused | undefined {
  const bytes = new Uint8Array(arch.regsSize)
  if (arch.readRegs(pid, bytes) !== 0) return undefined
  const words = new BigUint64Array(bytes.buffer)
  const step = Number(words[arch.registers.indexOf('rdi')] ?? 0n)
  const errno = Number(words[arch.registers.indexOf('rsi')] ?? 0n)
  const what = NAMESPACE_STEPS[step] ?? `step ${step}`
  return { refused: `${what} failed (${errnoName(errno)})${hint(step, errno)}`, errno }
}

/** What a refusal usually means. */
function hint(step: number, errno: number): string {
  if (step === 1 && (errno === ERRNO.EPERM || errno === ERRNO.EACCES))
    return ': this system forbids unprivileged user namespaces (AppArmor, kernel.unprivileged_userns_clone, a container seccomp profile)'
  if (step === 1 && errno === ERRNO.ENOSPC) return ': user.max_user_namespaces is reached or 0'
  if (step === 1 && errno === ERRNO.EINVAL) return ': the kernel lacks user or PID namespaces'
  if (step === 11) return ': /proc is not fully visible here (a container masks parts of it)'
  return ''
}

/** Waits for the end of a child of ours (already killed or ending by itself) and reaps it. */
async function reap(pid: number, deadline: number): Promise<void> {
  const waiter = new Waiter(pid)
  for (;;) {
    const w = await waiter.next(Math.max(deadline, performance.now() + 1000), () => sendSignal(pid, SIG.KILL))
    if (!w || !wifStopped(w.status)) return
    ptraceCont(pid, 0) // a stop that raced with its end
  }
}
