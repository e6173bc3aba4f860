// The writer never writes what the reader rejects: goldens of real programs we did not write (node,
// python3, bash) and of generated sections with hostile labels render, parse back to the same
// entries, and render again to the same bytes.
import { existsSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { parseGolden } from '../../src/golden/parse.js'
import { goldenSections, readableSections, renderGolden, type GoldenSection } from '../../src/golden/render.js'
import { start } from '../helpers.js'

const HEADER = { key: 'roundtrip > program 1', test: 'roundtrip.test.ts' }

/** Parses what was rendered, checks it reads back to the rendered entries and renders to the same text. */
function expectRoundTrip(sections: readonly GoldenSection[]): string {
  const text = renderGolden(HEADER, sections)
  const parsed = parseGolden(text, 'roundtrip.snap')
  expect(parsed.key).toBe(HEADER.key)
  expect(parsed.sections).toEqual(readableSections(sections))
  expect(renderGolden(HEADER, parsed.sections)).toBe(text)
  return text
}

const PROGRAMS: [string, string[]][] = [
  [process.execPath, ['-e', '0']],
  ['/usr/bin/python3', ['-c', 'pass']],
  ['/bin/bash', ['-c', 'true']],
]

describe('goldens of real programs', () => {
  it.each(PROGRAMS.filter(([path]) => existsSync(path)))(
    '%s at exit renders, parses back and renders the same bytes',
    async (path, args) => {
      const proc = await start(path, { args, timeout: 20_000 })
      proc.breakAt('libc.so.6!exit')
      expect((await proc.cont()).kind).toBe('breakpoint')
      const snap = proc.createSnapshot({ level: 'writable' })
      const sections = goldenSections(
        snap.data,
        snap.modules(),
        {},
        {
          resolve: (l) => snap.memory.resolve(l),
          read: (a, n) => snap.memory.read(a, n),
        },
      )
      // goldenSections already gives what the reader accepts: normalizing again changes nothing.
      expect(readableSections(sections)).toEqual(sections)
      const text = expectRoundTrip(sections)
      const memory = sections.find((s) => s.title === 'memory')
      expect(memory?.entries.length).toBeGreaterThan(10)
      // Long (C++) labels do not pad every line: no line carries more than 48 columns of label padding.
      expect(text.split('\n').filter((l) => / {3,}/.test(l.slice(50, 52)))).toEqual([])
    },
    60_000,
  )
})

/** xorshift32: the same cases on every run. */
function random(seed: number): () => number {
  let x = seed
  return () => {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    return (x >>> 0) / 2 ** 32
  }
}

describe('generated sections', () => {
  const pieces = [
    'g_counter',
    'node!_ZL7_module',
    'a b',
    '  lead',
    'trail  ',
    'two  spaces',
    '',
    ' ',
    '#2',
    'x#2',
    'é',
    'tab\there',
  ]
  const values = [
    '01 00 00 00',
    '',
    '<libc.so.6!environ>',
    'line\nbreak',
    'trailing  ',
    '00 x 4096',
    '  lead',
    'carriage\rreturn',
    'sep\u2028par\u2029',
  ]

  it('render, parse and render again agree for 300 random sections with hostile labels and values', () => {
    const next = random(0x9e3779b9)
    const pick = <T>(list: readonly T[]): T => list[Math.floor(next() * list.length)] as T
    for (let c = 0; c < 300; c++) {
      const sections: GoldenSection[] = Array.from({ length: 1 + Math.floor(next() * 3) }, (_, s) => ({
        title: `section ${s}`,
        entries: Array.from({ length: Math.floor(next() * 12) }, () => ({
          label: next() < 0.3 ? pick(pieces) + pick(pieces) : pick(pieces),
          value: pick(values),
        })),
      }))
      expectRoundTrip(sections)
    }
  })

  it('a label that appears twice gets #2, and one already named so gets #3', () => {
    const sections: GoldenSection[] = [
      {
        title: 'memory',
        entries: [
          { label: 'node!_ZL7_module', value: '01' },
          { label: 'node!_ZL7_module#2', value: '02' },
          { label: 'node!_ZL7_module', value: '03' },
        ],
      },
    ]
    expect(readableSections(sections)[0]?.entries.map((e) => e.label)).toEqual([
      'node!_ZL7_module',
      'node!_ZL7_module#2',
      'node!_ZL7_module#3',
    ])
    expectRoundTrip(sections)
  })
})
