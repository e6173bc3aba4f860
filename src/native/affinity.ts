// CPU affinity of the calling thread. Tracer and tracee on one CPU turn every ptrace round trip
// into a same-CPU switch instead of a cross-CPU wake-up (DESIGN.md §2: up to 4x faster here).
import { sys } from './libc.js'

const MASK_BYTES = 128 // cpu_set_t: 1024 CPUs

/** The affinity mask of the calling thread. */
export function getAffinity(): Uint8Array {
  const mask = new Uint8Array(MASK_BYTES)
  sys.sched_getaffinity(0, MASK_BYTES, mask)
  return mask
}

/** Sets the mask of the calling thread (tid 0) or of another thread; returns true on success. */
export function setAffinity(mask: Uint8Array, tid = 0): boolean {
  return sys.sched_setaffinity(tid, MASK_BYTES, mask) === 0
}

/** A mask with only `cpu` set. */
export function singleCpuMask(cpu: number): Uint8Array {
  const mask = new Uint8Array(MASK_BYTES)
  mask[cpu >> 3] = 1 << (cpu & 7)
  return mask
}

/** The CPU the calling thread runs on now. */
export function currentCpu(): number {
  return sys.sched_getcpu()
}
