// Processes the tracee forks, under the virtual clock. They inherit its seccomp filter and TSC
// faulting, so a detached child would get ENOSYS from every trapped syscall and SIGSEGV at rdtsc:
// instead each stays traced, reads the launched process's virtual clock (one clock for the whole
// family: a child's sleep is time that passed for the parent waiting for it), and otherwise runs
// freely. Breakpoints and stops are the launched process's only. A child's first stop waits for its
// parent's fork or vfork event, which says whether it has a copy of the int3s to clean or shares them.
import { readFileSync } from 'node:fs'
import { PTRACE_EVENT, SIG, wPtraceEvent, wStopSig, wifExited, wifSignaled } from '../native/constants.js'
import {
  ptraceCont,
  ptraceEventMsg,
  ptraceSyscall,
  sendSignal,
  waitBlocking,
  type WaitResult,
} from '../native/ptrace.js'
import type { Arch } from '../native/arch/index.js'
import type { VirtualClock } from './clock.js'
import { TraceeMemory } from './memory.js'
import { TracedThread } from './thread.js'

interface Member {
  readonly pid: number
  readonly memory: TraceeMemory
  readonly threads: Map<number, TracedThread>
  /** Stopped at its first stop until its parent's fork (or vfork) event is seen. */
  waiting?: WaitResult
}

export class Family {
  private readonly mainPid: number
  private readonly clock: VirtualClock
  private readonly arch: Arch
  private readonly clean: (pid: number) => void
  private readonly members = new Map<number, Member>()
  private readonly byTid = new Map<number, Member>()
  /** Children whose parent's event came first: true for vfork (memory shared with the parent). */
  private readonly announced = new Map<number, boolean>()

  /** `clean` removes the launched process's int3s from a new child's copy of its memory. */
  constructor(mainPid: number, clock: VirtualClock, arch: Arch, clean: (pid: number) => void) {
    this.mainPid = mainPid
    this.clock = clock
    this.arch = arch
    this.clean = clean
  }

  /** A fork or vfork event of thread `tid` (of the launched process or a child). */
  forked(tid: number, vfork: boolean): void {
    const child = Number(ptraceEventMsg(tid) ?? 0n)
    if (child <= 0) return
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

  /** SIGKILL every child still traced: they would wait at their next trapped syscall for a tracer that is gone. */
  killAll(): void {
    // children announced by their parent's event whose first stop was not seen yet are traced too
    const unseen = [...this.announced.keys()]
    for (const pid of [...this.members.keys(), ...unseen]) sendSignal(pid, SIG.KILL)
    // A traced process that dies stays a zombie until its tracer waits for it: reap each thread.
    // threads before their leader, whose death is reported only once its threads are reaped
    const tids = [...this.byTid.keys()].sort((x, y) => Number(this.members.has(x)) - Number(this.members.has(y)))
    tids.push(...unseen)
    for (const tid of tids) {
      for (let w = waitBlocking(tid); w && !wifExited(w.status) && !wifSignaled(w.status); w = waitBlocking(tid)) {
        // a stop that came before the SIGKILL: the next status is the death
      }
    }
    for (const m of this.members.values()) m.memory.close()
    this.members.clear()
    this.byTid.clear()
    this.announced.clear()
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
    this.handle(member, first)
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
        this.clock.answerSyscall(t, m.memory)
        break
      case PTRACE_EVENT.EXEC:
        // the execing thread now has the leader's tid; the others are gone
        for (const other of m.threads.keys()) if (other !== tid) this.byTid.delete(other)
        m.memory.close() // its /proc/PID/mem named the old address space
        this.clock.patchVdso(t.regs.rsp, m.memory)
        break
      case 0:
        if (sig === (SIG.TRAP | 0x80) && t.traceExit) {
          t.traceExit = false
          this.clock.syscallExit(t)
        } else if (!(sig === SIG.SEGV && this.clock.emulateRdtsc(t, m.memory))) {
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
