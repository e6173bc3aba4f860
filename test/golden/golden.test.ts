// Golden views of real stops: byte-identical across runs with ASLR off and on, addresses written
// relative to what contains them, parsed back, compared as structure; bad files named by line.
import { describe, expect, it } from 'vitest'
import { compareGolden, summarizeGolden } from '../../src/golden/compare.js'
import { parseGolden } from '../../src/golden/parse.js'
import { goldenSections, renderGolden, type GoldenOptions } from '../../src/golden/render.js'
import type { ProcessSnapshot } from '../../src/index.js'
import { fixture, start } from '../helpers.js'

const HEADER = { key: 'counter > bump 1', test: 'test/counter.test.ts' }

async function bumpSnapshot(hits: number, aslr = false): Promise<ProcessSnapshot> {
  const proc = await start(fixture('counter'), { args: ['3'], aslr })
  proc.breakAt('bump')
  for (let i = 0; i < hits; i++) await proc.cont()
  const snap = proc.createSnapshot({ level: 'writable' })
  await proc.kill()
  return snap
}

function golden(snap: ProcessSnapshot, options?: GoldenOptions): string {
  return renderGolden(HEADER, goldenSections(snap.data, snap.modules(), options))
}

describe('golden text', () => {
  it('is the same, byte for byte, in 20 runs with ASLR off and 20 with ASLR on', async () => {
    const texts = new Set<string>()
    const starts = new Set<bigint>()
    for (const aslr of [false, true]) {
      for (let run = 0; run < 20; run++) {
        const snap = await bumpSnapshot(2, aslr)
        texts.add(golden(snap))
        starts.add(snap.regs.rip ?? 0n)
      }
    }
    expect(starts.size).toBeGreaterThan(2) // ASLR did move the program
    expect(texts.size).toBe(1)
  }, 60_000)

  it('writes addresses relative to what contains them, never as absolute numbers', async () => {
    const snap = await bumpSnapshot(2)
    const text = golden(snap)
    expect(
      text.startsWith(
        '# procsnap golden 1\n# key: counter > bump 1\n# test: test/counter.test.ts\n\nstop:\n  ' +
          'kind    breakpoint\n  at      counter!bump\n  thread  1\n',
      ),
    ).toBe(true)
    expect(text).toMatch(/\n {2}rip +counter!bump\n/)
    expect(text).toMatch(/\n {2}rsp +\[stack\]@sp\+0x0\n/)
    expect(text).toMatch(/\n {2}rdi +0x2\n/)
    expect(text).toContain('\nthread 1 backtrace:\n  #0  counter!bump\n  #1  counter!main+0x')
    expect(text).toMatch(/\n {2}counter!g_counter +01 00 00 00\n/)
    expect(text).toMatch(/\n {2}counter!__dso_handle +<counter!__dso_handle>\n/)
    expect(text).toMatch(/\n {2}counter@0x1000 +r-xp 0x1000\n/)
    expect(text).not.toMatch(/0x(55|7f)[0-9a-f]{10}/) // no absolute address of the exe, a library or the stack
    expect(text).not.toContain(String(snap.pid))
  })

  it('chooses its sections, and adds vector registers only when asked', async () => {
    const snap = await bumpSnapshot(1)
    const regsOnly = golden(snap, { include: ['regs'] })
    expect(regsOnly).toContain('thread 1 registers:')
    expect(regsOnly).not.toContain('memory:')
    expect(regsOnly).not.toContain('xmm0')
    expect(golden(snap, { include: ['regs'], vectorRegs: true })).toMatch(/\n {2}xmm0 +0x[0-9a-f]+\n/)
  })
})

describe('reading and comparing goldens', () => {
  it('parses a golden back into the sections it was written from', async () => {
    const snap = await bumpSnapshot(2)
    const sections = goldenSections(snap.data, snap.modules())
    const doc = parseGolden(renderGolden(HEADER, sections), 'bump.snap')
    expect(doc).toEqual({ version: 1, key: HEADER.key, test: HEADER.test, sections })
  })

  it('names what differs between two stops: registers, the changed globals, the backtrace', async () => {
    const [second, third] = [await bumpSnapshot(2), await bumpSnapshot(3)]
    const changes = compareGolden(
      goldenSections(second.data, second.modules()),
      goldenSections(third.data, third.modules()),
    )
    expect(
      changes
        .filter((c) => c.section === 'thread 1 registers')
        .map((c) => c.label)
        .sort(),
    ).toEqual(['eflags', 'rax', 'rdi'])
    expect(changes.find((c) => c.label === 'counter!g_counter')).toEqual({
      section: 'memory',
      label: 'counter!g_counter',
      before: '01 00 00 00',
      after: '03 00 00 00',
    })
    expect(summarizeGolden(changes)).toBe(
      '3 registers, 2 memory ranges (counter!g_counter: 01 00 00 00 -> 03 00 00 00; ' +
        'counter!g_total: 01 00 00 00 00 00 00 00 -> 04 00 00 00 00 00 00 00), backtrace unchanged',
    )
    expect(summarizeGolden([])).toBe('no differences')
    // a library rebuilt on another machine is named first, before what moved with it
    const rebuilt = compareGolden(
      [{ title: 'modules', entries: [{ label: 'libc.so.6', value: '0123456789abcdef' }] }],
      [{ title: 'modules', entries: [{ label: 'libc.so.6', value: 'fedcba9876543210' }] }],
    )
    expect(summarizeGolden(rebuilt)).toBe('libc.so.6 rebuilt (build-id 01234567 -> fedcba98), backtrace unchanged')
  })

  const good = '# procsnap golden 1\n# key: k 1\n# test: t.test.ts\n\nstop:\n  kind  breakpoint\n'

  it('refuses a damaged file with its path and line', () => {
    const code = (text: string): unknown => {
      try {
        parseGolden(text, 'x.snap')
      } catch (error) {
        return {
          code: (error as { code: string }).code,
          line: (error as { line: number }).line,
          message: (error as Error).message,
        }
      }
      return undefined
    }
    expect(parseGolden(good, 'x.snap').sections).toEqual([
      { title: 'stop', entries: [{ label: 'kind', value: 'breakpoint' }] },
    ])
    expect(code('hello\n')).toMatchObject({ code: 'ERR_GOLDEN_CORRUPT', line: 1 })
    expect(code('# procsnap golden 2\n# key: k\n# test: t\n')).toMatchObject({
      code: 'ERR_GOLDEN_VERSION',
      line: 1,
      message: expect.stringContaining('newer procsnap') as unknown,
    })
    expect(code('# procsnap golden 1\n# test: t\n')).toMatchObject({ code: 'ERR_GOLDEN_CORRUPT', line: 2 })
    expect(code(`${good}  kind  again\n`)).toMatchObject({
      line: 7,
      message:
        "x.snap:7: 'kind' appears twice in section 'stop'. Fix the file or delete it and run vitest -u to write it again.",
    })
    expect(code('# procsnap golden 1\n# key: k\n# test: t\n  orphan  1\n')).toMatchObject({ line: 4 })
    expect(code(`${good}\nstop:\n`)).toMatchObject({
      line: 8,
      message: expect.stringContaining("section 'stop' appears twice") as unknown,
    })
    expect(code(`${good}not an entry\n`)).toMatchObject({ line: 7 })
  })
})
