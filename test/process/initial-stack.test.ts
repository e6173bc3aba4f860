// The auxiliary vector read from a new program's stack (initial-stack.ts) is the kernel's own copy,
// /proc/PID/auxv, whatever the size of argv and envp above which it sits.
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { auxvLookup, readStackAuxv } from '../../src/process/initial-stack.js'
import { TraceeMemory } from '../../src/process/memory.js'
import { fixture, start } from '../helpers.js'

const AT_ENTRY = 9n
const AT_RANDOM = 25n

describe('readStackAuxv', () => {
  const cases = [
    { name: 'the default environment', options: {} },
    { name: 'isolate: false', options: { isolate: false } },
    // argv and envp of a few thousand words push the auxv several 512-byte chunks up
    {
      name: 'a long argv and envp',
      options: {
        args: Array.from({ length: 3000 }, (_, i) => `a${i}`),
        env: Object.fromEntries(Array.from({ length: 2000 }, (_, i) => [`V${i}`, 'x'])),
      },
    },
  ]
  for (const { name, options } of cases) {
    it(`at the entry point (sp as the exec left it): /proc/PID/auxv, with ${name}`, async () => {
      const proc = await start(fixture('counter'), options)
      const memory = new TraceeMemory(proc.pid, () => proc.maps)
      try {
        const auxv = readStackAuxv(memory, proc.regs.rsp)
        expect(auxv).toBeDefined()
        expect(auxv?.bytes.equals(readFileSync(`/proc/${proc.pid}/auxv`))).toBe(true)
        expect(auxvLookup(auxv?.bytes ?? Buffer.alloc(0), AT_ENTRY)?.value).toBe(proc.regs.rip)
        // The pair's address on the stack holds its type.
        const index = auxvLookup(auxv?.bytes ?? Buffer.alloc(0), AT_RANDOM)?.index ?? -1
        const type = proc.readMemory((auxv?.address ?? 0n) + 16n * BigInt(index), 8)
        expect(Buffer.from(type).readBigUInt64LE(0)).toBe(AT_RANDOM)
      } finally {
        memory.close()
      }
    })
  }

  it('is undefined where sp points at nothing readable', async () => {
    const proc = await start(fixture('counter'))
    const memory = new TraceeMemory(proc.pid, () => proc.maps)
    try {
      expect(readStackAuxv(memory, 0x1000n)).toBeUndefined()
    } finally {
      memory.close()
    }
  })
})
