// "Did you mean" suggestions: case-insensitive substring matches and small edit distances, with bounded work.
import type { ElfSymbol } from './types.js'

/** A prepared list of distinct symbol names to suggest from. */
export interface NameList {
  names: string[]
  lower: string[]
}

/** Distinct names of `symbols`, in first-seen order. */
export function createNameList(symbols: readonly ElfSymbol[]): NameList {
  const names = [...new Set(symbols.map((s) => s.name))]
  return { names, lower: names.map((n) => n.toLowerCase()) }
}

/** Up to `max` names near `query`, best first: edit distance <= max(2, len/4), then substring matches. */
export function findNearNames(list: NameList, query: string, max = 5): string[] {
  if (query === '' || max <= 0) return []
  const q = query.toLowerCase()
  const limit = Math.max(2, Math.floor(q.length / 4))
  const matches: { name: string; score: number }[] = []
  const row = new Int32Array(q.length + 1)
  for (let i = 0; i < list.names.length; i++) {
    const lower = list.lower[i] as string
    const name = list.names[i] as string
    const distance = Math.abs(lower.length - q.length) <= limit ? boundedDistance(q, lower, limit, row) : limit + 1
    if (distance <= limit) matches.push({ name, score: distance })
    else if (q.length >= 2 && lower.includes(q))
      matches.push({ name, score: limit + 1 + (lower.length - q.length) / 1e6 })
  }
  matches.sort((a, b) => a.score - b.score || compareNames(a.name, b.name, query))
  return matches.slice(0, max).map((m) => m.name)
}

/** Ties: exact-case match, fewer leading underscores, shorter, then alphabetical. */
function compareNames(a: string, b: string, query: string): number {
  return (
    Number(b === query) - Number(a === query) ||
    leadingUnderscores(a) - leadingUnderscores(b) ||
    a.length - b.length ||
    (a < b ? -1 : a > b ? 1 : 0)
  )
}

/** Levenshtein distance of `a` and `b`, or `limit + 1` as soon as it must exceed `limit`. */
function boundedDistance(a: string, b: string, limit: number, row: Int32Array): number {
  for (let j = 0; j <= a.length; j++) row[j] = j
  for (let i = 1; i <= b.length; i++) {
    let diagonal = row[0] as number
    row[0] = i
    let rowMin = i
    const bc = b.charCodeAt(i - 1)
    for (let j = 1; j <= a.length; j++) {
      const above = row[j] as number
      const cost = a.charCodeAt(j - 1) === bc ? 0 : 1
      const value = Math.min(above + 1, (row[j - 1] as number) + 1, diagonal + cost)
      diagonal = above
      row[j] = value
      if (value < rowMin) rowMin = value
    }
    if (rowMin > limit) return limit + 1
  }
  return row[a.length] as number
}

function leadingUnderscores(name: string): number {
  let n = 0
  while (name[n] === '_') n++
  return n
}
