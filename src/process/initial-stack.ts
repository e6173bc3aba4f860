// A new program's stack at its exec stop: argc, argv, envp, then the auxiliary vector, read in a
// syscall or two where /proc/PID/auxv costs an open, two reads and a close.
import type { TraceeMemory } from './memory.js'

const CHUNK = 512
/** More words than any argv and envp hold (the kernel caps their strings at 1/4 of the stack limit). */
const MAX_WORDS = 1 << 20

export interface StackAuxv {
  /** The (type, value) pairs up to and including AT_NULL, as /proc/PID/auxv has them. */
  readonly bytes: Buffer
  /** Where the first pair sits on the stack. */
  readonly address: bigint
}

/** The auxiliary vector above `sp` (the exec stop's: it points at argc); undefined if the stack cannot be read. */
export function readStackAuxv(memory: TraceeMemory, sp: bigint): StackAuxv | undefined {
  const word = stackWords(memory)
  const argc = word(sp)
  if (argc === undefined || argc > BigInt(MAX_WORDS)) return undefined
  let at = sp + 8n * (argc + 2n) // past argc, argv and its NULL
  for (let n = 0; ; n++, at += 8n) {
    const w = word(at) // envp, up to its NULL
    if (w === undefined || n > MAX_WORDS) return undefined
    if (w === 0n) break
  }
  const address = at + 8n
  const pairs: bigint[] = []
  for (let p = address; pairs.length < 2 * 1024; p += 16n) {
    const type = word(p)
    const value = word(p + 8n)
    if (type === undefined || value === undefined) return undefined
    pairs.push(type, value)
    if (type === 0n) break
  }
  const bytes = Buffer.alloc(8 * pairs.length)
  pairs.forEach((w, i) => bytes.writeBigUInt64LE(w, 8 * i))
  return { bytes, address }
}

/** The value of `type` in an auxiliary vector's bytes, and the index of its pair. */
export function auxvLookup(bytes: Uint8Array, type: bigint): { value: bigint; index: number } | undefined {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  for (let i = 0; 16 * i + 16 <= bytes.length; i++) {
    const t = view.getBigUint64(16 * i, true)
    if (t === type) return { value: view.getBigUint64(16 * i + 8, true), index: i }
    if (t === 0n) return undefined
  }
  return undefined
}

/** 64-bit words of the stack going up, read a chunk at a time; undefined for a word that cannot be read. */
function stackWords(memory: TraceeMemory): (address: bigint) => bigint | undefined {
  let base = 0n
  let view: DataView | undefined
  const chunk = new Uint8Array(CHUNK)
  const one = new Uint8Array(8)
  return (address) => {
    if (!view || address < base || address + 8n > base + BigInt(CHUNK)) {
      try {
        memory.readRaw(address, chunk)
        base = address
        view = new DataView(chunk.buffer)
      } catch {
        // the chunk runs past the stack's end: this word alone
        view = undefined
        try {
          memory.readRaw(address, one)
        } catch {
          return undefined
        }
        return new DataView(one.buffer).getBigUint64(0, true)
      }
    }
    return view.getBigUint64(Number(address - base), true)
  }
}
