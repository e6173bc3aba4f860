// What a library upgrade must not change: system libraries are written by symbol only, the project's
// modules in full; C++ and Rust names are demangled, and such goldens still read back.
import { execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it, type MatcherState } from 'vitest'
import { compareGolden, summarizeGolden } from '../../src/golden/compare.js'
import { parseGolden } from '../../src/golden/parse.js'
import { applyRedactions } from '../../src/golden/redact.js'
import { goldenSections, readableSections, renderGolden, type GoldenSettings } from '../../src/golden/render.js'
import { readElf } from '../../src/elf/index.js'
import { fromProvided, toProvided } from '../../src/plugin/provided.js'
import { processSnapshots } from '../../src/plugin/index.js'
import { demangle } from '../../src/snapshot/demangle.js'
import type { Process } from '../../src/process/process.js'
import { ROOT } from '../dist.js'
import { fixture, start } from '../helpers.js'
import { runProject } from '../vitest-project.js'

const HEADER = { key: 'libraries 1', test: 'libraries.test.ts' }

/** Vitest's own matcher state (equals, utils), as a matcher sees it. */
function matcherState(): MatcherState {
  let state: MatcherState | undefined
  expect.extend({
    captureMatcherState(this: MatcherState) {
      // eslint-disable-next-line @typescript-eslint/no-this-alias -- the state is what this test needs
      state = this
      return { pass: true, message: () => '' }
    },
  })
  ;(expect(0) as unknown as { captureMatcherState(): void }).captureMatcherState()
  if (!state) throw new Error('no matcher state')
  return state
}

function golden(proc: Process, settings: GoldenSettings = {}): string {
  const snap = proc.createSnapshot({ level: 'writable' })
  const sections = goldenSections(snap.data, snap.modules(), { root: ROOT, ...settings })
  const text = renderGolden(HEADER, sections)
  // The writer never writes what the reader rejects, demangled names (spaces, commas, <>) included.
  const parsed = parseGolden(text, 'libraries.snap')
  expect(parsed.sections).toEqual(readableSections(sections))
  expect(renderGolden(HEADER, parsed.sections)).toBe(text)
  return text
}

/** The entries of one section of a golden text, label -> value. */
function section(text: string, title: string): Map<string, string> {
  const found = parseGolden(text, 'libraries.snap').sections.find((s) => s.title === title)
  return new Map((found?.entries ?? []).map((e) => [e.label, e.value]))
}

describe('demangle', () => {
  it('reads C++ and Rust legacy names, drops the Rust hash, and leaves other names alone', () => {
    expect(demangle('_ZN3foo3barEv')).toBe('foo::bar()')
    expect(demangle('_ZN4core3fmt5write17h0123456789abcdefE')).toBe('core::fmt::write')
    expect(demangle('_ZN5alloc7raw_vec19RawVec$LT$T$C$A$GT$7reserve17h0123456789abcdefE')).toBe(
      'alloc::raw_vec::RawVec<T,A>::reserve',
    )
    expect(demangle('main')).toBe('main')
    expect(demangle('_Znot_mangled')).toBe('_Znot_mangled')
  })
})

describe('C++ in a golden', () => {
  it('names globals, pointers, frames and registers by their C++ names', async () => {
    const proc = await start(fixture('cxx'))
    proc.breakAt('_ZN6shapes7Counter4stepEi')
    await proc.cont()
    expect((await proc.cont()).kind).toBe('breakpoint') // the second call: one finished before it
    const text = golden(proc)
    expect(text).not.toMatch(/[!<]_Z/)
    expect(section(text, 'stop').get('at')).toBe('cxx!shapes::Counter::step(int)')
    const regs = section(text, 'thread 1 registers')
    expect(regs.get('rip')).toBe('cxx!shapes::Counter::step(int)')
    expect(regs.get('rdi')).toBe('cxx!shapes::g_counter') // this
    // The thread pointer, whose place in its map moves with the size of libc's TLS, names itself.
    expect(regs.get('fs_base')).toBe('[tp thread 1]')
    const frames = [...section(text, 'thread 1 backtrace').values()]
    expect(frames.slice(0, 2)).toEqual([
      'cxx!shapes::Counter::step(int)',
      expect.stringMatching(/^cxx!main\+0x[0-9a-f]+$/),
    ])
    // libc's frames by function only: where in it is libc's business.
    const libc = frames.filter((f) => f.startsWith('libc.so.6'))
    expect(libc.length).toBeGreaterThan(0)
    for (const f of libc) expect(f).toMatch(/^libc\.so\.6(!\w+)?$/)
    const memory = section(text, 'memory')
    expect(memory.get('cxx!shapes::g_counter')).toBe('01 00 00 00')
    expect(memory.get('cxx!shapes::Counter::step(int)::calls')).toBe('01 00 00 00')
    expect(memory.get('cxx!shapes::g_box')).toBe('01 00 00 00 00 00 00 00 02 00 00 00 00 00 00 00')
    expect(memory.get('cxx!shapes::Box<long>::made')).toBe('07 00 00 00 00 00 00 00')
    expect(memory.get('cxx!(anonymous namespace)::hidden')).toBe('2a 00 00 00')
    expect(memory.get('cxx!shapes::g_self')).toBe('<cxx!shapes::g_counter>')
    expect(memory.get('cxx!shapes::g_scale')).toBe('<cxx!long shapes::scale<long>(long)>')
    expect(memory.get('cxx!shapes::g_less')).toBe(
      '<cxx!shapes::operator<(shapes::Counter const&, shapes::Counter const&)>',
    )
    expect(section(text, 'modules').get('libc.so.6')).toBe('by symbol')
    expect([...section(text, 'maps').keys()].every((k) => k.startsWith('cxx@'))).toBe(true)
  })

  it('redacts a memory line by its C++ name, which resolve() could not read back', async () => {
    const proc = await start(fixture('cxx'))
    proc.breakAt('_ZN6shapes7Counter4stepEi')
    expect((await proc.cont()).kind).toBe('breakpoint')
    const snap = proc.createSnapshot({ level: 'writable' })
    const sections = goldenSections(snap.data, snap.modules(), { root: ROOT })
    const redact = {
      'memory.shapes::g_box': '<box>',
      'memory.shapes::Counter::step(int)::calls': new Uint8Array([0, 0, 0, 0]),
    }
    const state = matcherState()
    const { sections: out, failures } = applyRedactions(state, sections, snap, redact)
    expect(failures).toEqual([])
    const memory = out.find((s) => s.title === 'memory')?.entries ?? []
    expect(memory.find((e) => e.label === 'cxx!shapes::g_box')?.value).toBe('<box>')
    expect(memory.find((e) => e.label === 'cxx!shapes::Counter::step(int)::calls')?.value).toMatch(/^<Uint8Array/)
    const wrong = applyRedactions(state, sections, snap, {
      'memory.shapes::Counter::step(int)::calls': new Uint8Array([1, 0, 0, 0]),
    })
    expect(wrong.failures).toHaveLength(1)
  })
})

const rustc = (() => {
  try {
    execFileSync('rustc', ['--version'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
})()

describe.skipIf(!rustc)('Rust in a golden (rustc found)', () => {
  it('names frames by their Rust paths without the hash', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'procsnap-rust-'))
    try {
      const bin = join(dir, 'rusty')
      const source = join(ROOT, 'fixtures/rust/rusty.rs')
      execFileSync(
        'rustc',
        ['-C', 'opt-level=0', '-C', 'symbol-mangling-version=legacy', '-Z', 'unstable-options', '-o', bin, source],
        {
          stdio: 'ignore',
          env: { ...process.env, RUSTC_BOOTSTRAP: '1' },
        },
      )
      const step = readElf(bin).symbols.find((s) => /7Counter4step17h[0-9a-f]{16}E$/.test(s.name))
      expect(step).toBeDefined()
      const proc = await start(bin)
      proc.breakAt(step?.name ?? 'step')
      expect((await proc.cont()).kind).toBe('breakpoint')
      // The executable lies outside the project root here: it is shown in full all the same.
      const text = golden(proc)
      expect(text).not.toMatch(/::h[0-9a-f]{16}\b|[!<]_ZN/)
      expect(section(text, 'stop').get('at')).toBe('rusty!rusty::shapes::Counter::step')
      const frames = [...section(text, 'thread 1 backtrace').values()]
      expect(frames[1]).toMatch(/^rusty!rusty::main\+0x[0-9a-f]+$/)
      expect(frames.some((f) => f.includes('std::rt::lang_start'))).toBe(true)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('a library upgrade', () => {
  /** dlopen's golden in the library's plugin_fn: v1 (-O0) or v2 (-O2, one more function before it). */
  async function pluginGolden(version: 'v1' | 'v2', settings: GoldenSettings = {}): Promise<string> {
    const proc = await start(fixture('dlopen'), { args: [fixture(`libplugin-${version}/libplugin.so`)] })
    proc.breakAt('libplugin.so!plugin_fn')
    expect((await proc.cont()).kind).toBe('breakpoint')
    return golden(proc, settings)
  }
  // main's `if (!fn)` sets the parity flag from plugin_fn's address: a value computed from where the
  // library put it, which only normalizing flags could hide.
  const withoutFlags = (text: string): string => text.replace(/\n {2}eflags +0x[0-9a-f]+/g, '')

  it('changes nothing when the library is not a project module', async () => {
    const v1 = await pluginGolden('v1', { modules: [] })
    const v2 = await pluginGolden('v2', { modules: [] })
    expect(withoutFlags(v2)).toBe(withoutFlags(v1))
    expect(section(v1, 'modules').get('libplugin.so')).toBe('by symbol')
    expect([...section(v1, 'maps').keys()].some((k) => k.startsWith('libplugin.so'))).toBe(false)
    expect(section(v1, 'thread 1 backtrace').get('#0')).toBe('libplugin.so!plugin_fn')
    // The breakpoint is where the test asked, so the stop is written as it.
    expect(section(v1, 'stop').get('at')).toBe('libplugin.so!plugin_fn')
  })

  it('is reported as a rebuild of the library when it is the project’s (by default: it lies inside the root)', async () => {
    const v1 = await pluginGolden('v1')
    const v2 = await pluginGolden('v2')
    const changes = compareGolden(parseGolden(v1, 'v1').sections, parseGolden(v2, 'v2').sections)
    const summary = summarizeGolden(changes)
    expect(summary).toMatch(/^libplugin\.so rebuilt \(build-id [0-9a-f]{8} -> [0-9a-f]{8}\)/)
    expect(changes.filter((c) => c.section === 'modules').map((c) => c.label)).toEqual(['libplugin.so'])
    expect(section(v1, 'memory').get('libplugin.so!completed.0')).toBe('00')
    // By name or pattern too, wherever the project root is: here an empty directory (not tmpdir(),
    // which holds this repository when it is cloned under /tmp).
    const elsewhere = mkdtempSync(join(tmpdir(), 'procsnap-elsewhere-'))
    for (const modules of [['libplugin.so'], [/^libplugin/]]) {
      const named = await pluginGolden('v1', { modules, root: elsewhere })
      expect(section(named, 'modules').get('libplugin.so')).toMatch(/^[0-9a-f]{40}$/)
    }
    const outside = await pluginGolden('v1', { root: elsewhere })
    expect(section(outside, 'modules').get('libplugin.so')).toBe('by symbol')
    const moved = summarizeGolden(compareGolden(parseGolden(outside, 'a').sections, parseGolden(v1, 'b').sections))
    expect(moved).toMatch(/^libplugin\.so by symbol -> build-id [0-9a-f]{8},/)
    rmSync(elsewhere, { recursive: true, force: true })
  })
})

describe('node', () => {
  it.skipIf(!existsSync(process.execPath))(
    "node's golden at exit renders and reads back with demangled names",
    async () => {
      const proc = await start(process.execPath, { args: ['-e', '0'], timeout: 20_000 })
      proc.breakAt('libc.so.6!exit')
      expect((await proc.cont()).kind).toBe('breakpoint')
      const text = golden(proc)
      // Node's own C++ (frames of its threads, registers, globals and pointers to functions) by C++ name.
      expect(text).toMatch(/ node!node::\S/)
      expect(text).toMatch(/<node!v8::\S/)
      expect(text).not.toMatch(/[!<]_ZN/)
      expect(section(text, 'modules').get('libc.so.6')).toBe('by symbol')
    },
    60_000,
  )
})

describe('the modules option', () => {
  it('defaults to the Vitest root the plugin provides, takes a plugin-wide default, and a per-call value', async () => {
    const project = mkdtempSync(join(tmpdir(), 'procsnap-modules-'))
    try {
      writeFileSync(
        join(project, 'lib.test.ts'),
        `import { expect, test } from 'vitest'
import { launch } from 'procsnap'
test('plugin', async () => {
  const proc = await launch(${JSON.stringify(fixture('dlopen'))}, { args: [${JSON.stringify(fixture('libplugin.so'))}] })
  proc.breakAt('libplugin.so!plugin_fn')
  await proc.cont()
  expect(proc).toMatchProcessSnapshot({ name: 'default', include: ['maps'] })
  expect(proc).toMatchProcessSnapshot({ name: 'all', include: ['maps'], modules: 'all' })
})
`,
      )
      const goldens = join(project, '__process_snapshots__', 'lib.test.ts')
      const modulesOf = (name: string): Map<string, string> => {
        const file = readdirSync(goldens).find((f) => f.startsWith(`plugin-${name}`)) ?? name
        return section(readFileSync(join(goldens, file), 'utf8'), 'modules')
      }
      // The fixtures lie outside this project's root (the workers' cwd is this repository's: not used).
      const first = await runProject(project, { update: 'all' })
      expect(first.errors).toEqual([])
      expect(modulesOf('default').get('libplugin.so')).toBe('by symbol')
      expect(modulesOf('all').get('libc.so.6')).toMatch(/^[0-9a-f]{40}$/)
      const named = await runProject(project, { update: 'all', pluginOptions: { modules: [/^libplugin\./] } })
      expect(named.errors).toEqual([])
      expect(modulesOf('default').get('libplugin.so')).toMatch(/^[0-9a-f]{40}$/)
      expect(modulesOf('default').get('libc.so.6')).toBe('by symbol')
    } finally {
      rmSync(project, { recursive: true, force: true })
    }
  }, 60_000)

  it('passes from processSnapshots() to the workers as plain data', () => {
    expect(processSnapshots({ modules: ['libplugin.so', /^libfoo/i] }).name).toBe('procsnap')
    const provided = structuredClone(toProvided('/p', ['libplugin.so', /^libfoo/i]))
    expect(fromProvided(provided)).toEqual({ root: '/p', modules: ['libplugin.so', /^libfoo/i] })
    expect(fromProvided(toProvided('/p', 'all'))).toEqual({ root: '/p', modules: 'all' })
    expect(fromProvided(undefined)).toEqual({})
  })
})
