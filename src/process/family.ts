// Processes the tracee forks, under the virtual clock. They inherit its seccomp filter and TSC
// faulting, so a detached child would get ENOSYS from every trapped syscall and SIGSEGV at rdtsc:
// instead each stays traced, reads the launched process's virtual clock (one clock for the whole
// family: a child's sleep is time that passed for the parent waiting for it), and otherwise runs
// freely. Breakpoints and stops are the launched process's only.
import { readFileSync } from 'node:fs'
import { PTRACE_EVENT, SIG, wPtraceEvent, wStopSig, wifExited, wifSignaled } from '../native/constants.js'
import { ptraceCont, ptraceSyscall, sendSignal, type WaitResult } from '../native/ptrace.js'
import type { Arch } from '../native/arch/index.js'
import type { VirtualClock } from './clock.js'
import { TraceeMemory } from './memory.js'
import { TracedThread } from './thread.js'

interface Member {
  readonly pid: number
  readonly memory: TraceeMemory
  readonly threads: Map<number, TracedThread>
}

export class Family {
  private readonly mainPid: number
  private readonly clock: VirtualClock
  private readonly arch: Arch
  private readonly clean: (pid: number) => void
  private readonly members = new Map<number, Member>()
  private readonly byTid = new Map<number, Member>()

  /** `clean` removes the launched process's int3s from a new child's copy of its memory. */
  constructor(mainPid: number, clock: VirtualClock, arch: Arch, clean: (pid: number) => void) {
    this.mainPid = mainPid
    this.clock = clock
    this.arch = arch
    this.clean = clean
  }

  /** True when `tid` is a thread of a child process: it is handled (and resumed) here. */
  claim(w: WaitResult): boolean {
    const tid = w.pid
    let member = this.byTid.get(tid)
    if (!member) {
      const ids = statusIds(tid)
      if (!ids || ids.tgid === this.mainPid) return false
      member = this.members.get(ids.tgid) ?? this.adopt(ids.tgid)
      member.threads.set(tid, new TracedThread(tid, member.threads.size + 1, this.arch, () => undefined))
      this.byTid.set(tid, member)
    }
    this.handle(member, w)
    return true
  }

  /** SIGKILL every child still traced: they would wait at their next trapped syscall for a tracer that is gone. */
  killAll(): void {
    for (const pid of this.members.keys()) sendSignal(pid, SIG.KILL)
    for (const m of this.members.values()) m.memory.close()
    this.members.clear()
    this.byTid.clear()
  }

  private adopt(pid: number): Member {
    const member: Member = {
      pid,
      memory: new TraceeMemory(pid, () => []),
      threads: new Map(),
    }
    this.members.set(pid, member)
    this.clean(pid)
    return member
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
      default:
        break // fork, clone (the new one reports itself), interrupts, group stops: run on
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
