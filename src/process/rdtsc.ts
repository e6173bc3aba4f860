// rdtsc and rdtscp fault while TSC faulting is on (PR_TSC_SIGSEGV): fixedRandom and the virtual
// clock answer them with a counter of their own.
import type { Arch } from '../native/arch/index.js'
import type { TraceeMemory } from './memory.js'
import type { TracedThread } from './thread.js'

/** Where rax, rdx, rcx and rip sit in an architecture's register block, looked up once. */
const slots = new WeakMap<Arch, readonly [number, number, number, number]>()

function slotsOf(arch: Arch): readonly [number, number, number, number] {
  let s = slots.get(arch)
  if (!s) {
    s = [
      arch.registers.indexOf('rax'),
      arch.registers.indexOf('rdx'),
      arch.registers.indexOf('rcx'),
      arch.registers.indexOf('rip'),
    ]
    slots.set(arch, s)
  }
  return s
}

/** The instruction bytes at the fault, reused: the loader alone faults 8 times a launch. */
const code = new Uint8Array(3)

/**
 * At a SIGSEGV: when the thread stands on rdtsc or rdtscp, gives it `counter()` (edx:eax; rcx, the
 * IA32_TSC_AUX of rdtscp, is CPU 0) and moves it past the instruction. False for any other fault.
 */
export function emulateTimestamp(t: TracedThread, memory: TraceeMemory, counter: () => bigint): boolean {
  const [rax, rdx, rcx, rip] = slotsOf(t.arch)
  if (rip < 0) return false // not x86_64: no rdtsc
  const words = t.block() // one GETREGS: the pc here, every register for the SETREGS below
  const pc = words[rip] ?? 0n
  try {
    memory.readRaw(pc, code)
  } catch {
    return false
  }
  const rdtsc = code[0] === 0x0f && code[1] === 0x31
  const rdtscp = code[0] === 0x0f && code[1] === 0x01 && code[2] === 0xf9
  if (!rdtsc && !rdtscp) return false
  const tsc = counter()
  words[rax] = tsc & 0xffffffffn
  words[rdx] = tsc >> 32n
  if (rdtscp) words[rcx] = 0n
  words[rip] = pc + (rdtscp ? 3n : 2n)
  t.commit()
  return true
}
