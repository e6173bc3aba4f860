// `pin: true`: the JS thread and the tracee share one CPU while any pinned tracee lives; the
// thread's own mask comes back when the last one ends. Pinning is per thread, so it follows
// the Vitest worker that launched the process.
import { currentCpu, getAffinity, setAffinity, singleCpuMask } from '../native/affinity.js'

let saved: Uint8Array | undefined
let users = 0

/** Pins the calling thread to the CPU it is on; the next spawn inherits it. Returns false if refused. */
export function pinThread(): boolean {
  if (users === 0) {
    saved = getAffinity()
    if (!setAffinity(singleCpuMask(currentCpu()))) {
      saved = undefined
      return false
    }
  }
  users++
  return true
}

/** The thread's mask as it was before any pinning: what an unpinned tracee should run with. */
export function normalAffinity(): Uint8Array {
  return saved ?? getAffinity()
}

/** One pinned tracee ended; restores the thread's mask after the last. */
export function unpinThread(): void {
  if (users === 0) return
  users--
  if (users === 0 && saved) {
    setAffinity(saved)
    saved = undefined
  }
}

/**
 * Runs `spawn` with the calling thread briefly pinned to its CPU, so that the child starts on
 * this CPU: the vfork'ed child otherwise wakes on an idle CPU, which costs ~0.8 ms on a VM.
 * The child gets the thread's normal mask back right away. With `pin`, the thread is already pinned.
 */
export function spawnOnThisCpu(spawn: () => number): number {
  if (users > 0) return spawn()
  const mask = getAffinity()
  const pinned = setAffinity(singleCpuMask(currentCpu()))
  const pid = spawn()
  if (pinned) {
    setAffinity(mask)
    if (pid > 0) setAffinity(mask, pid)
  }
  return pid
}
