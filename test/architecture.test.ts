// The folders of src/ import one another one way only (DESIGN.md §1): a cycle between two folders
// means a piece has no home of its own. Reads the import statements of every source file.
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import { ROOT } from './dist.js'

const SRC = join(ROOT, 'src')

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  )
}

/** 'process' for src/process/launch.ts; undefined for the shared leaves at the top (errors.ts, index.ts). */
function folderOf(file: string): string | undefined {
  const parts = relative(SRC, file).split('/')
  return parts.length > 1 ? parts[0] : undefined
}

/** Folder -> folders it imports from (type-only imports count: they are arrows too). */
function folderGraph(): Map<string, Set<string>> {
  const graph = new Map<string, Set<string>>()
  for (const file of sourceFiles(SRC)) {
    const from = folderOf(file)
    if (!from) continue
    const edges = graph.get(from) ?? new Set<string>()
    graph.set(from, edges)
    for (const [, spec] of readFileSync(file, 'utf8').matchAll(/\bfrom '(\.[^']+)'/g)) {
      const to = folderOf(resolve(dirname(file), spec ?? ''))
      if (to && to !== from) edges.add(to)
    }
  }
  return graph
}

/** A cycle of folders, as 'a -> b -> a', or undefined. */
function findCycle(graph: Map<string, Set<string>>): string | undefined {
  const state = new Map<string, 'open' | 'done'>()
  const path: string[] = []
  const visit = (node: string): string | undefined => {
    if (state.get(node) === 'done') return undefined
    if (state.get(node) === 'open') return [...path.slice(path.indexOf(node)), node].join(' -> ')
    state.set(node, 'open')
    path.push(node)
    for (const next of graph.get(node) ?? []) {
      const cycle = visit(next)
      if (cycle) return cycle
    }
    path.pop()
    state.set(node, 'done')
    return undefined
  }
  for (const node of graph.keys()) {
    const cycle = visit(node)
    if (cycle) return cycle
  }
  return undefined
}

describe('architecture', () => {
  it('finds a cycle where there is one (the check itself works)', () => {
    const graph = new Map([
      ['a', new Set(['b'])],
      ['b', new Set(['c'])],
      ['c', new Set(['a'])],
    ])
    expect(findCycle(graph)).toBe('a -> b -> c -> a')
  })

  it('the folders of src/ import each other without cycles', () => {
    const graph = folderGraph()
    expect(graph.size).toBeGreaterThanOrEqual(7)
    expect(findCycle(graph)).toBeUndefined()
  })

  it('the lower layers stay below: native imports nothing, files only native (the CRC kernel), elf only files (bounded reads); golden none above snapshot but files', () => {
    const graph = folderGraph()
    expect([...(graph.get('files') ?? [])]).toEqual(['native']) // page CRC-32s by the kernel in native/crc32-pages.ts
    expect([...(graph.get('elf') ?? [])]).toEqual(['files']) // ELF files are read through the bounded reader
    expect([...(graph.get('native') ?? [])]).toEqual([])
    expect([...(graph.get('golden') ?? [])].sort()).toEqual(['files', 'snapshot'])
    for (const low of ['elf', 'native', 'process', 'snapshot', 'golden'])
      expect([...(graph.get(low) ?? [])], low).not.toContain('matchers')
  })
})
