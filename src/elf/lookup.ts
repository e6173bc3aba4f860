// Symbol lookups over a parsed file: by name (version-aware) and by address (binary search), both indexed lazily.
import type { ElfSymbol, SymbolHit } from './types.js'

/** Name and address lookups over one file's symbols. */
export interface SymbolIndex {
  findSymbol(name: string): ElfSymbol | undefined
  symbolize(vaddr: bigint): SymbolHit | undefined
}

interface AddressIndex {
  symbols: ElfSymbol[]
  /** maxEnd[i] = max(value + size) over symbols[0..i]: how far back a containing symbol can start. */
  maxEnd: bigint[]
}

const SHN_ABS = 0xfff1

/** How far the address search walks back over symbols that might contain the address. */
const MAX_WALK = 512

/** Builds lookups over value-sorted `symbols`; `hidden` marks non-default symbol versions. */
export function createSymbolIndex(symbols: readonly ElfSymbol[], hidden: ReadonlySet<ElfSymbol>): SymbolIndex {
  let byName: Map<string, ElfSymbol[]> | undefined
  let byAddress: AddressIndex | undefined
  // The last answer and the addresses it holds for: consecutive lookups (a golden's lines) mostly hit it.
  let last: Containing | undefined
  return {
    findSymbol(query: string): ElfSymbol | undefined {
      byName ??= indexByName(symbols)
      const [name, version] = splitQuery(query)
      let best: ElfSymbol | undefined
      for (const candidate of byName.get(name) ?? []) {
        if (best === undefined || compareForName(candidate, best, version, hidden) < 0) best = candidate
      }
      return best
    },
    symbolize(vaddr: bigint): SymbolHit | undefined {
      byAddress ??= indexByAddress(symbols)
      if (last === undefined || vaddr < last.from || vaddr >= last.to) last = findContaining(byAddress, vaddr)
      const symbol = last.symbol
      return symbol === undefined ? undefined : { symbol, offset: vaddr - symbol.value }
    },
  }
}

function indexByName(symbols: readonly ElfSymbol[]): Map<string, ElfSymbol[]> {
  const map = new Map<string, ElfSymbol[]>()
  for (const symbol of symbols) {
    const list = map.get(symbol.name)
    if (list === undefined) map.set(symbol.name, [symbol])
    else list.push(symbol)
  }
  return map
}

/** 'name@@VERSION' -> ['name', 'VERSION']; a plain name has no version. */
function splitQuery(query: string): [string, string | undefined] {
  const at = query.indexOf('@')
  if (at <= 0) return [query, undefined]
  const version = query.slice(at).replace(/^@@?/, '')
  return [query.slice(0, at), version === '' ? undefined : version]
}

const BIND_RANK = { global: 0, other: 0, weak: 1, local: 2 } as const

/** Negative when `a` is the better answer for a name query. */
function compareForName(
  a: ElfSymbol,
  b: ElfSymbol,
  version: string | undefined,
  hidden: ReadonlySet<ElfSymbol>,
): number {
  if (version !== undefined) {
    const d = Number(b.version === version) - Number(a.version === version)
    if (d !== 0) return d
  }
  return (
    Number(hidden.has(a)) - Number(hidden.has(b)) ||
    BIND_RANK[a.bind] - BIND_RANK[b.bind] ||
    Number(!isCode(a)) - Number(!isCode(b)) ||
    Number(a.size === 0n) - Number(b.size === 0n) ||
    Number(a.source !== 'symtab') - Number(b.source !== 'symtab')
  )
}

function isCode(s: ElfSymbol): boolean {
  return s.type === 'func' || s.type === 'ifunc' || s.type === 'object'
}

function indexByAddress(all: readonly ElfSymbol[]): AddressIndex {
  // TLS symbol values are offsets into the TLS block and SHN_ABS values are plain numbers, not addresses.
  const symbols = all.filter((s) => s.type !== 'tls' && s.sectionIndex !== SHN_ABS)
  const maxEnd: bigint[] = []
  let max = 0n
  for (const s of symbols) {
    const end = s.value + s.size
    if (end > max) max = end
    maxEnd.push(max)
  }
  return { symbols, maxEnd }
}

/** The symbol containing an address, and the addresses [from, to) around it for which the search gives the same answer. */
interface Containing {
  readonly symbol: ElfSymbol | undefined
  readonly from: bigint
  readonly to: bigint
}

/**
 * The best symbol containing `vaddr`: func/object first, then the innermost (highest start), then by
 * name quality. The answer holds from the nearest symbol boundary the search looked at below `vaddr`
 * to the nearest above it (every test it made changes only there), so a caller may reuse it there.
 */
function findContaining(index: AddressIndex, vaddr: bigint): Containing {
  const { symbols, maxEnd } = index
  let lo = 0
  let hi = symbols.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if ((symbols[mid] as ElfSymbol).value <= vaddr) lo = mid + 1
    else hi = mid
  }
  const below = symbols[lo - 1]?.value
  // At a symbol's very start, zero-sized symbols there count: the answer is for this address alone.
  let from = below === undefined ? 0n : below === vaddr ? vaddr : below + 1n
  let to = below === vaddr ? vaddr + 1n : (symbols[lo]?.value ?? MAX_ADDRESS)
  const bound = (at: bigint): void => {
    if (at <= vaddr) from = at > from ? at : from
    else to = at < to ? at : to
  }
  let best: ElfSymbol | undefined
  for (let i = lo - 1, walked = 0; i >= 0 && walked < MAX_WALK; i--, walked++) {
    const s = symbols[i] as ElfSymbol
    const reach = maxEnd[i] ?? 0n
    bound(reach)
    if (s.value < vaddr && reach <= vaddr) break
    if (best !== undefined && isCode(best) && s.value < best.value) break
    if (s.size !== 0n) bound(s.value + s.size)
    const contains = s.size === 0n ? s.value === vaddr : vaddr - s.value < s.size
    if (contains && (best === undefined || compareForAddress(s, best) < 0)) best = s
  }
  return { symbol: best, from, to }
}

const MAX_ADDRESS = 1n << 64n

/** Negative when `a` is the better name for an address both contain. */
function compareForAddress(a: ElfSymbol, b: ElfSymbol): number {
  return (
    Number(!isCode(a)) - Number(!isCode(b)) ||
    (a.value === b.value ? 0 : a.value > b.value ? -1 : 1) ||
    Number(a.size === 0n) - Number(b.size === 0n) ||
    Number(a.bind === 'local') - Number(b.bind === 'local') ||
    leadingUnderscores(a.name) - leadingUnderscores(b.name) ||
    a.name.length - b.name.length ||
    (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
  )
}

function leadingUnderscores(name: string): number {
  let n = 0
  while (name[n] === '_') n++
  return n
}
