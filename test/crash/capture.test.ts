// launch's { crash: 'snapshot' } and toHaveCrashed: a crash is caught before its signal is
// delivered, a signal the program handles is not a crash, and the matcher judges a process or a
// snapshot by signal, function and signature, with a message that says what happened instead.
import { beforeAll, describe, expect, it } from 'vitest'
import { launch, type Process } from '../../src/index.js'
import { processMatchers } from '../../src/matchers/index.js'
import { failure, fixture, start } from '../helpers.js'

beforeAll(() => {
  expect.extend(processMatchers)
})

describe("launch({ crash: 'snapshot' })", () => {
  it('snapshots the process at its fatal signal, before delivery, then lets it die of it', async () => {
    const proc = await start(fixture('crashes'), { args: ['write'], crash: 'snapshot' })
    expect(await proc.wait()).toEqual({ signal: 'SIGSEGV' })
    const crash = proc.crash
    expect(crash?.snapshot.stop).toMatchObject({ kind: 'signal', signal: 'SIGSEGV', faultAddress: 0n })
    expect(crash?.report.cause).toBe('SIGSEGV: write to 0x0 (address not mapped) in crashes!store_null')
    expect(crash?.snapshot.backtrace().map((f) => f.symbol)).toEqual(
      expect.arrayContaining(['store_null', 'run', 'main']),
    )
    expect(proc).toHaveCrashed({ signal: 'SIGSEGV', at: 'store_null', signature: crash?.report.signature })
    expect(proc).toHaveCrashed({ signal: 'segv', at: 'crashes!store_null' })
    expect(proc).not.toHaveCrashed({ signal: 'SIGABRT' })
    const message = failure(() => expect(proc).toHaveCrashed({ at: 'main' }))
    expect(message).toContain('it crashed: SIGSEGV: write to 0x0 (address not mapped) in crashes!store_null')
    expect(message).toContain('at: crashes!store_null')
  })

  it('catches an abort as the C library leaves it (a failed assert), through wait()', async () => {
    const proc = await start(fixture('crashes'), { args: ['assert'], crash: 'snapshot', stderr: 'pipe' })
    expect(await proc.wait()).toEqual({ signal: 'SIGABRT' })
    expect(proc.crash?.report.abortMessage).toMatch(/check_input: Assertion `n > 5 && "input too short"' failed\./)
    expect(proc).toHaveCrashed({ signal: 'SIGABRT', at: 'check_input' })
  })

  it('leaves alone a signal the program handles (python3 with a SIGABRT handler runs on)', async () => {
    const script =
      'import os, signal\nsignal.signal(signal.SIGABRT, lambda *a: print("handled"))\n' +
      'os.kill(os.getpid(), signal.SIGABRT)\nprint("alive")\n'
    const proc = await start('/usr/bin/python3', { args: ['-c', script], crash: 'snapshot' })
    expect(await proc.wait()).toEqual({ exitCode: 0 })
    expect(proc.stdout).toContain('handled')
    expect(proc.stdout).toContain('alive')
    expect(proc.crash).toBeUndefined()
    expect(failure(() => expect(proc).toHaveCrashed())).toMatch(/it exited with 0/)
  })

  it('without the option, judges a process stopped at its crash, and a snapshot of it', async () => {
    const proc = await start(fixture('crashes'), { args: ['abort'] })
    expect((await proc.cont()).kind).toBe('signal')
    expect(proc).toHaveCrashed({ signal: 'SIGABRT', at: 'give_up' })
    const snapshot = proc.createSnapshot({ level: 'writable' })
    expect(snapshot).toHaveCrashed({ at: 'crashes!give_up' })
    expect(proc.crash).toBeUndefined()
    expect(await proc.wait()).toEqual({ signal: 'SIGABRT' })
    expect(failure(() => expect(proc).toHaveCrashed())).toMatch(
      /killed by SIGABRT, but no crash was caught: launch it with \{ crash: 'snapshot' \}/,
    )
  })

  it('refuses a crash option it does not know (ERR_BAD_OPTION), and a process that did not crash fails the matcher', async () => {
    await expect(launch(fixture('crashes'), { crash: 'core' as 'snapshot' })).rejects.toMatchObject({
      code: 'ERR_BAD_OPTION',
    })
    const proc: Process = await start(fixture('crashes'), { args: ['none'], crash: 'snapshot' })
    expect(await proc.wait()).toEqual({ exitCode: 0 })
    expect(proc).not.toHaveCrashed()
  })
})
