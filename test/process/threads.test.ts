// Multi-threaded tracees: all-stop at every breakpoint, no hit lost while another thread steps
// over a site, threads numbered by creation order.
import { readFileSync, readdirSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import type { Process, StopEvent } from '../../src/index.js'
import { fixture, start } from '../helpers.js'

const N = 4
const K = 200

/** tids of the threads of a process as the kernel lists them (/proc/PID/task). */
function kernelTids(pid: number): number[] {
  return readdirSync(`/proc/${pid}/task`)
    .map(Number)
    .sort((a, b) => a - b)
}

/** The kernel's run state of a thread: 't' is a ptrace stop. */
function kernelState(pid: number, tid: number): string {
  const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'latin1')
  return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3)
}

/**
 * Every thread is in a ptrace stop (the kernel says so) and its registers can be read at this stop,
 * and indexes follow creation order: the main thread is 1, then increasing, never above the number
 * of threads created (an exited thread leaves a gap: indexes are not reused, as in gdb).
 */
function expectAllStopped(proc: Process, created: number): void {
  const threads = proc.threads
  const indexes = threads.map((t) => t.index)
  expect(indexes[0]).toBe(1)
  expect(threads[0]?.tid).toBe(proc.pid)
  for (let i = 1; i < indexes.length; i++) expect(indexes[i]).toBeGreaterThan(indexes[i - 1] ?? Infinity)
  expect(indexes.at(-1)).toBeLessThanOrEqual(created)
  for (const t of threads) {
    expect(kernelState(proc.pid, t.tid), `thread ${t.index} (tid ${t.tid})`).toBe('t')
    expect(typeof t.regs.rsp).toBe('bigint')
    expect(t.regs.rip).toBe(t.pc)
    expect(t.pc).toBeGreaterThan(0n)
  }
}

describe('threads fixture', () => {
  // Stepping over the int3 is done by emulating worker_tick's first instruction (push rbp) by
  // default, or by restore-single-step-reinsert: both must keep the other threads from missing a hit.
  it.each([
    { how: 'emulated', emulateStepOver: true },
    { how: 'single-stepped', emulateStepOver: false },
  ])(
    `reports exactly N*K = ${N * K} hits of worker_tick, all-stop at each (step-over $how)`,
    async ({ emulateStepOver }) => {
      const proc = await start(fixture('threads'), { args: [String(N), String(K)], emulateStepOver })
      const main = proc.thread
      const bp = proc.breakAt('worker_tick')
      const seenTids = new Set<number>()
      const indexByTid = new Map<number, number>()
      let events = 0
      let end: StopEvent | undefined
      for (;;) {
        const ev = await proc.cont()
        if (ev.kind !== 'breakpoint') {
          end = ev
          break
        }
        events++
        expect(ev.breakpoint).toBe(bp)
        expect(ev.location).toBe('threads!worker_tick')
        expect(ev.pc).toBe(bp.address)
        expect(ev.thread.regs.rip).toBe(bp.address)
        expect(ev.thread.tid).not.toBe(main.tid)
        // rdi is the worker's id argument, 0..N-1.
        expect(ev.thread.regs.rdi).toBeLessThan(BigInt(N))
        const threads = proc.threads
        expect(threads.map((t) => t.tid)).toContain(ev.thread.tid)
        // The same thread keeps the same index from stop to stop.
        for (const t of threads) {
          const known = indexByTid.get(t.tid)
          if (known !== undefined) expect(t.index).toBe(known)
          else indexByTid.set(t.tid, t.index)
        }
        expectAllStopped(proc, N + 1)
        // Every thread the kernel knows is one we know (none unseen, none missing).
        expect(threads.map((t) => t.tid).sort((a, b) => a - b)).toEqual(kernelTids(proc.pid))
        seenTids.add(ev.thread.tid)
        expect(bp.hits).toBe(events)
      }
      expect(end).toEqual({ kind: 'exited', exitCode: 0 })
      expect(events).toBe(N * K)
      expect(bp.hits).toBe(N * K)
      expect(seenTids.size).toBe(N)
      expect(proc.stdout).toBe(`ticks ${N * K}\n`)
    },
  )

  it('stops at thread_started once in each of 4 threads, with the thread id in rdi', async () => {
    const proc = await start(fixture('threads'), { args: [String(N), '1'] })
    const bp = proc.breakAt('thread_started')
    const ids: bigint[] = []
    const tids: number[] = []
    for (;;) {
      const ev = await proc.cont()
      if (ev.kind !== 'breakpoint') {
        expect(ev).toEqual({ kind: 'exited', exitCode: 0 })
        break
      }
      expect(ev.location).toBe('threads!thread_started')
      expect(ev.thread.tid).not.toBe(proc.pid)
      expect(proc.regs.rip).toBe(bp.address)
      // proc.regs is the registers of the thread that stopped.
      expect(proc.thread.tid).toBe(ev.thread.tid)
      ids.push(proc.regs.rdi)
      expect(proc.regs.edi).toBe(ev.thread.regs.rdi)
      tids.push(ev.thread.tid)
    }
    expect(new Set(tids).size).toBe(N)
    expect(tids).toHaveLength(N)
    expect([...ids].sort((a, b) => Number(a - b))).toEqual([0n, 1n, 2n, 3n])
    expect(bp.hits).toBe(N)
    expect(proc.stdout).toBe(`ticks ${N}\n`)
  })

  it('lists threads in creation order: the main thread is index 1 with tid === pid', async () => {
    const proc = await start(fixture('threads'), { args: [String(N), '1'] })
    expect(proc.threads).toHaveLength(1)
    expect(proc.threads[0]?.tid).toBe(proc.pid)
    expect(proc.threads[0]?.index).toBe(1)
    // thread_started(id) runs first thing in the thread created by the id-th pthread_create.
    proc.breakAt('thread_started')
    const seen: { tid: number; index: number }[] = []
    const indexOfId = new Map<bigint, number>()
    for (let i = 0; i < N; i++) {
      const ev = await proc.cont()
      expect(ev.kind).toBe('breakpoint')
      if (ev.kind !== 'breakpoint') return
      indexOfId.set(ev.thread.regs.rdi, ev.thread.index)
      const threads = proc.threads
      expect(threads[0]).toMatchObject({ index: 1, tid: proc.pid })
      // Sorted by index; a thread keeps its index from stop to stop (workers may exit in between).
      for (let j = 1; j < threads.length; j++)
        expect(threads[j]?.index).toBeGreaterThan(threads[j - 1]?.index ?? Infinity)
      for (const t of threads) {
        const before = seen.find((s) => s.tid === t.tid)
        if (before) expect(t.index).toBe(before.index)
        else seen.push({ tid: t.tid, index: t.index })
      }
    }
    // Main created the workers one after the other (id 0 first): worker id k is thread k + 2.
    expect(seen.map((t) => t.index).sort()).toEqual([1, 2, 3, 4, 5])
    expect([...indexOfId.entries()].sort((a, b) => a[1] - b[1])).toEqual([
      [0n, 2],
      [1n, 3],
      [2n, 4],
      [3n, 5],
    ])
    expect((await proc.wait()).exitCode).toBe(0)
  })
})
