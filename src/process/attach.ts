// attach(): trace a process that already runs (one procsnap did not launch): seize every thread,
// stop them all, and hand back a Process. Its end (detach(), `await using`, the end of a test, the
// exit of this process) detaches it and leaves it running, as gdb does; it is never killed unasked.
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs'
import { AttachError, ProcessStateError, ProcsnapError, PtraceError } from '../errors.js'
import { hostArch } from '../native/arch/index.js'
import { ERRNO, PTRACE_O } from '../native/constants.js'
import { ptraceSeize } from '../native/ptrace.js'
import { checkOptions, isBoolean, isTimeout, oneOf, type OptionSchema } from '../options.js'
import { deniedMessage } from './launch.js'
import { Process } from './process.js'
import { track } from './registry.js'
import type { Schedule } from './schedule.js'
import { Stdio } from './stdio.js'

export interface AttachOptions {
  /** Milliseconds for every wait (the attach itself, cont, step, ...); default 5000. */
  timeout?: number
  /** As launch's: step over simple instructions at breakpoints by executing them in the tracer. Default true. */
  emulateStepOver?: boolean
  /**
   * How the threads run when continued: 'free' (default), all at once as they ran before the
   * attach; 'serial', one at a time as launch's default (see LaunchOptions.schedule).
   */
  schedule?: Schedule
}

const ATTACH_OPTIONS: OptionSchema = {
  timeout: isTimeout,
  emulateStepOver: isBoolean,
  schedule: oneOf('serial', 'free'),
}

/**
 * launch's options without PTRACE_O_EXITKILL: the death of this process must not kill one it only
 * attached to (the kernel detaches it instead).
 */
const ATTACH_SEIZE_OPTIONS =
  PTRACE_O.TRACESYSGOOD |
  PTRACE_O.TRACECLONE |
  PTRACE_O.TRACEEXEC |
  PTRACE_O.TRACEFORK |
  PTRACE_O.TRACEVFORK |
  PTRACE_O.TRACESECCOMP

/** Rounds of listing /proc/PID/task while it grows: a program that creates threads without end is not waited for. */
const MAX_SEIZE_ROUNDS = 1000
/** personality(2)'s ADDR_NO_RANDOMIZE. */
const ADDR_NO_RANDOMIZE = 0x0040000

interface ProcStatus {
  tgid: number
  /** 'R', 'S', 'Z', ... */
  state: string
  tracerPid: number
  threads: number
}

function readStatus(pid: number): ProcStatus | undefined {
  let text: string
  try {
    text = readFileSync(`/proc/${pid}/status`, 'latin1')
  } catch {
    return undefined
  }
  const field = (name: string): string => new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(text)?.[1] ?? ''
  return {
    tgid: Number(field('Tgid')),
    state: field('State').charAt(0),
    tracerPid: Number(field('TracerPid')),
    threads: Number(field('Threads')),
  }
}

/** A thread of this process: TracerPid names the tracer's thread (a worker's tid under Vitest's threads pool). */
function isOurThread(tid: number): boolean {
  return tid > 0 && existsSync(`/proc/self/task/${tid}`)
}

/** The name of a process, for messages ('gdb', 'strace'); '' when it cannot be read. */
function commOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'latin1').trim()
  } catch {
    return ''
  }
}

function alreadyTraced(pid: number, tracer: number): AttachError {
  const name = commOf(tracer)
  const who = isOurThread(tracer)
    ? 'this process (attach() was called twice?)'
    : `pid ${tracer}${name ? ` (${name})` : ''}`
  return new AttachError(
    'ERR_ALREADY_TRACED',
    pid,
    `Process ${pid} is already traced (by gdb, strace, or another procsnap?): its tracer is ${who}. ` +
      `A process has one tracer at a time: detach that one first.`,
  )
}

function noSuchProcess(pid: number): AttachError {
  return new AttachError(
    'ERR_NO_SUCH_PROCESS',
    pid,
    `No process ${pid} here (it ended, or never existed in this PID namespace). Check the pid: a process started by a shell prints it with $!.`,
  )
}

/** The tids of /proc/PID/task; [] once the process is gone. */
function tasksOf(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).map(Number)
  } catch {
    return []
  }
}

/** Reads what the process runs, for messages and symbols; the process may vanish meanwhile. */
function describe(pid: number): { path: string; argv: string[]; aslr: boolean } {
  let path = ''
  let argv: string[] = []
  let aslr = true
  try {
    path = readlinkSync(`/proc/${pid}/exe`)
    argv = readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0').slice(0, -1)
    aslr = (parseInt(readFileSync(`/proc/${pid}/personality`, 'latin1'), 16) & ADDR_NO_RANDOMIZE) === 0
  } catch {
    // gone meanwhile: the attach reports it
  }
  return { path, argv, aslr }
}

/** Checks what can be told before the seize: a bad pid, ours, a zombie, one traced already. */
function checkTarget(pid: number): void {
  if (!Number.isSafeInteger(pid) || pid <= 0)
    throw new ProcsnapError('ERR_BAD_ARGUMENT', `attach takes a pid (a positive integer), not ${String(pid)}.`)
  const status = readStatus(pid)
  if (!status) throw noSuchProcess(pid)
  if (status.tgid === process.pid)
    throw new ProcsnapError(
      'ERR_BAD_ARGUMENT',
      `${pid} is ${pid === process.pid ? 'this process' : 'a thread of this process'}: a process cannot trace itself. ` +
        `launch() a program, or attach to another process.`,
    )
  if (status.tgid !== pid)
    throw new ProcsnapError(
      'ERR_BAD_ARGUMENT',
      `${pid} is a thread of process ${status.tgid}, not a process: attach(${status.tgid}) traces it with every other thread.`,
    )
  if (status.state === 'Z' || status.state === 'X') {
    throw new ProcessStateError(
      'ERR_PROCESS_EXITED',
      status.threads > 1
        ? `The main thread of process ${pid} has ended (pthread_exit) while others run: the kernel lets no tracer attach to such a process.`
        : `Process ${pid} has exited: it is a zombie that waits for its parent to reap it. There is nothing left to attach to.`,
    )
  }
  if (status.tracerPid !== 0) throw alreadyTraced(pid, status.tracerPid)
}

/** PTRACE_SEIZE of the leader, with the failure in words. */
function seizeLeader(pid: number): void {
  const err = ptraceSeize(pid, ATTACH_SEIZE_OPTIONS)
  if (err === 0) return
  if (err === ERRNO.ESRCH) throw noSuchProcess(pid)
  const status = readStatus(pid)
  if (!status) throw noSuchProcess(pid)
  if (status.tracerPid !== 0) throw alreadyTraced(pid, status.tracerPid)
  if (status.state === 'Z' || status.state === 'X')
    throw new ProcessStateError('ERR_PROCESS_EXITED', `Process ${pid} exited while procsnap attached to it.`)
  throw new PtraceError(
    err === ERRNO.EPERM || err === ERRNO.EACCES ? 'ERR_PTRACE_DENIED' : 'ERR_PTRACE',
    err,
    deniedMessage(err).replace('PTRACE_SEIZE:', `PTRACE_SEIZE of ${pid}:`),
  )
}

/**
 * Seizes every other thread, until the list stops growing (threads that seized ones create are
 * seized by PTRACE_O_TRACECLONE, and answer EPERM here: ours already). Returns every tid seized.
 */
function seizeThreads(pid: number): number[] {
  const seized = new Set([pid])
  for (let round = 0; round < MAX_SEIZE_ROUNDS; round++) {
    let grew = false
    for (const tid of tasksOf(pid)) {
      if (seized.has(tid)) continue
      const err = ptraceSeize(tid, ATTACH_SEIZE_OPTIONS)
      // ESRCH: it ended meanwhile. EPERM: a clone of a seized thread, ours already, or not ours (left
      // out: waiting for its stop would never end); the all-stop finds clones of ours anyway.
      if (err !== 0 && !(err === ERRNO.EPERM && isOurThread(readStatus(tid)?.tracerPid ?? 0))) continue
      seized.add(tid)
      grew = true
    }
    if (!grew) break
  }
  return [...seized]
}

/**
 * Attaches to a running process (every thread), and returns it stopped: `lastStop` is undefined and
 * a snapshot's stop reads 'attach'. Everything of a launched Process works but its stdio (not
 * captured: proc.stdout is '') and determinism options (its clock, randomness and surroundings are
 * the real ones: isolation reads { isolated: false, reason: 'attached' }). detach() — or `await
 * using`, or the end of the test — removes the breakpoints and lets it run on; kill() kills it.
 */
export async function attach(pid: number, options: AttachOptions = {}): Promise<Process> {
  checkOptions('attach', options, ATTACH_OPTIONS)
  const arch = hostArch()
  checkTarget(pid)
  seizeLeader(pid)
  const tids = seizeThreads(pid)
  const { path, argv, aslr } = describe(pid)
  const proc = new Process({
    pid,
    group: pid,
    path,
    argv,
    arch,
    timeout: options.timeout ?? 5000,
    stdio: new Stdio({ stdin: undefined, stdout: 'ignore', stderr: 'ignore', outputLimit: 0, onOutput: undefined }),
    pinned: false,
    emulateStepOver: options.emulateStepOver ?? true,
    schedule: options.schedule ?? 'free',
    aslr,
    fixedRandom: false,
    virtualClock: false,
    simulatedTime: false,
    startupPinned: false,
    isolation: { isolated: false, reason: 'attached' },
    attached: true,
  })
  track(pid, proc, pid, true)
  try {
    await proc.startAttached(tids)
  } catch (error) {
    if (!proc.exit) await proc.detach().catch(() => undefined)
    if (error instanceof ProcsnapError) throw error
    throw new PtraceError(
      'ERR_PTRACE',
      0,
      `Stopping the threads of process ${pid} failed: ${error instanceof Error ? error.message : String(error)}`,
    )
  }
  return proc
}
