// fork(): the child inherits a copy of our int3s; we must clean them out of its memory and let
// it go, so that only the parent's calls hit and the child runs (and exits) normally.
import { execFileSync } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import { fixture, le32, start, strayChildren } from '../helpers.js'

/** Pids of every process in a process group (the tracee leads its own group). */
function groupMembers(pgid: number): number[] {
  const out = execFileSync('ps', ['-e', '-o', 'pid=,pgid='], { encoding: 'utf8' })
  return out
    .split('\n')
    .map((l) => l.trim().split(/\s+/).map(Number))
    .filter(([, g]) => g === pgid)
    .map(([p]) => p ?? 0)
}

describe('forker fixture', () => {
  it("breaks on work() only in the parent (2 calls); the child's 3 calls run untouched and it exits 0", async () => {
    const proc = await start(fixture('forker'))
    const bp = proc.breakAt('work')
    const args: bigint[] = []
    const counters: number[] = []
    for (;;) {
      const ev = await proc.cont()
      if (ev.kind !== 'breakpoint') {
        expect(ev).toEqual({ kind: 'exited', exitCode: 0 })
        break
      }
      expect(ev.breakpoint).toBe(bp)
      expect(ev.location).toBe('forker!work')
      // Every stop is in the parent: the thread is the main thread of the process we launched.
      expect(ev.thread.tid).toBe(proc.pid)
      expect(proc.threads.map((t) => t.tid)).toEqual([proc.pid])
      args.push(proc.regs.rdi)
      counters.push(le32(proc.readMemory('g_work', 4)))
    }
    expect(args).toEqual([1n, 100n])
    // The child's work(10) x 3 changed its own copy of g_work, not the parent's.
    expect(counters).toEqual([0, 1])
    expect(bp.hits).toBe(2)
    // Had an int3 been left in the child, it would have died of SIGTRAP ("child status -1").
    expect(proc.stdout).toBe('child status 0\n')
    expect(proc.exit).toEqual({ exitCode: 0 })
    // Nothing left behind: no process in the tracee's group, no stopped or zombie child of ours.
    expect(groupMembers(proc.pid)).toEqual([])
    expect(strayChildren()).toEqual([])
  })
})

describe('vfork children (posix_spawn, system) share the int3s of the process', () => {
  it('a vforked child that calls a function with a breakpoint runs past it: system() under a breakpoint on execve', async () => {
    // glibc's system() is posix_spawn: clone(CLONE_VM|CLONE_VFORK), then execve in the child, on
    // the very int3 we placed in the memory it shares. Before: the child died of SIGTRAP.
    const proc = await start('/usr/bin/python3', {
      args: ['-c', "import os; print(os.system('echo from-the-child'), flush=True)"],
    })
    const bp = proc.breakAt('libc!execve')
    expect(await proc.cont()).toEqual({ kind: 'exited', exitCode: 0 })
    expect(proc.stdout).toBe('from-the-child\n0\n')
    expect(bp.hits).toBe(0) // the child's passage is not a hit of the launched process
    expect(strayChildren()).toEqual([])
  })
})

describe('descendants that leave the process group', () => {
  it.each([true, false])(
    'a child that calls setsid (util-linux setsid) still reads the virtual clock, isolate %s',
    async (isolate) => {
      // Its stops no longer come to a wait on the tracee's group: they are polled by tid. Before,
      // the child stopped at its first clock read until the launched process ended (a hang here).
      const proc = await start('/usr/bin/setsid', {
        args: ['--fork', '--wait', '/bin/sh', '-c', '/bin/date -u +%s.%N; sleep 0.2; /bin/date -u +%s.%N'],
        isolate,
      })
      expect(await proc.cont({ timeout: 10_000 })).toEqual({ kind: 'exited', exitCode: 0 })
      const [first, second] = proc.stdout.trim().split('\n').map(Number)
      expect(first).toBeGreaterThanOrEqual(946684800)
      expect(first).toBeLessThan(946684801) // 2000-01-01 and a few virtual milliseconds
      expect((second ?? 0) - (first ?? 0)).toBeGreaterThanOrEqual(0.2) // the sleep moved the one clock
      expect(strayChildren()).toEqual([])
    },
  )
})
