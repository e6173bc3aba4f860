// rdtsc and rdtscp fault while TSC faulting is on (PR_TSC_SIGSEGV): fixedRandom and the virtual
// clock answer them with a counter of their own.
import type { TraceeMemory } from './memory.js'
import type { TracedThread } from './thread.js'

/**
 * At a SIGSEGV: when the thread stands on rdtsc or rdtscp, gives it `counter()` (edx:eax; rcx, the
 * IA32_TSC_AUX of rdtscp, is CPU 0) and moves it past the instruction. False for any other fault.
 */
export function emulateTimestamp(t: TracedThread, memory: TraceeMemory, counter: () => bigint): boolean {
  const code = new Uint8Array(3)
  try {
    memory.readRaw(t.pc, code)
  } catch {
    return false
  }
  const rdtsc = code[0] === 0x0f && code[1] === 0x31
  const rdtscp = code[0] === 0x0f && code[1] === 0x01 && code[2] === 0xf9
  if (!rdtsc && !rdtscp) return false
  const tsc = counter()
  t.setRegisters({
    rax: tsc & 0xffffffffn,
    rdx: tsc >> 32n,
    ...(rdtscp ? { rcx: 0n } : {}),
    rip: t.pc + (rdtscp ? 3n : 2n),
  })
  return true
}
