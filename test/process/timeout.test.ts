// Deadlines: a wait that passes its timeout interrupts the process, rejects with ERR_TIMEOUT naming
// where it stopped, and leaves it usable; the event loop keeps running meanwhile, so Vitest's own
// test timeout still fires on a wait with a long deadline.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { execa } from 'execa'
import { afterEach, describe, expect, it } from 'vitest'
import { TimeoutError, type Process } from '../../src/index.js'
import { fixture, le64, start } from '../helpers.js'

/** Runs `cont({ timeout })`, expects a TimeoutError, and returns it with the time the wait took. */
async function contTimesOut(proc: Process, timeout: number): Promise<{ error: TimeoutError; ms: number }> {
  const t0 = performance.now()
  let caught: unknown
  try {
    const ev = await proc.cont({ timeout })
    throw new Error(`cont() returned ${ev.kind} instead of timing out`)
  } catch (error) {
    caught = error
  }
  const ms = performance.now() - t0
  expect(caught).toBeInstanceOf(TimeoutError)
  const error = caught as TimeoutError
  expect(error.code).toBe('ERR_TIMEOUT')
  return { error, ms }
}

describe('timeouts on a spinning process (forever)', () => {
  it('cont({ timeout: 200 }) rejects with ERR_TIMEOUT in spin(), and the process stays usable', async () => {
    const proc = await start(fixture('forever'))
    const spin = proc.resolve('spin')
    const { error, ms } = await contTimesOut(proc, 200)
    expect(ms).toBeGreaterThanOrEqual(190)
    expect(ms).toBeLessThan(2000)
    expect(error.location).toMatch(/^forever!spin/)
    expect(error.message).toContain('forever!spin')
    expect(error.pc).toBeDefined()
    expect(error.message).toContain(`0x${(error.pc ?? 0n).toString(16)}`)

    // Stopped where the error says, in the loop of spin (its body is at spin+0x4 .. spin+0x18).
    expect(proc.regs.rip).toBe(error.pc)
    expect(proc.regs.rip).toBeGreaterThanOrEqual(spin + 4n)
    expect(proc.regs.rip).toBeLessThan(spin + 0x18n)
    expect(proc.symbolize(proc.regs.rip)).toBe(error.location)
    expect(proc.thread.index).toBe(1)
    const spins1 = le64(proc.readMemory('g_spins', 8))
    expect(spins1).toBeGreaterThan(0n)
    // The same counter, read again at the same stop, has not moved: the process really is stopped.
    expect(le64(proc.readMemory('g_spins', 8))).toBe(spins1)
    expect(proc.readMemory('g_spins', 4)).toHaveLength(4)
    expect(proc.stdout).toBe('spinning\n')

    // A second timed-out cont: it ran again (the counter moved), and stopped again in spin.
    const second = await contTimesOut(proc, 150)
    expect(second.ms).toBeLessThan(2000)
    expect(second.error.location).toMatch(/^forever!spin/)
    const spins2 = le64(proc.readMemory('g_spins', 8))
    expect(spins2).toBeGreaterThan(spins1)

    // And a breakpoint still works after the interrupts: the loop is back at spin+0x4 within a turn.
    const loop = proc.breakAt(spin + 4n)
    const hit = await proc.cont({ timeout: 2000 })
    expect(hit).toMatchObject({ kind: 'breakpoint', pc: spin + 4n, location: 'forever!spin+0x4' })
    expect(loop.hits).toBe(1)

    expect(await proc.kill()).toEqual({ signal: 'SIGKILL' })
    expect(proc.exit).toEqual({ signal: 'SIGKILL' })
    expect(existsSync(`/proc/${proc.pid}`)).toBe(false)
  })
})

describe('timeouts on a process blocked in a syscall (sleeper)', () => {
  it('cont({ timeout: 200 }) interrupts sleep() inside nap(), and the process stays usable', async () => {
    const proc = await start(fixture('sleeper'))
    const nap = proc.resolve('nap')
    const { error, ms } = await contTimesOut(proc, 200)
    expect(ms).toBeGreaterThanOrEqual(190)
    expect(ms).toBeLessThan(2000)
    // Interrupted in the syscall, in libc (sleep -> clock_nanosleep); named in the message.
    expect(error.location).toMatch(/^libc\.so\.6[!+]/)
    expect(error.message).toContain(error.location ?? '<none>')
    expect(proc.regs.rip).toBe(error.pc)
    expect(proc.regs.orig_rax).toBe(230n) // clock_nanosleep, the syscall it was blocked in
    // nap() called sleep(): its return address (somewhere in nap) is on the live stack.
    const top = proc.maps.find((m) => m.path === '[stack]')?.end ?? 0n
    const stack = Buffer.from(proc.readMemory(proc.regs.rsp, Number(top - proc.regs.rsp)))
    const words = Array.from({ length: stack.length / 8 }, (_, i) => stack.readBigUInt64LE(i * 8))
    expect(words.some((w) => w > nap && proc.symbolize(w).startsWith('sleeper!nap+'))).toBe(true)
    expect(proc.stdout).toBe('napping\n')

    // Still sleeping after being resumed: the second wait times out too, in the same syscall.
    const second = await contTimesOut(proc, 150)
    expect(second.error.location).toBe(error.location)
    // The kernel resumed the interrupted sleep with restart_syscall (219): sleep() never returned
    // early to the program, which would have exited.
    expect(proc.regs.orig_rax).toBe(219n)
    expect(proc.exit).toBeUndefined()
    expect(await proc.kill()).toEqual({ signal: 'SIGKILL' })
  })

  it('keeps the event loop running during a wait: a setInterval ticks while cont({ timeout: 500 }) waits', async () => {
    const proc = await start(fixture('sleeper'))
    let ticks = 0
    const interval = setInterval(() => ticks++, 20)
    try {
      const { ms } = await contTimesOut(proc, 500)
      expect(ms).toBeGreaterThanOrEqual(490)
      // ~25 ticks in 500 ms; a blocked event loop would give 0 or 1.
      expect(ticks).toBeGreaterThanOrEqual(10)
    } finally {
      clearInterval(interval)
    }
  })

  it('keeps the event loop running while a spinning process is waited on', async () => {
    const proc = await start(fixture('forever'))
    let ticks = 0
    const interval = setInterval(() => ticks++, 20)
    try {
      await contTimesOut(proc, 500)
      expect(ticks).toBeGreaterThanOrEqual(10)
    } finally {
      clearInterval(interval)
    }
  })
})

describe("Vitest's test timeout", () => {
  const dir = fileURLToPath(new URL('./.tmp-timeout/', import.meta.url))

  afterEach(() => {
    rmSync(dir, { recursive: true, force: true })
  })

  it('still fires on a cont() with a 60 s deadline: the run fails with "Test timed out" instead of hanging', async () => {
    rmSync(dir, { recursive: true, force: true })
    mkdirSync(dir, { recursive: true })
    const helpers = fileURLToPath(new URL('../helpers.js', import.meta.url))
    const pidFile = `${dir}pid`
    writeFileSync(
      `${dir}inner.test.ts`,
      `import { writeFileSync } from 'node:fs'
import { it } from 'vitest'
import { fixture, start } from ${JSON.stringify(helpers)}

it('waits on forever', async () => {
  const proc = await start(fixture('forever'), { timeout: 60_000 })
  writeFileSync(${JSON.stringify(pidFile)}, String(proc.pid))
  await proc.cont()
}, 500)
`,
    )
    // Its own config, rooted in the temp dir, so that the repository's include globs do not matter.
    writeFileSync(
      `${dir}vitest.config.ts`,
      `export default { test: { include: ['inner.test.ts'], pool: 'forks', hookTimeout: 10_000 } }\n`,
    )
    const t0 = performance.now()
    const child = await execa(
      'npx',
      ['vitest', 'run', '--config', `${dir}vitest.config.ts`, '--root', dir, '--reporter', 'verbose'],
      {
        cwd: fileURLToPath(new URL('../../', import.meta.url)),
        reject: false,
        all: true,
        timeout: 60_000,
        env: { CI: '1', NO_COLOR: '1', FORCE_COLOR: '0' },
      },
    )
    const ms = performance.now() - t0
    expect(child.timedOut, child.all).toBe(false)
    expect(ms).toBeLessThan(30_000)
    expect(child.exitCode, child.all).toBe(1)
    expect(child.all).toContain('Test timed out in 500ms')
    expect(child.all).toMatch(/1 failed/)
    // The tracee did not outlive the run.
    const pid = Number(readFileSync(pidFile, 'utf8'))
    expect(pid).toBeGreaterThan(0)
    expect(existsSync(`/proc/${pid}`)).toBe(false)
  }, 60_000)
})
