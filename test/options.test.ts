// Options are checked at run time, as JavaScript callers and casts pass them: an unknown name, a
// wrong type or an out-of-range value is ERR_BAD_OPTION naming the option and what it accepts,
// thrown before anything starts. Each case below was once accepted silently.
import { beforeAll, describe, expect, it } from 'vitest'
import { launch, ProcsnapError, type LaunchOptions, type Process } from '../src/index.js'
import { processMatchers } from '../src/matchers/index.js'
import { processSnapshots } from '../src/plugin/index.js'
import { fixture, start, strayChildren } from './helpers.js'

beforeAll(() => {
  expect.extend(processMatchers)
})

/** The error `run` throws (sync or async), or a failure if it throws none. */
async function thrown(run: () => unknown): Promise<ProcsnapError> {
  try {
    await run()
  } catch (error) {
    expect(error).toBeInstanceOf(ProcsnapError)
    return error as ProcsnapError
  }
  throw new Error('nothing was thrown')
}

/** Options as a JavaScript caller (or a cast) may pass them. */
const loose = (options: Record<string, unknown>): LaunchOptions => options

async function atBump(): Promise<Process> {
  const proc = await start(fixture('counter'), { args: ['3'] })
  proc.breakAt('bump')
  await proc.cont()
  return proc
}

describe('launch', () => {
  it.each([
    [{ args: '/usr' }, "option 'args' is '/usr' (a string); it takes an array of string"],
    [{ timeout: '5s' }, "option 'timeout' is '5s' (a string); it takes a number of milliseconds"],
    [{ timeout: -1 }, "option 'timeout' is -1; it takes a number of milliseconds above 0 and up to 2147483647"],
    [{ timeout: 2 ** 31 }, "option 'timeout' is 2147483648"],
    [{ stdout: 'file.txt' }, "option 'stdout' is 'file.txt' (a string); it takes 'pty', 'pipe', 'inherit', 'ignore'"],
    [{ aslr: 'yes' }, "option 'aslr' is 'yes' (a string); it takes true or false"],
    [
      { env: { FOO: 1 } },
      "option 'env' is an object (Object); it takes an object whose values are a string or undefined",
    ],
    [{ stdin: 42 }, "option 'stdin' is 42; it takes a string or a Uint8Array"],
    [{ stdOut: 'pipe' }, "unknown option 'stdOut'. Did you mean 'stdout'? launch takes args, argv0,"],
    [{ timout: 10 }, "unknown option 'timout'. Did you mean 'timeout'?"],
    [{ schedule: 'fair' }, "option 'schedule' is 'fair' (a string); it takes 'serial', 'free'"],
    [{ outputLimit: -1 }, "option 'outputLimit' is -1; it takes a whole number of bytes from 0 to 536870888"],
    [{ outputLimit: 1.5 }, "option 'outputLimit' is 1.5; it takes a whole number of bytes"],
    [{ outputLimit: '16M' }, "option 'outputLimit' is '16M' (a string); it takes a whole number of bytes"],
    [
      { outputLimit: Infinity },
      "option 'outputLimit' is Infinity; it takes a whole number of bytes from 0 to 536870888",
    ],
    [
      { outputLimit: 2 ** 29 },
      "option 'outputLimit' is 536870912; it takes a whole number of bytes from 0 to 536870888",
    ],
    [{ onOutput: 'console' }, "option 'onOutput' is 'console' (a string); it takes a function"],
    [{ outputlimit: 10 }, "unknown option 'outputlimit'. Did you mean 'outputLimit'?"],
  ])('refuses %j', async (options, message) => {
    const before = strayChildren()
    const error = await thrown(() => launch(fixture('counter'), loose(options)))
    expect(error.code).toBe('ERR_BAD_OPTION')
    expect(error.message).toContain(`launch: ${message}`)
    expect(strayChildren()).toEqual(before) // refused before anything was spawned
  })

  it('refuses options that are not an object, and a path that is not a string', async () => {
    expect((await thrown(() => launch(fixture('counter'), 'fast' as LaunchOptions))).message).toContain(
      'launch: the options must be an object ({ args, argv0, stdin, env, inheritEnv, cwd, aslr, ' +
        'fixedRandom, clock, timeout, stdout, stderr, outputLimit, onOutput, pin, emulateStepOver, schedule, ' +
        "isolate, crash }), not 'fast' (a string).",
    )
    const error = await thrown(() => launch(42 as unknown as string))
    expect(error.code).toBe('ERR_BAD_ARGUMENT')
  })

  it('accepts every documented option with a right value, undefined as absent, and Infinity as no deadline', async () => {
    const output: Buffer[] = []
    const streams = new Set<string>()
    const proc = await start(fixture('counter'), {
      args: ['2'],
      argv0: 'counter',
      stdin: new Uint8Array([1]),
      env: { FOO: '1', LANG: undefined },
      inheritEnv: false,
      cwd: '/tmp',
      aslr: false,
      fixedRandom: true,
      timeout: Infinity,
      stdout: 'pipe',
      stderr: 'ignore',
      outputLimit: 0,
      onOutput: (stream, chunk) => output.push(chunk) && streams.add(stream),
      pin: false,
      emulateStepOver: undefined,
      schedule: 'serial',
    })
    expect(await proc.wait()).toEqual({ exitCode: 0 })
    expect(Buffer.concat(output).toString()).toBe('bump 1 -> 1\nbump 2 -> 3\ntotal 4\nFOO=1\n')
    expect([...streams]).toEqual(['stdout'])
    expect(proc.stdout).toBe('') // outputLimit 0: streamed only
    expect(proc.outputDropped).toEqual({ stdout: 38, stderr: 0 })
  })
})

describe('breakAt, cont and the other waits', () => {
  it('refuse unknown and wrong options', async () => {
    const proc = await atBump()
    const bad = (o: Record<string, unknown>): { temporary?: boolean } => o
    expect((await thrown(() => proc.breakAt('main', bad({ temprary: true })))).message).toBe(
      "breakAt: unknown option 'temprary'. Did you mean 'temporary'? breakAt takes temporary.",
    )
    expect((await thrown(() => proc.breakAt('main', bad({ temporary: 1 })))).code).toBe('ERR_BAD_OPTION')
    expect(proc.breakpoints.map((b) => b.location)).toEqual(['bump']) // nothing was set
    const waits: [string, () => Promise<unknown>][] = [
      ['cont', () => proc.cont({ timeout: '5s' as unknown as number })],
      ['cont', () => proc.cont({ signal: 'SIGINT' as unknown as number })],
      ['step', () => proc.step({ timeout: -1 })],
      ['finish', () => proc.finish({ timeout: 0 })],
      ['runTo', () => proc.runTo('main', { timeout: NaN })],
      ['wait', () => proc.wait({ deadline: 5 } as { timeout?: number })],
    ]
    for (const [name, run] of waits) {
      const error = await thrown(run)
      expect(error.code).toBe('ERR_BAD_OPTION')
      expect(error.message.startsWith(`${name}: `)).toBe(true)
    }
    // Still stopped where it was, and usable.
    expect(proc).toHaveStoppedAt('bump')
    expect((await proc.cont()).kind).toBe('breakpoint')
  })

  it('a temporary breakpoint is removed after its first hit (gdb tbreak)', async () => {
    const proc = await start(fixture('counter'), { args: ['3'] })
    const bp = proc.breakAt('bump', { temporary: true })
    expect((await proc.cont()).kind).toBe('breakpoint')
    expect(bp.hits).toBe(1)
    expect(await proc.cont()).toEqual({ kind: 'exited', exitCode: 0 })
  })
})

describe('createSnapshot', () => {
  it("refuses level: 'huge' as a bad option (it was once ERR_BAD_LOCATION) and unknown names", async () => {
    const proc = await atBump()
    const level = await thrown(() => proc.createSnapshot({ level: 'huge' as 'full' }))
    expect(level.code).toBe('ERR_BAD_OPTION')
    expect(level.message).toBe(
      "createSnapshot: option 'level' is 'huge' (a string); it takes 'base', 'writable', 'full'.",
    )
    const unknown = await thrown(() => proc.thread.createSnapshot({ levle: 'full' } as { level?: 'full' }))
    expect(unknown.message).toContain("unknown option 'levle'. Did you mean 'level'?")
  })
})

describe('toMatchProcessSnapshot', () => {
  it("refuses include: ['registers'], which once wrote a golden of its header alone that always passed", async () => {
    const proc = await atBump()
    const cases: [Record<string, unknown>, string][] = [
      [{ include: ['registers'] }, "option 'include' is an array ['registers' (a string)]"],
      [{ include: [] }, "option 'include' is an array []; it takes a non-empty array of distinct names from 'stop'"],
      [{ level: 'huge' }, "option 'level' is 'huge'"],
      [{ memory: 'g_counter' }, "option 'memory' is 'g_counter' (a string); it takes an array of non-empty string"],
      [{ vectorRegs: 'yes' }, "option 'vectorRegs' is 'yes'"],
      [{ redact: 'regs.rbx' }, "option 'redact' is 'regs.rbx'"],
      [{ modules: 'libplugin.so' }, "option 'modules' is 'libplugin.so' (a string); it takes 'all' or an array"],
      [{ modules: [''] }, "option 'modules' is an array [''"],
      [{ includes: ['regs'] }, "unknown option 'includes'. Did you mean 'include'?"],
    ]
    for (const [options, message] of cases) {
      const error = await thrown(() => expect(proc).toMatchProcessSnapshot(options))
      expect(error.code).toBe('ERR_BAD_OPTION')
      expect(error.message).toContain(`toMatchProcessSnapshot: ${message}`)
    }
  })
})

describe('processSnapshots', () => {
  it('takes modules only and says so rather than ignoring another option', async () => {
    expect(processSnapshots().name).toBe('procsnap')
    expect(processSnapshots({}).name).toBe('procsnap')
    expect(processSnapshots({ modules: 'all' }).name).toBe('procsnap')
    const error = await thrown(() => processSnapshots({ update: true } as unknown as Record<string, never>))
    expect(error.code).toBe('ERR_BAD_OPTION')
    expect(error.message).toBe("processSnapshots: unknown option 'update'. processSnapshots takes modules.")
    const bad = await thrown(() => processSnapshots({ modules: [3] as unknown as string[] }))
    expect(bad.code).toBe('ERR_BAD_OPTION')
    expect(bad.message).toContain("processSnapshots: option 'modules' is an array [3")
  })
})
