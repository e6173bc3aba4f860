// The stacks of threads other than the first are anonymous maps: snapshots, goldens and diffs name
// them by thread ('[stack thread 2]', '[stack thread 2 guard]'), the same in every run, whatever
// else is mapped around them.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { goldenSections, renderGolden } from '../../src/golden/render.js'
import { loadSnapshot, type MapState, type ProcessSnapshot, type ThreadState } from '../../src/index.js'
import { threadStacks } from '../../src/snapshot/regions.js'
import { fixture, start } from '../helpers.js'

const dir = mkdtempSync(join(tmpdir(), 'procsnap-thread-stacks-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const file = join(dir, 'small.txt')
writeFileSync(file, 'eleven char')

/** noaccess stopped in ready(): main and 3 workers asleep in a futex; with `extra`, one more page below the stacks. */
async function atReady(
  options: { extra?: boolean; aslr?: boolean; poke?: (proc: Awaited<ReturnType<typeof start>>) => void } = {},
): Promise<ProcessSnapshot> {
  const proc = await start(fixture('noaccess'), {
    args: options.extra ? [file, 'extra'] : [file],
    aslr: options.aslr ?? false,
  })
  proc.breakAt('ready')
  await proc.cont()
  options.poke?.(proc)
  const snap = proc.createSnapshot({ level: 'writable' })
  await proc.kill()
  return snap
}

function golden(snap: ProcessSnapshot): string {
  return renderGolden(
    { key: 'stacks 1', test: 'thread-stacks.test.ts' },
    goldenSections(snap.data, snap.modules(), { include: ['stop', 'regs', 'backtrace'] }),
  )
}

describe('thread stacks', () => {
  it('are named by thread index: an address in one reads [stack thread N]-0x..., like [stack]-0x...', async () => {
    const snap = await atReady()
    expect(snap.threads.map((t) => t.index)).toEqual([1, 2, 3, 4])
    expect(snap.symbolize(snap.threads[0]?.regs.rsp ?? 0n)).toMatch(/^\[stack\]-0x[0-9a-f]+$/)
    for (const t of snap.threads.slice(1)) {
      const sp = t.regs.rsp ?? 0n
      const map = snap.maps.find((m) => sp >= m.start && sp < m.end)
      expect(map?.path).toBe('')
      expect(snap.symbolize(sp)).toBe(`[stack thread ${t.index}]-0x${((map?.end ?? 0n) - sp).toString(16)}`)
      // the guard page right below it, where a stack overflow faults
      expect(snap.symbolize((map?.start ?? 0n) - 8n)).toBe(`[stack thread ${t.index} guard]-0x8`)
    }
    // a saved snapshot names them the same: the names come from the threads' sp and the maps
    const path = join(dir, 'stacks.json')
    snap.save(path)
    const back = loadSnapshot(path)
    for (const t of snap.threads) expect(back.symbolize(t.regs.rsp ?? 0n)).toBe(snap.symbolize(t.regs.rsp ?? 0n))
  })

  it('are named so in golden text, the same in two runs and with ASLR on, and shown so by pprintMaps', async () => {
    const [a, b, c] = [await atReady(), await atReady(), await atReady({ aslr: true })]
    const text = golden(a)
    for (const index of [2, 3, 4]) {
      expect(text).toMatch(
        new RegExp(`\\nthread ${index} registers:\\n(?:  .*\\n)*  rsp +\\[stack thread ${index}\\]-0x`),
      )
      expect(text).toMatch(new RegExp(`\\n  r15 +\\[stack thread ${index} guard\\]-0x1000\\n`))
    }
    expect(text).not.toMatch(/rsp +anon#/)
    expect(golden(b)).toBe(text)
    expect(c.threads[1]?.regs.rsp).not.toBe(a.threads[1]?.regs.rsp) // ASLR moved the stacks
    expect(golden(c)).toBe(text)
    const maps: string[] = []
    a.pprintMaps({ stream: { write: (s: string) => maps.push(s) }, color: false })
    for (const index of [2, 3, 4]) {
      expect(maps.join('')).toMatch(new RegExp(`  rw-p +0x0 +0x800000 +held +\\[stack thread ${index}\\]\\n`))
      expect(maps.join('')).toMatch(new RegExp(`  ---p +0x0 +0x1000 +\\[stack thread ${index} guard\\]\\n`))
    }
  })

  it('are paired by thread in a diff, when another anonymous map shifts the anonymous maps around them', async () => {
    const a = await atReady()
    let written = 0n
    let extra = 0n
    const b = await atReady({
      extra: true,
      poke: (proc) => {
        extra = Buffer.from(proc.readMemory('g_extra', 8)).readBigUInt64LE(0)
        // one byte of thread 3's live stack, written before the capture
        const t3 = proc.threads.find((t) => t.index === 3)
        written = (t3?.regs.rsp ?? 0n) + 0x10n
        proc.writeMemory(written, Uint8Array.of(0xee))
      },
    })
    const d = a.diff(b)
    // the maps did change (the new page), but no thread's stack or guard page is added, removed or changed
    expect(b.maps.some((m) => m.start === extra)).toBe(true)
    expect(d.maps.length).toBeGreaterThan(0)
    const stacksA = stackMaps(a)
    const stacksB = stackMaps(b)
    expect(stacksA.size).toBe(6)
    for (const c of d.maps) {
      expect(c.identity).not.toMatch(/^\[stack thread/)
      expect(stacksA.has(c.before as never) || stacksB.has(c.after as never), `${c.kind} ${c.identity}`).toBe(false)
    }
    // the byte written into thread 3's stack is the one change in any thread's stack, and says whose
    const inStacks = d.memory.filter((c) =>
      [...stacksB].some((m) => c.addressAfter >= m.start && c.addressAfter < m.end),
    )
    expect(inStacks.map((c) => [c.identity, c.addressAfter, [...c.after]])).toEqual([
      ['[stack thread 3]', written, [0xee]],
    ])
    expect(inStacks[0]?.location).toMatch(/^\[stack thread 3\]-0x[0-9a-f]+$/)
  })
})

describe('threadStacks', () => {
  const map = (start: bigint, end: bigint, perms: string, path = ''): MapState => ({
    start,
    end,
    perms,
    offset: 0n,
    path,
    inode: path.startsWith('/') ? 9 : 0,
  })
  const guard = map(0x10000n, 0x11000n, '---p')
  const stack = map(0x11000n, 0x20000n, 'rw-p')
  const other = map(0x20000n, 0x30000n, 'rw-p')
  const heap = map(0x40000n, 0x50000n, 'rw-p', '[heap]')
  const lib = map(0x60000n, 0x70000n, 'rw-p', '/lib/x.so')
  const thread = (index: number, rsp: bigint): ThreadState => ({
    tid: 100 + index,
    index,
    regs: { rsp },
    backtrace: [],
  })
  const names = (...threads: ThreadState[]): string[][] =>
    [...threadStacks({ arch: 'x86_64', maps: [guard, stack, other, heap, lib], threads })].map(([m, name]) => [
      m.start.toString(16),
      name,
    ])

  it("names the map holding a thread's sp and the guard page right below it", () => {
    expect(names(thread(2, 0x1f000n))).toEqual([
      ['11000', '[stack thread 2]'],
      ['10000', '[stack thread 2 guard]'],
    ])
  })

  it('still names both when the sp went into the guard page (a stack overflow)', () => {
    expect(names(thread(2, 0x10ff8n))).toEqual([
      ['11000', '[stack thread 2]'],
      ['10000', '[stack thread 2 guard]'],
    ])
  })

  it('names nothing for an sp in [heap] or a file map (an alternate stack there), and gives a map shared by two threads to the first', () => {
    expect(names(thread(2, 0x48000n), thread(3, 0x68000n))).toEqual([])
    expect(names(thread(3, 0x18000n), thread(2, 0x1f000n), thread(4, 0x28000n))).toEqual([
      ['11000', '[stack thread 2]'],
      ['10000', '[stack thread 2 guard]'],
      ['20000', '[stack thread 4]'],
    ])
  })
})

/** The maps holding the workers' stack pointers, and the guard page right below each. */
function stackMaps(snap: ProcessSnapshot): Set<MapState> {
  const out = new Set<MapState>()
  for (const t of snap.threads.slice(1)) {
    const sp = t.regs.rsp ?? 0n
    const i = snap.maps.findIndex((m) => sp >= m.start && sp < m.end)
    const [guard, stack] = [snap.maps[i - 1], snap.maps[i]]
    if (stack) out.add(stack)
    if (guard?.end === stack?.start && guard?.perms === '---p') out.add(guard)
  }
  return out
}
