// .eh_frame reader against binutils: every FDE and every row of `readelf -wF` (frames-interp) must match ours.
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { parseElf, readElf, type ElfFile } from '../../src/elf/index.js'
import {
  checkExpression,
  evaluateExpression,
  findFde,
  findUnwindRow,
  listFdes,
  type CfaRule,
  type RegisterRule,
  type UnwindRow,
} from '../../src/elf/eh-frame.js'
import { compileC, LDSO, LIBC, makeTempDir } from './oracle.js'

/** A built fixture (no import of the process layer: this suite is about the ELF reader alone). */
const fixture = (name: string): string => fileURLToPath(new URL(`../../fixtures/c/bin/${name}`, import.meta.url))

const X86_NAMES = [
  'rax',
  'rdx',
  'rcx',
  'rbx',
  'rsi',
  'rdi',
  'rbp',
  'rsp',
  'r8',
  'r9',
  'r10',
  'r11',
  'r12',
  'r13',
  'r14',
  'r15',
  'rip',
]

interface ReadelfRow {
  loc: bigint
  cells: string[]
}

interface ReadelfEntry {
  kind: 'CIE' | 'FDE'
  offset: number
  cie: number
  start: bigint
  end: bigint
  ra: number
  /** CIE augmentation string ('zR', 'zPLR', 'zRS'); '' for an FDE. */
  augmentation: string
  columns: string[]
  rows: ReadelfRow[]
}

/** The CIEs and FDEs of `readelf -wF` (the interpreted table), with their rows. */
function readelfFrames(path: string): ReadelfEntry[] {
  const entries: ReadelfEntry[] = []
  let current: ReadelfEntry | undefined
  // readelf exits 1 on libc (it cannot follow .gnu_debuglink) after printing the whole table: read stdout regardless.
  const out = spawnSync('readelf', ['-wF', path], {
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
    env: { ...process.env, LC_ALL: 'C' },
  }).stdout
  for (const line of out.split('\n')) {
    const cie = /^([0-9a-f]{8}) [0-9a-f]+ [0-9a-f]+ CIE "([^"]*)" .* ra=(\d+)/.exec(line)
    const fde = /^([0-9a-f]{8}) [0-9a-f]+ [0-9a-f]+ FDE cie=([0-9a-f]+) pc=([0-9a-f]+)\.\.([0-9a-f]+)/.exec(line)
    if (cie) {
      current = {
        kind: 'CIE',
        offset: parseInt(cie[1] ?? '', 16),
        cie: -1,
        start: 0n,
        end: 0n,
        ra: Number(cie[3]),
        augmentation: cie[2] ?? '',
        columns: [],
        rows: [],
      }
      entries.push(current)
    } else if (fde) {
      const offset = parseInt(fde[2] ?? '', 16)
      const ra = entries.find((e) => e.offset === offset)?.ra ?? 16
      current = {
        kind: 'FDE',
        offset: parseInt(fde[1] ?? '', 16),
        cie: offset,
        start: BigInt(`0x${fde[3]}`),
        end: BigInt(`0x${fde[4]}`),
        ra,
        augmentation: '',
        columns: [],
        rows: [],
      }
      entries.push(current)
    } else if (current && /^\s+LOC\s/.test(line)) {
      current.columns = line.trim().split(/\s+/).slice(1)
    } else if (current && /^[0-9a-f]{16} /.test(line)) {
      const [loc, ...tokens] = line.trim().split(/\s+/)
      // A register rule prints as 'r1 (rdx)': glue the name in parentheses back to its cell.
      const cells: string[] = []
      for (const t of tokens) {
        if (/^\(.*\)$/.test(t) && cells.length > 0) cells[cells.length - 1] += ` ${t}`
        else cells.push(t)
      }
      current.rows.push({ loc: BigInt(`0x${loc}`), cells })
    }
  }
  return entries
}

function regName(n: number): string {
  return X86_NAMES[n] ?? `r${n}`
}

function signed(n: bigint): string {
  return n >= 0n ? `+${n}` : `${n}`
}

function showCfa(rule: CfaRule): string {
  return rule.kind === 'expression' ? 'exp' : `${regName(rule.register)}${signed(rule.offset)}`
}

/** Our rule as readelf prints it; readelf shows a column never set (no rule) as 'u' too. */
function showRule(rule: RegisterRule | undefined): string {
  if (!rule) return 'u'
  switch (rule.kind) {
    case 'undefined':
      return 'u'
    case 'same-value':
      return 's'
    case 'offset':
      return `c${signed(rule.offset)}`
    case 'val-offset':
      return `v${signed(rule.offset)}`
    case 'register':
      return `r${rule.register} (${regName(rule.register)})`
    case 'expression':
      return 'exp'
    case 'val-expression':
      return 'vexp'
  }
}

/** Our row in readelf's columns. */
function show(row: UnwindRow, columns: readonly string[], ra: number): string[] {
  return columns.map((c) => {
    if (c === 'CFA') return showCfa(row.cfa)
    const reg = c === 'ra' ? ra : X86_NAMES.indexOf(c)
    return reg < 0 ? `?${c}` : showRule(row.registers.get(reg))
  })
}

/** Compares every FDE of `path` and every row of its table; returns how many rows were checked. */
function checkFile(elf: ElfFile, entries: readonly ReadelfEntry[], bytes?: Uint8Array): number {
  let rows = 0
  for (const fde of entries.filter((e) => e.kind === 'FDE' && e.end > e.start)) {
    const cie = entries.find((e) => e.offset === fde.cie)
    // An FDE whose instructions are only nops has no table of its own: the CIE's row holds over it.
    const table =
      fde.rows.length > 0
        ? fde
        : { ...fde, columns: cie?.columns ?? [], rows: (cie?.rows ?? []).map((r) => ({ ...r, loc: fde.start })) }
    // Keep the last row printed at each address (an advance of 0 prints two).
    const byLoc = new Map(table.rows.map((r) => [r.loc, r]))
    const locs = [...byLoc.keys()]
    locs.forEach((loc, i) => {
      const next = locs[i + 1] ?? fde.end
      for (const at of [loc, next - 1n]) {
        const row = findUnwindRow(elf, at, bytes)
        const where = `${elf.path} FDE ${fde.offset.toString(16)} at 0x${at.toString(16)}`
        expect(row, where).toBeDefined()
        if (!row) continue
        expect({ where, start: row.start, end: row.end, fde: row.fde.offset }).toEqual({
          where,
          start: loc,
          end: next,
          fde: fde.offset,
        })
        expect({ where, cells: show(row, table.columns, fde.ra) }).toEqual({ where, cells: byLoc.get(loc)?.cells })
        expect(row.returnAddressRegister).toBe(fde.ra)
        // gcc's and glibc's expressions (PLT entries, __restore_rt) are all within the supported DW_OP subset.
        expect(row.unusable, where).toBeUndefined()
        rows++
      }
    })
  }
  return rows
}

const FILES = [
  fixture('counter'),
  fixture('counter-O2'),
  fixture('deep-O2'),
  fixture('counter-static'),
  LIBC,
  LDSO,
  '/usr/bin/sort',
]

describe('eh_frame against readelf -wF', () => {
  it.each(FILES)("every FDE of %s has readelf's range, CIE and table rows", (path) => {
    const elf = readElf(path)
    const entries = readelfFrames(path)
    const { fdes, usesHeaderTable } = listFdes(elf)
    // Static binaries are linked without .eh_frame_hdr here: they take the sorted-index path.
    expect(usesHeaderTable).toBe(elf.sections.some((s) => s.name === '.eh_frame_hdr'))
    const expected = entries
      .filter((e) => e.kind === 'FDE')
      .map((e) => ({ offset: e.offset, cieOffset: e.cie, start: e.start, end: e.end }))
    expect(fdes).toEqual(expected)
    expect(checkFile(elf, entries)).toBeGreaterThan(expected.length)
  })

  it('finds FDEs through a sorted index when the file has no .eh_frame_hdr, from the whole file bytes too', () => {
    const dir = makeTempDir()
    const source = readFileSync(new URL('../../fixtures/c/counter.c', import.meta.url), 'utf8')
    const path = compileC(dir, 'nohdr', source, ['-O2', '-Wl,--no-eh-frame-hdr'])
    const elf = readElf(path)
    expect(elf.sections.some((s) => s.name === '.eh_frame_hdr')).toBe(false)
    const { fdes, usesHeaderTable } = listFdes(elf)
    expect(usesHeaderTable).toBe(false)
    const entries = readelfFrames(path)
    expect(fdes.length).toBe(entries.filter((e) => e.kind === 'FDE').length)
    expect(checkFile(elf, entries)).toBeGreaterThan(0)
    // The same answers from bytes the caller holds, on a fresh parse (the cache is per ElfFile).
    const bytes = readFileSync(path)
    expect(checkFile(parseElf(bytes, path), entries, bytes)).toBeGreaterThan(0)
  })

  it('has no row outside every FDE and none for a file without CFI data', () => {
    const elf = readElf(fixture('counter'))
    expect(findUnwindRow(elf, 0n)).toBeUndefined()
    expect(findUnwindRow(elf, 0xffff_ffff_ffffn)).toBeUndefined()
    expect(findFde(elf, 0n)).toBeUndefined()
    const main = elf.findSymbol('main')
    expect(main).toBeDefined()
    expect(findFde(elf, main?.value ?? 0n)?.start).toBe(main?.value)
  })

  it("marks _start's return address undefined: the outermost frame", () => {
    for (const path of [fixture('counter'), fixture('counter-static')]) {
      const elf = readElf(path)
      const row = findUnwindRow(elf, elf.entry)
      expect(row?.registers.get(16)).toEqual({ kind: 'undefined' })
      expect(row?.unusable).toBeUndefined()
    }
  })

  it('evaluates the PLT expression and flags __restore_rt as a signal frame (libc)', () => {
    const libc = readElf(LIBC)
    const entries = readelfFrames(LIBC)
    const plt = libc.sections.find((s) => s.name === '.plt')
    expect(plt).toBeDefined()
    const pltRow = findUnwindRow(libc, (plt?.addr ?? 0n) + 0x20n)
    expect(pltRow?.cfa.kind).toBe('expression')
    expect(pltRow?.unusable).toBeUndefined()
    if (pltRow?.cfa.kind === 'expression') {
      // rsp + 8 + ((rip & 15) >= 11 ? 8 : 0): the push in the second half of a PLT entry moved rsp.
      const at = (rip: bigint): bigint | undefined =>
        evaluateExpression((pltRow.cfa as { expression: Uint8Array }).expression, {
          register: (n) => (n === 7 ? 0x1000n : n === 16 ? rip : undefined),
          read: () => undefined,
        })
      expect(at(0x7000n)).toBe(0x1008n)
      expect(at(0x700bn)).toBe(0x1010n)
      expect(at(0x700fn)).toBe(0x1010n)
    }
    const sigCie = entries.find((e) => e.kind === 'CIE' && e.augmentation.includes('S'))
    const sigFde = entries.find((e) => e.kind === 'FDE' && e.cie === sigCie?.offset)
    expect(sigFde).toBeDefined()
    const row = findUnwindRow(libc, (sigFde?.start ?? 0n) + 1n)
    expect(row?.signalFrame).toBe(true)
    expect(row?.cfa.kind).toBe('expression')
    expect(row?.registers.get(16)?.kind).toBe('expression')
    expect(row?.unusable).toBeUndefined()
  })
})

const UNSUPPORTED_SOURCE = `
__attribute__((noinline)) int odd(int x)
{
	__asm__ volatile(".cfi_remember_state\\n\\t.cfi_escape 0x0f, 0x01, 0x97\\n\\t.globl odd_nop\\nodd_nop:\\n\\tnop\\n\\t.cfi_restore_state" ::: "memory");
	return x + 1;
}
int main(void) { return odd(1) != 2; }
`

describe('DWARF expressions', () => {
  const none = { register: (): undefined => undefined, read: (): undefined => undefined }
  const eval0 = (bytes: number[], initial?: bigint): bigint | undefined =>
    evaluateExpression(Uint8Array.from(bytes), none, initial)

  it('computes constants, arithmetic, signed comparisons and branches', () => {
    expect(eval0([0x35, 0x09, 0xfd, 0x22])).toBe(2n) // lit5; const1s -3; plus
    expect(eval0([0x09, 0xff, 0x30, 0x2d])).toBe(1n) // -1 < 0, signed
    expect(eval0([0x30, 0x31, 0x1c])).toBe((1n << 64n) - 1n) // 0 - 1 wraps
    const branch = (cond: number): bigint | undefined => eval0([cond, 0x28, 0x04, 0x00, 0x37, 0x2f, 0x01, 0x00, 0x38])
    expect(branch(0x31)).toBe(8n)
    expect(branch(0x30)).toBe(7n)
    expect(eval0([0x23, 0x10], 100n)).toBe(116n) // plus_uconst 16 on the pushed CFA
  })

  it('reads registers and memory through its context', () => {
    const context = {
      register: (n: number) => (n === 7 ? 0x1000n : undefined),
      read: (a: bigint, size: number) => (a === 0x1008n && size === 8 ? 0x1234n : undefined),
    }
    expect(evaluateExpression(Uint8Array.of(0x77, 0x08, 0x06), context)).toBe(0x1234n) // breg7 8; deref
    expect(evaluateExpression(Uint8Array.of(0x77, 0x10, 0x06), context)).toBeUndefined() // unreadable
    expect(evaluateExpression(Uint8Array.of(0x73, 0x00), context)).toBeUndefined() // rbx unknown
  })

  it('refuses what it does not support instead of guessing', () => {
    expect(checkExpression(Uint8Array.of(0x97))).toMatch(/DW_OP_push_object_address/)
    expect(checkExpression(Uint8Array.of(0x2f, 0x01, 0x00, 0x0a, 0x00, 0x00))).toMatch(/inside an operation/)
    expect(eval0([0x97])).toBeUndefined()
    expect(eval0([0x13])).toBeUndefined() // drop on an empty stack
  })

  it('marks a row whose CFA expression uses an unsupported operation as unusable', () => {
    const path = compileC(makeTempDir(), 'unsupported', UNSUPPORTED_SOURCE, ['-g'])
    const elf = readElf(path)
    const at = elf.findSymbol('odd_nop')?.value ?? 0n
    const row = findUnwindRow(elf, at)
    expect(row?.cfa.kind).toBe('expression')
    expect(row?.unusable).toMatch(/CFA expression: unsupported DW_OP_push_object_address/)
    // Before the escape and after .cfi_restore_state the function's own rules hold.
    expect(findUnwindRow(elf, at - 1n)?.unusable).toBeUndefined()
    expect(findUnwindRow(elf, at + 1n)?.unusable).toBeUndefined()
  })
})
