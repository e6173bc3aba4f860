// Every live tracee of this thread, so that none outlives its test, its worker or a crash:
// killed and reaped at exit, and killed if its handle is garbage-collected.
import { isMainThread } from 'node:worker_threads'
import { SIG } from '../native/constants.js'
import { closeFd } from '../native/memory.js'
import { pidfdEnded, pidfdOpen } from '../native/pidfd.js'
import { sendSignal, waitNoHang } from '../native/ptrace.js'
import { forgetTracee, noteTracee, reapOrphans, removeOrphanFolder } from './orphans.js'

const live = new Set<number>()
/** The process group of each live tracee, when it is not its own: an isolated one's init leads it. */
const groups = new Map<number, number>()
/** The handle of each live tracee, to end it through its own kill() (state, stdio, pinning) when it is still reachable. */
const owners = new Map<number, WeakRef<object>>()

const finalizer = new FinalizationRegistry<number>((pid) => {
  if (live.delete(pid)) reapNow(pid)
})

/** A handle's end at the end of a test: kill() for a launched process, detach() for an attached one. */
export const RELEASE = Symbol('procsnap.release')
interface Releases {
  [RELEASE]?: () => Promise<unknown>
  kill?: () => Promise<unknown>
}
/** Handles of attached processes, held until untracked: never collected, so never killed unseen; detached at the end. */
const held = new Map<number, object>()
/** Launched processes that were detached: still our children, reaped once they end. */
const detachedChildren = new Set<number>()

/** A detached child: its zombie is reaped by a later track() or cleanup. */
export function reapWhenDone(pid: number): void {
  detachedChildren.add(pid)
  reapDetached()
}

function reapDetached(): void {
  for (const pid of detachedChildren) if (waitNoHang(pid) !== undefined) detachedChildren.delete(pid)
}

/** A handle's synchronous end: the tracee, its descendants and its namespace killed and reaped (Process implements it). */
export const KILL_NOW = Symbol('procsnap.killNow')
interface KillsNow {
  [KILL_NOW]?: () => void
}

function reapNow(pid: number): void {
  const group = groups.get(pid) ?? pid
  groups.delete(pid)
  const owner = owners.get(pid)?.deref() as KillsNow | undefined
  const killNow = owner?.[KILL_NOW]
  if (killNow) return killNow.call(owner)
  sendSignal(pid, SIG.KILL)
  sendSignal(-group, SIG.KILL) // its children still in its group
  if (group !== pid) sendSignal(group, SIG.KILL) // the init of its PID namespace: everything in it dies
  // Forgotten once reaped: a worker terminated meanwhile leaves the rest to reapOrphans.
  if (reapGroup(group)) forgetTracee(pid, group)
}

const pauseCell = new Int32Array(new SharedArrayBuffer(4))

/** Sleeps this thread, for the synchronous cleanup paths where the event loop cannot turn. */
export function pauseMs(ms: number): void {
  Atomics.wait(pauseCell, 0, 0, ms)
}

/**
 * Reaps every thread of a killed tracee's group (and an isolated tracee's init) until ECHILD,
 * polling for at most `ms`: an init waits in the kernel for traced processes of its namespace that
 * may have left the group (setsid), which only their tracer can reap. Never blocks for ever.
 * True once nothing is left (ECHILD).
 */
export function reapGroup(group: number, ms = 1000): boolean {
  const until = performance.now() + ms
  // The group's leader (the tracee, or an isolated one's init) usually ends last: its pidfd wakes
  // this wait the moment it does, where a 1 ms pause would oversleep (an init's end takes ~0.2 ms).
  let leader: number | undefined
  let leaderEnded = false
  try {
    for (;;) {
      const w = waitNoHang(-group)
      if (typeof w === 'number') return true
      if (performance.now() > until) return false
      if (w !== undefined) continue
      leader ??= pidfdOpen(group)
      if (leader >= 0 && !leaderEnded) leaderEnded = pidfdEnded(leader, 1)
      else pauseMs(1)
    }
  } finally {
    if (leader !== undefined && leader >= 0) closeFd(leader)
  }
}

let hooked = false

function killAll(): void {
  for (const pid of live) reapNow(pid)
  live.clear()
  removeOrphanFolder()
}

/**
 * Tracks a tracee until `untrack`; `owner` is the handle whose collection kills it; `group` its
 * process group. An `attached` process (not our child) is held, never collected, and its end detaches it.
 */
export function track(pid: number, owner: object, group = pid, attached = false): void {
  reapOrphans()
  reapDetached()
  if (!attached) noteTracee(pid, group)
  live.add(pid)
  if (group !== pid) groups.set(pid, group)
  owners.set(pid, new WeakRef(owner))
  if (attached) held.set(pid, owner)
  else finalizer.register(owner, pid, owner)
  if (!hooked) {
    hooked = true
    process.on('exit', killAll)
    // A child with an IPC channel (a Vitest forks worker) whose parent died may live on, holding
    // its tracees stopped: end them when the channel closes.
    if (isMainThread && process.send) process.once('disconnect', killAll)
  }
}

export function untrack(pid: number, owner: object): void {
  forgetTracee(pid, groups.get(pid) ?? pid)
  live.delete(pid)
  groups.delete(pid)
  owners.delete(pid)
  held.delete(pid)
  finalizer.unregister(owner)
}

/** Pids of tracees still alive in this thread (for tests of the cleanup itself). */
export function livePids(): number[] {
  return [...live]
}

/** Ends every live tracee of this thread (the plugin's afterEach); returns how many there were. */
export async function killLiveTracees(): Promise<number> {
  const pids = [...live]
  for (const pid of pids) {
    const owner = owners.get(pid)?.deref() as Releases | undefined
    const end = owner?.[RELEASE] ?? owner?.kill
    if (end) await end.call(owner)
    else if (live.delete(pid)) reapNow(pid)
    owners.delete(pid)
  }
  reapDetached()
  return pids.length
}
