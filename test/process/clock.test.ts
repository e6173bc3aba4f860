// launch's clock: 'virtual' (the default) gives every program one deterministic clock: the same
// dates on every run, sleeps and timed waits that end, rdtsc from the same clock. 'real' is the kernel's.
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { goldenSections, renderGolden } from '../../src/golden/render.js'
import type { LaunchOptions } from '../../src/index.js'
import { fixture, start } from '../helpers.js'

const EPOCH = 946_684_800 // 2000-01-01T00:00:00Z

async function run(
  file: string,
  args: string[],
  options: LaunchOptions = {},
): Promise<{ out: string; err: string; code: number | undefined; ms: number }> {
  const t0 = performance.now()
  const proc = await start(file, { args, stdout: 'pipe', stderr: 'pipe', timeout: 20_000, ...options })
  const end = await proc.wait()
  return { out: proc.stdout, err: proc.stderr, code: end.exitCode, ms: performance.now() - t0 }
}

const clock = (args: string[], options?: LaunchOptions): ReturnType<typeof run> => run(fixture('clock'), args, options)

describe('clock: virtual, programs we did not write', () => {
  it('date prints the same fixed date on two runs; with clock: real, today', async () => {
    const a = await run('/bin/date', ['-u'])
    const b = await run('/bin/date', ['-u'])
    expect(a.out).toBe('Sat Jan  1 00:00:00 UTC 2000\n')
    expect(b.out).toBe(a.out)
    const before = Date.now()
    const real = await run('/bin/date', ['+%s'], { clock: 'real' })
    const seconds = Number(real.out.trim())
    expect(seconds).toBeGreaterThanOrEqual(Math.floor(before / 1000) - 2)
    expect(seconds).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000) + 2)
  })

  it('date +%s.%N: the same nanoseconds twice, a few 1 ms steps after the epoch', async () => {
    const a = (await run('/bin/date', ['+%s.%N'])).out
    const b = (await run('/bin/date', ['+%s.%N'])).out
    expect(b).toBe(a)
    expect(a).toMatch(new RegExp(`^${EPOCH}\\.0[0-9]{2}000000\\n$`))
  })

  it('sysinfo: the virtual uptime and a fixed 8 GiB machine, half free, on two runs; with clock: real, the kernel figures', async () => {
    const script = [
      'import ctypes, os',
      'buf = ctypes.create_string_buffer(112)',
      'assert ctypes.CDLL(None).sysinfo(buf) == 0',
      'print(buf.raw.hex())',
      "print(os.sysconf('SC_PHYS_PAGES'), os.sysconf('SC_AVPHYS_PAGES'))",
    ].join('\n')
    const a = await run('/usr/bin/python3', ['-c', script])
    const b = await run('/usr/bin/python3', ['-c', script])
    expect(b.out).toBe(a.out)
    const [hex, pages] = a.out.trim().split('\n')
    const word = (k: number): bigint => Buffer.from(hex ?? '', 'hex').readBigUInt64LE(8 * k)
    expect(word(0)).toBeGreaterThanOrEqual(1n) // uptime: the virtual monotonic clock, from 1 s
    expect(word(0)).toBeLessThan(10n)
    expect([word(1), word(2), word(3)]).toEqual([0n, 0n, 0n]) // no load
    expect([word(4), word(5)]).toEqual([8n << 30n, 4n << 30n])
    expect([word(6), word(7), word(8), word(9)]).toEqual([0n, 0n, 0n, 0n]) // shared, buffers, swap
    expect(word(10) & 0xffffn).toBe(1n) // procs
    expect(word(13) & 0xffffffffn).toBe(1n) // mem_unit
    expect(pages).toBe(`${2 ** 33 / 4096} ${2 ** 32 / 4096}`)
    const real = (await run('/usr/bin/python3', ['-c', script], { clock: 'real' })).out.trim().split('\n')[1]
    const meminfo = readFileSync('/proc/meminfo', 'utf8')
    const totalKiB = Number(/^MemTotal:\s+(\d+) kB/m.exec(meminfo)?.[1])
    expect(real?.split(' ')[0]).toBe(String((totalKiB * 1024) / 4096))
  })

  it('sleep 1 sleeps for real and exits 0', async () => {
    const r = await run('/bin/sleep', ['1'])
    expect(r.code).toBe(0)
    expect(r.ms).toBeGreaterThanOrEqual(990)
    expect(r.ms).toBeLessThan(5000)
  })

  it('python3: time.time() around time.sleep(0.5) differs by 0.5 s and a few steps, the same on two runs', async () => {
    const args = ['-c', 'import time; t = time.time(); time.sleep(0.5); print(round(time.time() - t, 6))']
    const a = await run('/usr/bin/python3', args)
    const b = await run('/usr/bin/python3', args)
    expect(a.err).toBe('')
    expect(b.out).toBe(a.out)
    const slept = Number(a.out.trim())
    expect(slept).toBeGreaterThanOrEqual(0.5)
    expect(slept).toBeLessThan(0.51)
  })

  it('a child process reads the same clock: its sleep is time that passed for bash waiting for it', async () => {
    const script = 'date +%s.%N; /bin/sleep 1; date +%s.%N'
    const a = await run('/bin/bash', ['-c', script])
    const b = await run('/bin/bash', ['-c', script])
    expect(a.err).toBe('')
    expect(b.out).toBe(a.out)
    const [first, second] = a.out.trim().split('\n').map(Number)
    expect(first).toBeGreaterThanOrEqual(EPOCH)
    expect((second ?? 0) - (first ?? 0)).toBeGreaterThanOrEqual(1)
    expect((second ?? 0) - (first ?? 0)).toBeLessThan(1.1)
  })

  it('python3 subprocess (vfork, then exec) and perl system (fork): the children read the same virtual clock', async () => {
    const py = 'import subprocess, time; r = subprocess.run(["/bin/date", "+%s.%N"]); print(r.returncode, time.time())'
    const a = await run('/usr/bin/python3', ['-c', py])
    expect(a.err).toBe('')
    expect(a.out).toMatch(new RegExp(`^${EPOCH}\\.\\d{9}\\n0 ${EPOCH}\\.\\d+\\n$`))
    expect((await run('/usr/bin/python3', ['-c', py])).out).toBe(a.out)
    const perl = await run('/usr/bin/perl', ['-e', 'system("/bin/date", "-u"); print time, "\\n"'])
    expect(perl.out).toBe(`Sat Jan  1 00:00:00 UTC 2000\n${EPOCH}\n`)
  })

  it('a child still running when the launched process ends is killed and reaped', async () => {
    // isolate: false, so that $! is the child's pid here (inside the PID namespace it would be 3)
    const proc = await start('/bin/bash', { args: ['-c', '/bin/sleep 30 & echo $!'], stdout: 'pipe', isolate: false })
    await proc.wait()
    const child = Number(proc.stdout.trim())
    expect(child).toBeGreaterThan(0)
    const state = (): string => {
      try {
        return /^\d+ \(.*\) (\S)/.exec(readFileSync(`/proc/${child}/stat`, 'latin1'))?.[1] ?? 'gone'
      } catch {
        return 'gone'
      }
    }
    for (let i = 0; i < 100 && !['gone', 'Z', 'X'].includes(state()); i++) await new Promise((r) => setTimeout(r, 20))
    expect(['gone', 'Z', 'X']).toContain(state())
  })

  it('bash -c true stopped at exit: its start time is the same on two runs, the real one differs', async () => {
    const golden = async (options: LaunchOptions): Promise<string[]> => {
      const proc = await start('/bin/bash', { args: ['-c', 'true'], ...options })
      proc.breakAt('libc.so.6!exit')
      const ev = await proc.cont()
      if (ev.kind !== 'breakpoint') throw new Error(`expected exit, got ${ev.kind}`)
      const snap = proc.createSnapshot({ level: 'writable' })
      return renderGolden({ key: 'bash 1', test: 'clock.test.ts' }, goldenSections(snap.data, snap.modules())).split(
        '\n',
      )
    }
    const changed = (a: string[], b: string[]): string[] => a.filter((line, i) => line !== b[i])
    const a = await golden({})
    const b = await golden({})
    expect(a.length).toBe(b.length)
    // shell_start_time: 2000-01-01T00:00:00Z, little-endian
    expect(a.find((l) => /^ {2}bash!shell_start_time /.test(l))).toMatch(/ 80 43 6d 38 00 00 00 00$/)
    // Left: one word of bash's random seed, time ^ pid (a PID namespace makes the pid the same).
    expect(changed(a, b).length).toBeLessThanOrEqual(1)
    const realA = await golden({ clock: 'real' })
    const realB = await golden({ clock: 'real' })
    expect(changed(realA, realB).some((l) => /^ {2}bash!shellstart /.test(l))).toBe(true)
  })
})

describe('clock: virtual, the clock fixture', () => {
  it('every clock id, gettimeofday, time, times, getrusage, rdtsc and rdtscp: one clock, the same on two runs', async () => {
    const a = await clock(['read', '3'])
    const b = await clock(['read', '3'])
    expect(a.code).toBe(0)
    expect(b.out).toBe(a.out)
    const round = a.out.split('round 1\n')[0] ?? ''
    expect(round).toMatch(new RegExp(`clock 0: ${EPOCH}\\.0\\d{2}000000\\n`))
    expect(round).toMatch(/clock 1: 1\.0\d{2}000000\n/) // monotonic from 1 s
    expect(round).toMatch(/clock 7: 1\.0\d{2}000000\n/) // boottime
    expect(round).toMatch(new RegExp(`clock 11: ${EPOCH + 37}\\.0\\d{2}000000\\n`)) // TAI
    expect(round).toMatch(new RegExp(`gettimeofday: ${EPOCH}\\.0\\d{2}000\\n`))
    expect(round).toContain(`time: ${EPOCH}\n`)
    expect(round).toMatch(/getrusage: 0\.0\d{2}000 maxrss 0\n/)
    expect(round).toMatch(/rdtsc: 10\d{2}000000 rdtscp: 10\d{2}000000 aux 0\n/)
    // Every read is 1 ms after the one before, whatever clock it reads.
    const ns = [...a.out.matchAll(/clock [0-7]: (\d+)\.(\d{9})/g)].map(
      (m) => BigInt(m[1] ?? 0) * 10n ** 9n + BigInt(m[2] ?? 0),
    )
    const mono = ns.filter((v) => v < 10n ** 12n && v >= 10n ** 9n)
    for (let i = 1; i < mono.length; i++) expect((mono[i] ?? 0n) > (mono[i - 1] ?? 0n)).toBe(true)
  })

  it('rdtsc then rdtscp: two reads in a row, 1 ms apart as edx:eax, rdtscp with aux 0, on every round', async () => {
    const { code, out } = await clock(['read', '4'])
    expect(code).toBe(0)
    const pairs = [...out.matchAll(/rdtsc: (\d+) rdtscp: (\d+) aux (\d+)\n/g)]
    expect(pairs).toHaveLength(4)
    let last = 0n
    for (const [, a, b, aux] of pairs) {
      expect(BigInt(b ?? 0) - BigInt(a ?? 0)).toBe(1_000_000n)
      expect(aux).toBe('0')
      expect(BigInt(a ?? 0)).toBeGreaterThan(last)
      last = BigInt(b ?? 0)
    }
  })

  it("rewrites the vDSO's clock_gettime, which stays where the kernel put it: a direct call reads the virtual clock", async () => {
    expect((await clock(['vdso'])).out).toBe(`vdso at an address: 0 ${EPOCH}.009000000\n`)
    const real = (await clock(['vdso'], { clock: 'real' })).out
    const seconds = Number(/^vdso at an address: 0 (\d+)\./.exec(real)?.[1])
    expect(Math.abs(seconds - Date.now() / 1000)).toBeLessThan(10)
  })

  it('clock: real reads the kernel clock; fixedRandom: false with the virtual clock reads the virtual one', async () => {
    const real = await clock(['read', '1'], { clock: 'real' })
    const seconds = Number(/clock 0: (\d+)/.exec(real.out)?.[1])
    expect(Math.abs(seconds - Date.now() / 1000)).toBeLessThan(10)
    const virtual = await clock(['read', '1'], { fixedRandom: false })
    expect(virtual.out).toBe((await clock(['read', '1'])).out)
  })

  it('a busy-wait on the clock ends: 1000 reads for one virtual second', async () => {
    const r = await clock(['busy', '1000'])
    expect(r.out).toBe('busy: 1000 reads\n')
    expect(r.ms).toBeLessThan(5000)
  })

  it('poll towards a deadline ends after the real timeout, and the clock moved by it', async () => {
    const r = await clock(['poll', '300'])
    expect(r.out).toBe('poll: 1 rounds, 2000000 ns late\n')
    expect(r.ms).toBeGreaterThanOrEqual(290)
  })

  it('select, pselect, ppoll, epoll_wait, cond and sem timed waits time out after their real timeout and move the clock by it', async () => {
    const r = await clock(['waits', '100'])
    expect(r.out).toBe(
      [
        'select: 0 after 101 ms',
        'pselect: 0 after 101 ms',
        'ppoll: 0 after 101 ms',
        'epoll_wait: 0 after 101 ms',
        'cond_timedwait: 110 after 102 ms', // ETIMEDOUT, an absolute CLOCK_MONOTONIC deadline
        'sem_timedwait: 110 after 102 ms', // an absolute CLOCK_REALTIME deadline
        'nanosleep: 0 after 101 ms',
        '',
      ].join('\n'),
    )
    expect(r.ms).toBeGreaterThanOrEqual(690)
  })

  it('threads read one clock: no value twice', async () => {
    const r = await clock(['threads', '200'])
    expect(r.out).toBe('threads: 400 reads, 0 repeated\n')
  })

  it('a bad clock option is ERR_BAD_OPTION', async () => {
    await expect(start(fixture('clock'), { clock: 'fake' as 'real' })).rejects.toMatchObject({ code: 'ERR_BAD_OPTION' })
  })
})

describe('clock: virtual, waits broken off by the tracer', () => {
  it('a poll interrupted by a timeout of cont() goes on where it was, and its timeout still moves the clock', async () => {
    const proc = await start(fixture('clock'), { args: ['poll', '600'], stdout: 'pipe' })
    await expect(proc.cont({ timeout: 200 })).rejects.toMatchObject({ code: 'ERR_TIMEOUT' })
    await proc.wait()
    expect(proc.stdout).toBe('poll: 1 rounds, 2000000 ns late\n')
  })
})
