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

/** One pinned tracee ended; restores the thread's mask after the last. */
export function unpinThread(): void {
  if (users === 0) return
  users--
  if (users === 0 && saved) {
    setAffinity(saved)
    saved = undefined
  }
}
