// Stepping over a breakpoint without running the thread, for the few instructions that start
// most functions (as the kernel's uprobes do): endbr64, nop, push r64, mov rbp, rsp, and the
// mov eax, imm32 that starts libc's syscall wrappers (execve, write, ...).
// No flags, no memory reads: what these do is plain to compute, and it saves a single-step
// round trip (two context switches and a wait) per breakpoint hit.
import type { Emulation } from './types.js'

// Register indices in user_regs_struct order (see x86_64.ts).
const RBP = 4
const RSP = 19
const RIP = 16
// push r64: opcode 0x50+r, register number r (0-7) -> user_regs_struct index; with REX.B, r8-r15.
const PUSH_LOW = [10, 11, 12, 5, RSP, RBP, 13, 14] // rax rcx rdx rbx rsp rbp rsi rdi
const PUSH_HIGH = [9, 8, 7, 6, 3, 2, 1, 0] // r8 r9 r10 r11 r12 r13 r14 r15

/** Decodes the instruction at the start of `code` if it is one we emulate; undefined otherwise. */
export function decodeX86_64(code: Uint8Array): Emulation | undefined {
  const [b0, b1, b2, b3] = code
  if (b0 === 0xf3 && b1 === 0x0f && b2 === 0x1e && b3 === 0xfa) return { length: 4 } // endbr64
  if (b0 === 0x90) return { length: 1 } // nop
  if (b0 !== undefined && b0 >= 0x50 && b0 <= 0x57) return { length: 1, push: PUSH_LOW[b0 - 0x50] }
  if (b0 === 0x41 && b1 !== undefined && b1 >= 0x50 && b1 <= 0x57) return { length: 2, push: PUSH_HIGH[b1 - 0x50] }
  if (b0 === 0x48 && b1 === 0x89 && b2 === 0xe5) return { length: 3, copy: { from: RSP, to: RBP } } // mov rbp, rsp
  if (b0 !== undefined && b0 >= 0xb8 && b0 <= 0xbf && code.length >= 5) {
    const value = BigInt(new DataView(code.buffer, code.byteOffset + 1, 4).getUint32(0, true))
    return { length: 5, load: { to: PUSH_LOW[b0 - 0xb8] ?? 0, value } } // mov r32, imm32
  }
  return undefined
}

/**
 * Applies an emulation to a register block; `store` writes the pushed word and returns false if
 * it could not (the stack page is not there yet): then nothing is changed and the caller steps.
 */
export function applyX86_64(
  e: Emulation,
  regs: BigUint64Array,
  store: (address: bigint, value: bigint) => boolean,
): boolean {
  if (e.push !== undefined) {
    const sp = (regs[RSP] ?? 0n) - 8n
    if (!store(sp, regs[e.push] ?? 0n)) return false
    regs[RSP] = sp
  }
  if (e.copy) regs[e.copy.to] = regs[e.copy.from] ?? 0n
  if (e.load) regs[e.load.to] = e.load.value
  regs[RIP] = (regs[RIP] ?? 0n) + BigInt(e.length)
  return true
}
