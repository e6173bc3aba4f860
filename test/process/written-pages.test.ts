// Write tracking: the pages a tracee wrote since a point, checked against the fixture's own list of
// the pages it wrote (g_written), on this kernel's mechanism (uffd-wp; soft-dirty is absent here).
import { closeSync, openSync, readdirSync, readFileSync, readSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import type { Process } from '../../src/index.js'
import { probeWriteTracking } from '../../src/process/write-probe.js'
import { trackWrites, type PageRun, type WriteTracker } from '../../src/process/written-pages.js'
import { fixture, le64, start } from '../helpers.js'

const PAGE = 4096n
const probe = probeWriteTracking()
const hasUffd = probe.mechanism === 'uffd-wp'

/** The pages the fixture says it wrote in its last round. */
function oracle(proc: Process): bigint[] {
  const count = Buffer.from(proc.readMemory('g_count', 4)).readInt32LE(0)
  const list = proc.readMemory('g_written', 8 * count)
  const pages = new Set<bigint>()
  for (let i = 0; i < count; i++) pages.add(le64(list.subarray(i * 8)))
  return [...pages].sort((a, b) => (a < b ? -1 : 1))
}

/** Every page of a list of runs. */
function pagesOf(runs: readonly PageRun[]): bigint[] {
  const out: bigint[] = []
  for (const r of runs) for (let p = r.start; p < r.end; p += PAGE) out.push(p)
  return out
}

/** The fixture's buffer: [g_buf, g_buf + g_pages pages). */
function buffer(proc: Process): PageRun {
  const start = le64(proc.readMemory('g_buf', 8))
  return { start, end: start + le64(proc.readMemory('g_pages', 8)) * PAGE }
}

async function tracked(proc: Process, ranges?: readonly PageRun[], fileBacked = false): Promise<WriteTracker> {
  const { tracker, reason } = await trackWrites(proc, { ...(ranges && { ranges }), fileBacked })
  if (!tracker) throw new Error(`no tracker: ${reason}`)
  return tracker
}

/** A field (KiB) of the mapping that contains `address`, from /proc/PID/smaps. */
function smapsField(pid: number, address: bigint, field: string): number {
  let inside = false
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'latin1').split('\n')) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) /.exec(line)
    if (head) inside = BigInt(`0x${head[1]}`) <= address && address < BigInt(`0x${head[2]}`)
    else if (inside && line.startsWith(`${field}:`)) return Number(line.split(/\s+/)[1])
  }
  return 0
}

function hugeKiB(pid: number, address: bigint): number {
  return smapsField(pid, address, 'AnonHugePages')
}

async function toRound(proc: Process, round: number): Promise<void> {
  const stop = await proc.cont()
  expect(stop.kind).toBe('breakpoint')
  expect(proc.regs.rdi).toBe(BigInt(round))
}

describe('probe', () => {
  it('names a mechanism or says why there is none; soft-dirty is absent on this kernel', () => {
    expect(probe.mechanism === undefined ? probe.uffd && probe.softDirty : true).toBeTruthy()
    // CONFIG_MEM_SOFT_DIRTY is not set on these machines: the probe says so (the kernel's config is the oracle).
    let config = ''
    try {
      config = readFileSync(`/boot/config-${readFileSync('/proc/sys/kernel/osrelease', 'latin1').trim()}`, 'latin1')
    } catch {
      // no config file: the probe is checked against the kernel's behaviour below
    }
    if (config.includes('# CONFIG_MEM_SOFT_DIRTY is not set')) expect(probe.softDirty).toMatch(/soft-dirty/)
    if (probe.softDirty === '') expect(probe.mechanism).toBeDefined()
  })

  it('asking for soft-dirty where there is none gives a reason, not a tracker', async () => {
    if (probe.softDirty === '') return
    const proc = await start(fixture('dirty'), { args: ['4'] })
    const result = await trackWrites(proc, { mechanism: 'soft-dirty' })
    expect(result.tracker).toBeUndefined()
    expect(result.reason).toMatch(/soft-dirty/)
  })
})

describe.runIf(hasUffd)('uffd-wp tracker', () => {
  it('reports exactly the pages each round wrote, unwritten pages written later included', async () => {
    const proc = await start(fixture('dirty'), { args: ['16'] })
    proc.breakAt('ready')
    proc.breakAt('round_done')
    await proc.cont()
    const buf = buffer(proc)
    const tracker = await tracked(proc, [buf])
    expect(tracker.mechanism).toBe('uffd-wp')
    expect(tracker.tracked).toEqual([buf])
    // Nothing written since the start.
    expect(tracker.scan()).toEqual({ written: [], lost: [] })
    for (const round of [1, 2, 3]) {
      await toRound(proc, round)
      const expected = oracle(proc)
      if (round === 1) expect(expected).toHaveLength(7)
      expect(pagesOf(tracker.scan().written)).toEqual(expected)
    }
    await toRound(proc, 4) // .data is outside the tracked range
    expect(tracker.scan().written).toEqual([])
  })

  it('scan without reset keeps the pages marked; runs are merged', async () => {
    const proc = await start(fixture('dirty'), { args: ['4'] })
    proc.breakAt('ready')
    proc.breakAt('round_done')
    await proc.cont()
    const tracker = await tracked(proc, [buffer(proc)])
    await toRound(proc, 1)
    const first = tracker.scan({ reset: false })
    expect(first.written[0]).toEqual({ start: buffer(proc).start + PAGE, end: buffer(proc).start + 4n * PAGE })
    expect(tracker.scan({ reset: false })).toEqual(first)
    expect(tracker.scan()).toEqual(first)
    expect(tracker.scan().written).toEqual([])
  })

  it('with fileBacked, tracks .data of the executable (private file-backed) too', async () => {
    const proc = await start(fixture('dirty'), { args: ['4'] })
    proc.breakAt('ready')
    proc.breakAt('round_done')
    await proc.cont()
    const tracker = await tracked(proc, undefined, true)
    const data = proc.resolve('g_data')
    const dataMap = proc.maps.find((m) => m.start <= data && data < m.end)
    expect(dataMap?.path).toBe(proc.path)
    expect(tracker.tracked.some((r) => r.start <= dataMap!.start && dataMap!.end <= r.end)).toBe(true)
    for (const round of [1, 2, 3]) await toRound(proc, round)
    tracker.scan()
    await toRound(proc, 4)
    const written = pagesOf(tracker.scan().written)
    // g_count and g_written (.bss, in the same mapping) are written by the round too: look at g_data's pages.
    const dataPage = oracle(proc)[0]
    const bss = proc.resolve('g_count') - (proc.resolve('g_count') % PAGE)
    expect(written.filter((p) => p >= data - (data % PAGE) && p < bss)).toEqual([dataPage])
  })

  it('leaves the memory maps as they were (registration splits or merges no mapping)', async () => {
    const proc = await start(fixture('dirty'), { args: ['4'] })
    proc.breakAt('ready')
    await proc.cont()
    const maps = proc.maps
    const byDefault = await tracked(proc)
    // By default the private anonymous writable mappings; file-backed ones are left out, and say why.
    const writable = maps.filter((m) => m.perms[1] === 'w' && !m.path.startsWith('[vvar'))
    const run = (m: { start: bigint; end: bigint }): PageRun => ({ start: m.start, end: m.end })
    expect(byDefault.tracked).toEqual(writable.filter((m) => m.inode === 0).map(run))
    expect(byDefault.untracked.map(run)).toEqual(writable.filter((m) => m.inode !== 0).map(run))
    expect(byDefault.untracked[0]?.reason).toMatch(/file-backed/)
    expect(proc.maps).toEqual(maps)
    byDefault.close()
    // fileBacked: every writable mapping is accepted, private file-backed ones (the executable's and
    // libc's .data and .bss) too: WP_ASYNC takes them on this kernel.
    const all = await tracked(proc, undefined, true)
    expect(all.untracked).toEqual([])
    expect(all.tracked).toEqual(writable.map(run))
    expect(proc.maps).toEqual(maps)
  })

  it('leaves no descriptor in the tracee, and closes its own when the process ends', async () => {
    const before = readdirSync('/proc/self/fd').length
    const proc = await start(fixture('dirty'), { args: ['4'] })
    proc.breakAt('ready')
    await proc.cont()
    const fds = readdirSync(`/proc/${proc.pid}/fd`).sort()
    const tracker = await tracked(proc)
    expect(readdirSync(`/proc/${proc.pid}/fd`).sort()).toEqual(fds)
    expect(readdirSync('/proc/self/fd').length).toBeGreaterThan(before)
    await proc.kill()
    expect(tracker.open).toBe(false)
    expect(() => tracker.scan()).toThrow(expect.objectContaining({ code: 'ERR_TRACKING_ENDED' }))
    expect(readdirSync('/proc/self/fd').length).toBe(before)
  })

  it('breakpoints, readMemory and writeMemory still work; our own writes count as written', async () => {
    const proc = await start(fixture('dirty'), { args: ['4'] })
    proc.breakAt('ready')
    await proc.cont()
    const buf = buffer(proc)
    const tracker = await tracked(proc, [buf])
    proc.breakAt('round_done') // an int3 written into the text after tracking began
    const bytes = proc.readMemory(buf.start, 8 * Number(PAGE))
    expect(tracker.scan().written).toEqual([]) // reading is not writing
    proc.writeMemory(buf.start + 5n * PAGE, Uint8Array.of(bytes[5 * Number(PAGE)] ?? 0))
    expect(tracker.scan().written).toEqual([{ start: buf.start + 5n * PAGE, end: buf.start + 6n * PAGE }])
    await toRound(proc, 1)
    expect(pagesOf(tracker.scan().written)).toEqual(oracle(proc))
  })

  it('a forked child writing every page does not count; the parent goes on being tracked', async () => {
    const proc = await start(fixture('dirty'), { args: ['4', 'fork'] })
    proc.breakAt('ready')
    await proc.cont()
    const tracker = await tracked(proc, [buffer(proc)])
    proc.breakAt('round_done')
    for (const round of [1, 2, 3, 4]) await toRound(proc, round)
    tracker.scan()
    await toRound(proc, 5)
    expect(pagesOf(tracker.scan().written)).toEqual(oracle(proc))
    expect(await proc.wait()).toEqual({ exitCode: 0 })
  })

  it('ends at an exec of the tracee', async () => {
    const proc = await start(fixture('dirty'), { args: ['4', 'exec', '/bin/true'] })
    proc.breakAt('ready')
    await proc.cont()
    const tracker = await tracked(proc)
    expect(await proc.wait()).toEqual({ exitCode: 0 })
    expect(tracker.open).toBe(false)
  })

  it('a range unmapped and mapped again is reported lost, the rest stays tracked', async () => {
    const proc = await start(fixture('dirty'), { args: ['4'] })
    proc.breakAt('ready')
    proc.breakAt('round_done')
    await proc.cont()
    const buf = buffer(proc)
    const tracker = await tracked(proc, [buf])
    // munmap + mmap(MAP_FIXED) of pages 40..48 from inside the process: a new, unregistered mapping.
    const at = buf.start + 40n * PAGE
    expect(await proc.injectSyscall(11, [at, 8n * PAGE])).toBe(0n)
    expect(await proc.injectSyscall(9, [at, 8n * PAGE, 3n, 0x32n, BigInt.asUintN(64, -1n), 0n])).toBe(at)
    await toRound(proc, 1)
    const result = tracker.scan()
    expect(result.lost.map(({ start, end }) => ({ start, end }))).toEqual([{ start: at, end: at + 8n * PAGE }])
    expect(result.lost[0]?.reason).toMatch(/mapped again/)
    expect(pagesOf(result.written)).toEqual(oracle(proc))
    expect(tracker.tracked).toEqual([
      { start: buf.start, end: at },
      { start: at + 8n * PAGE, end: buf.end },
    ])
  })

  it('transparent huge pages: still exactly the 4 KiB pages written (the kernel splits a written huge page)', async () => {
    const proc = await start(fixture('dirty'), { args: ['16', 'huge'] })
    proc.breakAt('ready')
    proc.breakAt('round_done')
    await proc.cont()
    const buf = buffer(proc)
    const huge = hugeKiB(proc.pid, buf.start)
    const tracker = await tracked(proc, [buf])
    await toRound(proc, 1)
    expect(pagesOf(tracker.scan().written)).toEqual(oracle(proc))
    // With THP in 'never' mode there are none to split; where there were, the split shows in smaps.
    if (huge > 0) expect(hugeKiB(proc.pid, buf.start)).toBeLessThan(huge)
  })

  it('a second tracker of the same process tracks nothing (the ranges belong to the first): it says why', async () => {
    const proc = await start(fixture('dirty'), { args: ['4'] })
    proc.breakAt('ready')
    await proc.cont()
    const buf = buffer(proc)
    await tracked(proc, [buf])
    const second = await tracked(proc, [buf])
    expect(second.tracked).toEqual([])
    expect(second.untracked[0]?.reason).toMatch(/EBUSY/)
  })

  it('close() gives the pages back: no mapping stays registered', async () => {
    const proc = await start(fixture('dirty'), { args: ['4'] })
    proc.breakAt('ready')
    await proc.cont()
    const tracker = await tracked(proc)
    expect(readFileSync(`/proc/${proc.pid}/smaps`, 'latin1')).toMatch(/^VmFlags:.* uw/m)
    tracker.close()
    expect(readFileSync(`/proc/${proc.pid}/smaps`, 'latin1')).not.toMatch(/^VmFlags:.* uw/m)
    expect(await proc.wait()).toEqual({ exitCode: 0 })
  })

  it('side effect: a tracked page never written reads as swapped in pagemap (a uffd-wp marker), while smaps says Swap: 0', async () => {
    const proc = await start(fixture('dirty'), { args: ['4'] })
    proc.breakAt('ready')
    await proc.cont()
    const buf = buffer(proc)
    const untouched = buf.end - PAGE // the fixture writes only the first half
    const entry = (): bigint => {
      const fd = openSync(`/proc/${proc.pid}/pagemap`, 'r')
      try {
        const b = Buffer.alloc(8)
        readSync(fd, b, 0, 8, Number((untouched / PAGE) * 8n))
        return b.readBigUInt64LE(0)
      } finally {
        closeSync(fd)
      }
    }
    expect(entry() >> 62n).toBe(0n) // neither present nor swapped
    await tracked(proc, [buf])
    expect((entry() >> 62n) & 1n).toBe(1n) // "swapped": the marker that protects the unpopulated page
    expect((entry() >> 57n) & 1n).toBe(1n) // with the uffd-wp bit
    expect(smapsField(proc.pid, buf.start, 'Swap')).toBe(0)
    // Reading it still reads zeros, and is not a write.
    expect(proc.readMemory(untouched, 8)).toEqual(new Uint8Array(8))
  })

  it('a page dropped by MADV_DONTNEED (its bytes become zeros) counts as written', async () => {
    const proc = await start(fixture('dirty'), { args: ['4'] })
    proc.breakAt('ready')
    await proc.cont()
    const buf = buffer(proc)
    const tracker = await tracked(proc, [buf])
    const page = buf.start + 9n * PAGE
    expect(proc.readMemory(page, 1)[0]).toBe(9) // written by the fixture before ready()
    expect(await proc.injectSyscall(28, [page, PAGE, 4n])).toBe(0n) // madvise(MADV_DONTNEED)
    expect(proc.readMemory(page, 1)[0]).toBe(0)
    expect(tracker.scan().written).toEqual([{ start: page, end: page + PAGE }])
  })

  it('limitation, why file-backed mappings are left out: MADV_DONTNEED puts the file back unseen', async () => {
    const proc = await start(fixture('dirty'), { args: ['4'] })
    proc.breakAt('round_done')
    for (const round of [1, 2, 3, 4]) await toRound(proc, round)
    const data = proc.resolve('g_data') + 2n * PAGE // written in round 4: 1, in the file: 0
    const page = data - (data % PAGE)
    const tracker = await tracked(proc, [{ start: page, end: page + PAGE }], true)
    expect(proc.readMemory(data, 1)[0]).toBe(1)
    expect(await proc.injectSyscall(28, [page, PAGE, 4n])).toBe(0n) // madvise(MADV_DONTNEED)
    expect(proc.readMemory(data, 1)[0]).toBe(0)
    // The kernel keeps the page protected (a marker): the change is not reported.
    expect(tracker.scan().written).toEqual([])
    // Without fileBacked, the same range is not tracked: callers read it.
    const { tracker: second } = await trackWrites(proc, { ranges: [{ start: page, end: page + PAGE }] })
    expect(second?.tracked).toEqual([])
  })

  it('in a program we did not write (python3): the page a bytearray store wrote, none of its untouched neighbours', async () => {
    const script = [
      'import ctypes, os, sys',
      'b = bytearray(32 << 20)',
      'a = ctypes.addressof((ctypes.c_char * len(b)).from_buffer(b))',
      'sys.stdout.write(f"{a}\\n"); sys.stdout.flush()',
      'os.getpid()',
      'b[100 * 4096 + 7] = 1',
      'os.getppid()',
    ].join('\n')
    const proc = await start('/usr/bin/python3', { args: ['-c', script], stdout: 'pipe' })
    proc.breakAt('libc.so.6!getpid')
    proc.breakAt('libc.so.6!getppid')
    expect((await proc.cont()).kind).toBe('breakpoint')
    const a = BigInt(proc.stdout.trim())
    const first = a - (a % PAGE) + PAGE // the first page wholly inside the bytearray
    const { tracker } = await trackWrites(proc)
    expect(tracker?.tracked.some((r) => r.start <= first && first + 200n * PAGE <= r.end)).toBe(true)
    expect((await proc.cont()).kind).toBe('breakpoint')
    const written = pagesOf(tracker!.scan().written)
    const target = (a + 100n * 4096n + 7n) & ~(PAGE - 1n)
    expect(written).toContain(target)
    // The bytearray's other pages were not written between the two stops.
    expect(written.filter((p) => p >= first && p < first + 8000n * PAGE && p !== target)).toEqual([])
  })

  it('rejects ranges that are not page-aligned', async () => {
    const proc = await start(fixture('dirty'), { args: ['4'] })
    await expect(trackWrites(proc, { ranges: [{ start: 4097n, end: 8192n }] })).rejects.toMatchObject({
      code: 'ERR_BAD_ARGUMENT',
    })
  })
})
