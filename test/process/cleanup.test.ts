// No tracee outlives its test: not after many launches, not after `await using`, not when the
// tracer process itself dies, not when the program ends on its own.
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterEach, describe, expect, it } from 'vitest'
import { launch, livePids, type Process } from '../../src/index.js'
import { useDist } from '../dist.js'
import { fixture, start, strayChildren } from '../helpers.js'

function openFds(): number {
  return readdirSync('/proc/self/fd').length
}

/** 'gone', 'Z' (a zombie: dead, waiting for its parent), or the live state letter. */
function procState(pid: number): string {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'latin1')
    return /^State:\s+(\S)/m.exec(status)?.[1] ?? '?'
  } catch {
    return 'gone'
  }
}

function isDead(pid: number): boolean {
  const state = procState(pid)
  return state === 'gone' || state === 'Z'
}

/** Polls until `pid` is dead (gone or a zombie) or `ms` pass; returns whether it died. */
async function diesWithin(pid: number, ms: number): Promise<boolean> {
  const until = performance.now() + ms
  for (;;) {
    if (isDead(pid)) return true
    if (performance.now() > until) return false
    await sleep(20)
  }
}

function expectNothingLeft(): void {
  expect(livePids()).toEqual([])
  expect(strayChildren()).toEqual([])
}

describe('many launches', () => {
  it('500 launches, half run to exit and half killed at the entry stop, leave no child, no tracked pid and no fd', async () => {
    // Warm up (the launcher memfd, koffi bindings) before counting fds.
    const warm = await launch(fixture('counter'), { args: ['0'] })
    expect(await warm.wait()).toEqual({ exitCode: 0 })
    const fdsBefore = openFds()
    const pids = new Set<number>()
    for (let i = 0; i < 500; i++) {
      const proc = await start(fixture('counter'), { args: ['0'] })
      pids.add(proc.pid)
      if (i % 2 === 0) {
        expect(await proc.wait()).toEqual({ exitCode: 0 })
        expect(proc.stdout).toBe('total 0\n')
      } else {
        expect(await proc.kill()).toEqual({ signal: 'SIGKILL' })
      }
    }
    expect(pids.size).toBeGreaterThan(1)
    expectNothingLeft()
    expect(openFds()).toBe(fdsBefore)
  }, 60_000)
})

describe('disposal', () => {
  it('`await using` kills and reaps the process at the end of the block', async () => {
    let pid = 0
    {
      await using proc = await launch(fixture('forever'))
      pid = proc.pid
      expect(procState(pid)).toBe('t') // stopped by the tracer at its entry point
      expect(livePids()).toContain(pid)
    }
    expect(pid).toBeGreaterThan(0)
    expect(() => process.kill(pid, 0)).toThrow(expect.objectContaining({ code: 'ESRCH' }))
    expect(existsSync(`/proc/${pid}`)).toBe(false)
    expectNothingLeft()
  })

  it('`await using` disposes a running process too, and when the block throws', async () => {
    let pid = 0
    const body = async (): Promise<void> => {
      await using proc = await launch(fixture('forever'))
      pid = proc.pid
      await expect(proc.cont({ timeout: 100 })).rejects.toMatchObject({ code: 'ERR_TIMEOUT' })
      throw new Error('test body failed')
    }
    await expect(body()).rejects.toThrow('test body failed')
    expect(existsSync(`/proc/${pid}`)).toBe(false)
    expectNothingLeft()
  })
})

describe('an operation the end of the process overtakes', () => {
  /** Rejections nobody handled while `body` ran (Vitest would blame them on whichever test runs next). */
  async function unhandledDuring(body: () => Promise<void>): Promise<unknown[]> {
    const seen: unknown[] = []
    const record = (reason: unknown): void => {
      seen.push(reason)
    }
    process.on('unhandledRejection', record)
    try {
      await body()
      await sleep(50) // unhandled rejections are reported after a turn of the event loop
    } finally {
      process.off('unhandledRejection', record)
    }
    return seen
  }

  it('kill() during cont, finish, runTo and wait: each resolves with the end, none rejects later', async () => {
    const ops: Array<[string, (proc: Process) => Promise<unknown>, unknown]> = [
      ['cont', (proc) => proc.cont(), { kind: 'killed', signal: 'SIGKILL' }],
      ['finish', (proc) => proc.finish(), { kind: 'killed', signal: 'SIGKILL' }],
      ['runTo', (proc) => proc.runTo('main'), { kind: 'killed', signal: 'SIGKILL' }], // main never comes back
      ['wait', (proc) => proc.wait(), { signal: 'SIGKILL' }],
    ]
    const unhandled = await unhandledDuring(async () => {
      for (const [name, op, end] of ops) {
        for (const delay of [-1, 0, 5]) {
          const proc = await launch(fixture('forever'))
          await proc.runTo('spin') // finish() from spin never returns by itself
          const pending = op(proc).then(
            (value) => value,
            (error: unknown) => `${name} rejected: ${String(error)}`,
          )
          if (delay >= 0) await sleep(delay)
          expect(await proc.kill()).toEqual({ signal: 'SIGKILL' })
          expect(await pending).toEqual(end)
          if (name !== 'wait') expect(proc.lastStop).toEqual(end)
          expect(proc.exit).toEqual({ signal: 'SIGKILL' })
        }
      }
    })
    expect(unhandled).toEqual([])
    expectNothingLeft()
  })

  it('un-awaited, then killed: nothing rejects after the test', async () => {
    const unhandled = await unhandledDuring(async () => {
      const proc = await launch(fixture('forever'))
      void proc.runTo('main')
      await proc.kill()
      const other = await launch(fixture('forever'))
      void other.cont()
      await sleep(5)
      await other.kill()
    })
    expect(unhandled).toEqual([])
    expectNothingLeft()
  })

  it('a SIGKILL from outside between stops: the next operation reports the end, never ESRCH', async () => {
    const ops: Array<[string, (proc: Process) => Promise<unknown>]> = [
      ['cont', (proc) => proc.cont()],
      ['step', (proc) => proc.step()],
      ['finish', (proc) => proc.finish()],
      ['wait', (proc) => proc.wait()],
    ]
    for (const [name, op] of ops) {
      // threads: the stop is all-stop over several threads, and each of them is killed under us.
      const proc = await launch(fixture('threads'), { args: ['4', '100000000'] })
      proc.breakAt('worker_tick')
      expect((await proc.cont()).kind).toBe('breakpoint')
      process.kill(proc.pid, 'SIGKILL')
      expect(await diesWithin(proc.pid, 5000)).toBe(true)
      const result = await op(proc)
      expect(result, name).toEqual(name === 'wait' ? { signal: 'SIGKILL' } : { kind: 'killed', signal: 'SIGKILL' })
      expect(proc.exit).toEqual({ signal: 'SIGKILL' })
    }
    // runTo keeps its contract: the process ended before the location.
    const proc = await launch(fixture('counter'), { args: ['1'] })
    process.kill(proc.pid, 'SIGKILL')
    expect(await diesWithin(proc.pid, 5000)).toBe(true)
    await expect(proc.runTo('bump')).rejects.toMatchObject({
      code: 'ERR_PROCESS_EXITED',
      message: expect.stringMatching(/was killed by SIGKILL before reaching (counter!)?bump/) as unknown,
    })
    expectNothingLeft()
  })

  it('after a SIGKILL from outside, memory, breakpoints and snapshots say the process is gone (ERR_PROCESS_ENDED)', async () => {
    const proc = await launch(fixture('counter'), { args: ['1'] })
    await proc.runTo('bump')
    process.kill(proc.pid, 'SIGKILL')
    expect(await diesWithin(proc.pid, 5000)).toBe(true)
    const uses: Array<[string, () => unknown]> = [
      ['read memory', () => proc.readMemory('g_counter', 4)],
      ['write memory', () => proc.writeMemory('g_counter', Uint8Array.of(1))],
      ['set a breakpoint', () => proc.breakAt('compute')],
      ['snapshot', () => proc.createSnapshot()],
    ]
    for (const [what, use] of uses) {
      let error: unknown
      try {
        use()
      } catch (caught) {
        error = caught
      }
      expect(error, what).toMatchObject({ code: 'ERR_PROCESS_ENDED' })
      expect((error as Error).message, what).toMatch(
        /is gone\. (It|The process) was killed or ended outside procsnap since its last stop .*await proc\.wait\(\) to learn how it ended/,
      )
    }
    expect(await proc.wait()).toEqual({ signal: 'SIGKILL' })
    expectNothingLeft()
  })

  it('kill() while bash forks and reaps children (a stop every few ms): cont always resolves with the kill', async () => {
    const unhandled = await unhandledDuring(async () => {
      for (let i = 0; i < 60; i++) {
        const proc = await launch('/bin/bash', { args: ['-c', 'for i in $(seq 500); do /bin/true; done'] })
        const pending = proc.cont().then(
          (value) => value,
          (error: unknown) => String(error),
        )
        await sleep(i % 6)
        expect(await proc.kill()).toEqual({ signal: 'SIGKILL' })
        expect(await pending).toEqual({ kind: 'killed', signal: 'SIGKILL' })
      }
    })
    expect(unhandled).toEqual([])
    expectNothingLeft()
  }, 60_000)
})

describe('the tracer process ends', () => {
  const distBuild = useDist()

  // A failed test must not leave its tracer node running (it would count as a stray child later).
  const tracers: ChildProcess[] = []
  afterEach(() => {
    for (const child of tracers.splice(0))
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })

  /** Starts a child node running `script`, resolves with its first stdout line parsed as JSON. */
  async function runTracer(
    script: string,
  ): Promise<{ child: ReturnType<typeof spawn>; first: unknown; exited: Promise<[number | null, string | null]> }> {
    const child = spawn(process.execPath, [distBuild().write(script)], {
      cwd: distBuild().dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    tracers.push(child)
    const exited = new Promise<[number | null, string | null]>((resolve) =>
      child.on('exit', (code, signal) => resolve([code, signal])),
    )
    let out = ''
    let err = ''
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()))
    const first = await new Promise<unknown>((resolve, reject) => {
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString()
        const nl = out.indexOf('\n')
        if (nl >= 0) resolve(JSON.parse(out.slice(0, nl)))
      })
      void exited.then(([code, signal]) =>
        reject(new Error(`tracer exited (${code ?? signal}) before printing: ${err}`)),
      )
    })
    return { child, first, exited }
  }

  const twoTracees = `
import { launch } from './index.js'
const stopped = await launch(${JSON.stringify(fixture('forever'))})
const running = await launch(${JSON.stringify(fixture('forever'))})
const pending = running.cont({ timeout: 600000 })
await new Promise((r) => setTimeout(r, 50))
console.log(JSON.stringify([stopped.pid, running.pid]))
`

  it('SIGKILL of the tracer kills its tracees, stopped or running (PTRACE_O_EXITKILL)', async () => {
    const { child, first, exited } = await runTracer(`${twoTracees}await pending\n`)
    const pids = first as [number, number]
    expect(pids).toHaveLength(2)
    expect(procState(pids[0])).toBe('t')
    expect(procState(pids[1])).toBe('R')
    child.kill('SIGKILL')
    expect(await exited).toEqual([null, 'SIGKILL'])
    for (const pid of pids) expect(await diesWithin(pid, 5000)).toBe(true)
    expect(strayChildren()).toEqual([])
  })

  it('a tracer that exits normally with live tracees kills and reaps them on the way out', async () => {
    const { first, exited } = await runTracer(`${twoTracees}process.exit(3)\n`)
    const pids = first as [number, number]
    // Without the exit hook node never exits: a thread-pool waitpid on the running tracee blocks its shutdown.
    const timedOut = sleep(10_000, 'still running after 10 s', { ref: false })
    expect(await Promise.race([exited, timedOut])).toEqual([3, null])
    // Reaped by the exit hook, not left as zombies for init.
    for (const pid of pids) expect(procState(pid)).toBe('gone')
  })

  it('a handle that is garbage-collected kills its tracee', async () => {
    const script = `
import { launch } from './index.js'
let proc = await launch(${JSON.stringify(fixture('forever'))})
const pid = proc.pid
proc = undefined
for (let i = 0; i < 50; i++) {
  globalThis.gc()
  await new Promise((r) => setTimeout(r, 20))
  try { process.kill(pid, 0) } catch { break }
}
let state = 'gone'
try { state = /State:\\s+(\\S)/.exec((await import('node:fs')).readFileSync('/proc/' + pid + '/status', 'latin1'))[1] } catch {}
console.log(JSON.stringify({ pid, state }))
`
    const child = spawn(process.execPath, ['--expose-gc', distBuild().write(script)], {
      cwd: distBuild().dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    tracers.push(child)
    let out = ''
    let err = ''
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()))
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()))
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)))
    expect(err).toBe('')
    expect(code).toBe(0)
    const result = JSON.parse(out) as { pid: number; state: string }
    expect(result.state).toBe('gone')
    expect(procState(result.pid)).toBe('gone')
  })
})

describe('a process that ends on its own', () => {
  it('runs to exit through its breakpoints and leaves nothing, without kill() or wait()', async () => {
    const proc = await launch(fixture('counter'), { args: ['2'] })
    proc.breakAt('bump')
    expect((await proc.cont()).kind).toBe('breakpoint')
    expect((await proc.cont()).kind).toBe('breakpoint')
    expect(await proc.cont()).toEqual({ kind: 'exited', exitCode: 0 })
    expect(existsSync(`/proc/${proc.pid}`)).toBe(false)
    expectNothingLeft()
  })

  it('dies of a signal (SIGSEGV delivered) and leaves nothing', async () => {
    const proc = await launch(fixture('segfault'))
    const fault = await proc.cont()
    expect(fault).toMatchObject({ kind: 'signal', signal: 'SIGSEGV', faultAddress: 0n })
    expect(await proc.cont()).toEqual({ kind: 'killed', signal: 'SIGSEGV' })
    expect(proc.exit).toEqual({ signal: 'SIGSEGV' })
    expect(existsSync(`/proc/${proc.pid}`)).toBe(false)
    expectNothingLeft()
  })

  it('exits during a runTo that never arrives and leaves nothing', async () => {
    const proc = await launch(fixture('counter'), { args: ['0'] })
    await expect(proc.runTo('bump')).rejects.toMatchObject({ code: 'ERR_PROCESS_EXITED' })
    expect(existsSync(`/proc/${proc.pid}`)).toBe(false)
    expectNothingLeft()
  })

  it('forks a child (released with our breakpoints removed) and leaves neither behind', async () => {
    const proc = await launch(fixture('forker'))
    const bp = proc.breakAt('work')
    const hits: bigint[] = []
    for (;;) {
      const ev = await proc.cont()
      if (ev.kind !== 'breakpoint') {
        expect(ev).toEqual({ kind: 'exited', exitCode: 0 })
        break
      }
      hits.push(proc.regs.rdi)
    }
    // Only the parent's calls are reported; the child's three work(10) ran without our int3.
    expect(hits).toEqual([1n, 100n])
    expect(bp.hits).toBe(2)
    expect(proc.stdout).toBe('child status 0\n')
    expectNothingLeft()
  })
})
