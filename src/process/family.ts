// Processes the tracee forks, and theirs: every descendant stays traced, so that it ends with the
// launched process whatever it does (setsid, double fork, ignoring signals) and dies with its
// tracer (PTRACE_O_EXITKILL is inherited). Under the virtual clock a child also reads the launched
// process's clock (one clock for the whole family: a child's sleep is time that passed for the
// parent waiting for it): it inherits the seccomp filter and TSC faulting, and a detached child
// would get ENOSYS from every trapped syscall and SIGSEGV at rdtsc. Breakpoints and stops are the
// launched process's only. A child's first stop waits for its parent's fork or vfork event, which
// says whether it has a copy of the int3s to clean or shares them.
// An attached process's children are cleaned of the int3s and let go (detachChildren), as gdb's detach-on-fork.
import { readFileSync } from 'node:fs'
import { PTRACE_EVENT, SIG, wPtraceEvent, wStopSig, wifExited, wifSignaled } from '../native/constants.js'
import {
  ptraceCont,
  ptraceDetach,
  ptraceEventMsg,
  ptraceInterrupt,
  ptraceSyscall,
  sendSignal,
  waitNoHang,
  type WaitResult,
} from '../native/ptrace.js'
import type { Arch } from '../native/arch/index.js'
import type { VirtualClock } from './clock.js'
import { TraceeMemory } from './memory.js'
import { pauseMs } from './registry.js'
import { TracedThread } from './thread.js'

/** How long killAll waits for the descendants it killed to be reaped (SIGKILL is quick; a D-state process may not be). */
const KILL_ALL_MS = 3000

interface Member {
  readonly pid: number
  /** A vforked child: it shares the tracee's memory (and int3s) until it execs or exits. */
  shared?: boolean
  readonly memory: TraceeMemory
  readonly threads: Map<number, TracedThread>
  /** Stopped at its first stop until its parent's fork (or vfork) event is seen. */
  waiting?: WaitResult
}

export class Family {
  private readonly mainPid: number
  private readonly clock: VirtualClock | undefined
  private readonly arch: Arch
  private readonly clean: (pid: number) => void
  private readonly members = new Map<number, Member>()
  private readonly byTid = new Map<number, Member>()
  /** Children whose parent's event came first: true for vfork (memory shared with the parent). */
  private readonly announced = new Map<number, boolean>()
  /** Children vforked by the launched process (or by such a child): they share its int3s. */
  private readonly sharing = new Set<number>()
  private readonly passSite: (t: TracedThread) => boolean
  /**
   * An attached process's children are not ours: each is let go at its first stop once its copy of
   * memory is clean of our int3s (a vforked one, which shares them, once it execs), as gdb's detach-on-fork.
   */
  detachChildren = false

  /**
   * `clean` removes the launched process's int3s from a new child's copy of its memory;
   * `passSite` executes the instruction under an int3 for a vforked child that trapped on it.
   */
  constructor(
    mainPid: number,
    clock: VirtualClock | undefined,
    arch: Arch,
    clean: (pid: number) => void,
    passSite: (t: TracedThread) => boolean,
  ) {
    this.mainPid = mainPid
    this.clock = clock
    this.arch = arch
    this.clean = clean
    this.passSite = passSite
  }

  /** A fork or vfork event of thread `tid` (of the launched process or a child). */
  forked(tid: number, vfork: boolean): void {
    const child = Number(ptraceEventMsg(tid) ?? 0n)
    if (child <= 0) return
    const parent = this.byTid.get(tid) // undefined: a thread of the launched process
    if (vfork && (parent === undefined || parent.shared === true)) this.sharing.add(child)
    const member = this.members.get(child)
    const first = member?.waiting
    if (!member || !first) {
      this.announced.set(child, vfork)
      return
    }
    delete member.waiting
    this.start(member, vfork, first)
  }

  /** True when `tid` is a thread of a child process: it is handled (and resumed) here. */
  claim(w: WaitResult): boolean {
    const tid = w.pid
    let member = this.byTid.get(tid)
    if (!member) {
      const ids = statusIds(tid)
      if (!ids || ids.tgid === this.mainPid) return false
      member = this.members.get(ids.tgid)
      member?.threads.set(tid, new TracedThread(tid, member.threads.size + 1, this.arch, () => undefined))
      if (!member) {
        member = this.adopt(ids.tgid)
        member.threads.set(tid, new TracedThread(tid, 1, this.arch, () => undefined))
        this.byTid.set(tid, member)
        const vfork = this.announced.get(ids.tgid)
        this.announced.delete(ids.tgid)
        if (vfork === undefined) member.waiting = w
        else this.start(member, vfork, w)
        return true
      }
      this.byTid.set(tid, member)
    }
    this.handle(member, w)
    return true
  }

  /** Every traced tid of the family and the children announced but not seen yet: a wait polls them when they left the group. */
  tids(): number[] {
    return [...this.byTid.keys(), ...this.announced.keys()]
  }

  /**
   * SIGKILL every descendant still traced, and the process groups they lead (a child that called
   * setsid), then reap them, and those forked meanwhile, without ever blocking: an isolated
   * program's init waits in the kernel until we have reaped every traced process of its namespace,
   * so a blocking wait on one process could wait for ever. `group` is the launched process's group.
   */
  killAll(group: number): void {
    const signalled = new Set<number>()
    sendSignal(-group, SIG.KILL)
    const deadline = performance.now() + KILL_ALL_MS
    for (;;) {
      for (const pid of [...this.members.keys(), ...this.announced.keys()]) {
        if (signalled.has(pid)) continue
        signalled.add(pid)
        sendSignal(pid, SIG.KILL)
        sendSignal(-pid, SIG.KILL) // fails (ESRCH) unless it leads a group of its own
      }
      let progressed = false
      for (const g of [group, ...signalled])
        for (let w = waitNoHang(-g); typeof w === 'object'; w = waitNoHang(-g))
          progressed = this.noteDeath(w) || progressed
      for (const tid of [...this.byTid.keys(), ...this.announced.keys()]) {
        const w = waitNoHang(tid)
        if (typeof w === 'number')
          this.forget(tid) // not ours any more (reaped as a group member above)
        else if (w) this.noteDeath(w)
        progressed ||= w !== undefined
      }
      if ((this.byTid.size === 0 && this.announced.size === 0) || performance.now() > deadline) break
      if (!progressed) pauseMs(1)
    }
    this.forgetAll()
  }

  /** Every member forgotten: their memory files closed. */
  private forgetAll(): void {
    for (const m of this.members.values()) m.memory.close()
    this.members.clear()
    this.byTid.clear()
    this.announced.clear()
    this.sharing.clear()
  }

  /** A status met while killing: a death is forgotten; a stop of a process not seen yet adopts it (to be killed). True either way. */
  private noteDeath(w: WaitResult): boolean {
    if (wifExited(w.status) || wifSignaled(w.status)) {
      this.forget(w.pid)
      return true
    }
    if (!this.byTid.has(w.pid)) {
      const ids = statusIds(w.pid)
      if (ids && ids.tgid !== this.mainPid) this.byTid.set(w.pid, this.members.get(ids.tgid) ?? this.adopt(ids.tgid))
    }
    return true
  }

  private forget(tid: number): void {
    const member = this.byTid.get(tid)
    this.byTid.delete(tid)
    this.announced.delete(tid)
    member?.threads.delete(tid)
    if (member?.pid === tid) {
      member.memory.close()
      this.members.delete(tid)
    }
  }

  private adopt(pid: number): Member {
    const member: Member = {
      pid,
      memory: new TraceeMemory(pid, () => []),
      threads: new Map(),
    }
    this.members.set(pid, member)
    return member
  }

  /** A new child may run: a forked one gets its copy of memory cleaned of int3s; a vforked one shares its parent's. */
  private start(member: Member, vfork: boolean, first: WaitResult): void {
    if (!vfork) this.clean(member.pid)
    if (this.sharing.delete(member.pid)) member.shared = true
    if (this.detachChildren && !member.shared) return this.letGo(member, first.pid)
    this.handle(member, first)
  }

  /** detachChildren: the stopped thread `tid` of a child that needs us no more; the child is forgotten. */
  private letGo(member: Member, tid: number): void {
    ptraceDetach(tid, 0)
    this.forget(tid)
    if (this.members.get(member.pid) === member && member.threads.size === 0) {
      member.memory.close()
      this.members.delete(member.pid)
    }
  }

  /**
   * The traced process is detached (or ended, attached): every child still traced is stopped and let
   * go, within `ms`. Children announced but never seen are let go at their first stop.
   */
  detachAll(ms = 1000): void {
    const until = performance.now() + ms
    const tids = (): number[] => [...this.byTid.keys(), ...this.announced.keys()]
    for (const tid of tids()) ptraceInterrupt(tid)
    while (tids().length > 0 && performance.now() < until) {
      let progressed = false
      for (const tid of tids()) {
        const w = waitNoHang(tid)
        if (w === undefined) continue
        progressed = true
        if (typeof w === 'number' || wifExited(w.status) || wifSignaled(w.status)) {
          this.forget(tid)
          continue
        }
        // A signal that stopped it is delivered as it goes; our interrupt and other events are not signals.
        const signal = wPtraceEvent(w.status) === 0 && wStopSig(w.status) !== (SIG.TRAP | 0x80) ? wStopSig(w.status) : 0
        ptraceDetach(tid, signal)
        this.forget(tid)
      }
      if (!progressed) pauseMs(1)
    }
    this.forgetAll()
  }

  private handle(m: Member, w: WaitResult): void {
    const { pid: tid, status } = w
    if (wifExited(status) || wifSignaled(status)) {
      this.byTid.delete(tid)
      m.threads.delete(tid)
      if (tid === m.pid) {
        m.memory.close()
        this.members.delete(m.pid)
      }
      return
    }
    const t = m.threads.get(tid)
    if (!t) return
    t.invalidate()
    const sig = wStopSig(status)
    let signal = 0
    switch (wPtraceEvent(status)) {
      case PTRACE_EVENT.SECCOMP:
        this.clock?.answerSyscall(t, m.memory) // without the clock, a trapped syscall (getrandom) runs as it is
        break
      case PTRACE_EVENT.EXEC:
        // the execing thread now has the leader's tid; the others are gone
        for (const other of m.threads.keys()) if (other !== tid) this.byTid.delete(other)
        m.memory.close() // its /proc/PID/mem named the old address space
        m.shared = false
        if (this.detachChildren) return this.letGo(m, tid)
        this.clock?.patchVdso(t.regs.rsp, m.memory)
        break
      case 0:
        if (sig === (SIG.TRAP | 0x80) && t.traceExit) {
          t.traceExit = false
          this.clock?.syscallExit(t)
        } else if (sig === SIG.TRAP && m.shared && this.passSite(t)) {
          // a vforked child on one of our int3s (a breakpoint on execve, say) runs on past it
        } else if (!(sig === SIG.SEGV && this.clock?.emulateRdtsc(t, m.memory))) {
          signal = sig
        }
        break
      case PTRACE_EVENT.FORK:
      case PTRACE_EVENT.VFORK:
        this.forked(tid, wPtraceEvent(status) === PTRACE_EVENT.VFORK)
        break
      default:
        break // clone (the new thread reports itself), interrupts, group stops: run on
    }
    if (t.traceExit) ptraceSyscall(tid, signal)
    else ptraceCont(tid, signal)
  }
}

/** The thread group (process) of a thread, from /proc; undefined once it is gone. */
function statusIds(tid: number): { tgid: number } | undefined {
  try {
    const status = readFileSync(`/proc/${tid}/status`, 'latin1')
    const tgid = Number(/^Tgid:\s+(\d+)/m.exec(status)?.[1])
    return Number.isInteger(tgid) && tgid > 0 ? { tgid } : undefined
  } catch {
    return undefined
  }
}
