// Loaded modules (the executable and its shared libraries) seen through the memory maps, and the
// location syntax that names addresses in them: 'sym', 'module!sym+0x4', 'module+0x1139', bigint.
import { basename } from 'node:path'
import { LocationError, SymbolNotFoundError } from '../errors.js'
import { findNearNames } from '../elf/near.js'
import { readElf, type ElfFile } from '../elf/index.js'
import { hex, type MemoryMap } from './maps.js'

export interface Module {
  /** Base name of the file: 'counter', 'libc.so.6', 'ld-linux-x86-64.so.2'. */
  readonly name: string
  readonly path: string
  /** Start of the module's lowest mapping. */
  readonly base: bigint
  readonly end: bigint
  /** What to add to a link-time address of the file to get the run-time address. */
  readonly bias: bigint
  readonly elf: ElfFile
}

/** Groups file-backed mappings by path into modules, in load order (ascending base). */
export function modulesFromMaps(
  maps: readonly MemoryMap[],
  elfFor: (path: string, inode: number) => ElfFile | undefined = readElfOrSkip,
): Module[] {
  const byPath = new Map<string, MemoryMap[]>()
  for (const m of maps) {
    if (!m.path.startsWith('/') || m.inode === 0) continue
    const list = byPath.get(m.path)
    if (list) list.push(m)
    else byPath.set(m.path, [m])
  }
  const modules: Module[] = []
  for (const [path, list] of byPath) {
    const first = list[0]
    const elf = first && elfFor(path, first.inode)
    if (!first || !elf) continue // not an ELF file (a mapped data file, a font): not a module
    const end = list.reduce((a, b) => (a.end >= b.end ? a : b)).end
    // The mapping at file offset 0 holds the first PT_LOAD, whose link-time address is minLoadVaddr.
    const atZero = list.find((m) => m.offset === 0n) ?? first
    modules.push({ name: basename(path), path, base: first.start, end, bias: atZero.start - elf.minLoadVaddr, elf })
  }
  return modules.sort((a, b) => (a.base < b.base ? -1 : a.base > b.base ? 1 : 0))
}

function readElfOrSkip(path: string): ElfFile | undefined {
  try {
    return readElf(path.replace(/ \(deleted\)$/, ''))
  } catch {
    return undefined
  }
}

/** Finds a module by name: exact base name, then a prefix such as 'libc' for 'libc.so.6'. */
export function findModule(modules: readonly Module[], name: string): Module | undefined {
  return (
    modules.find((m) => m.name === name || m.path === name) ??
    modules.find((m) => m.name.startsWith(`${name}.so`) || m.name.startsWith(`${name}-`))
  )
}

/** A location as users write it. A bigint is an absolute address; JS numbers are refused (precision). */
export type Location = string | bigint

export type ParsedLocation =
  | { kind: 'address'; address: bigint }
  | { kind: 'symbol'; module: string | undefined; symbol: string; offset: bigint }
  | { kind: 'offset'; module: string; offset: bigint }

const OFFSET = /^(.*?)\s*\+\s*(0x[0-9a-fA-F]+|\d+)$/

/** Parses 'sym', 'sym+0x4', 'module!sym', 'module!sym+4', 'module+0x1139', or a bigint. */
export function parseLocation(location: Location): ParsedLocation {
  if (typeof location === 'bigint') return { kind: 'address', address: location }
  if (typeof location !== 'string' || location.trim() === '') {
    throw new LocationError(
      `A location is a symbol name ('bump', 'libc.so.6!write'), 'module+0x1139', or a bigint ` +
        `address; got ` +
        (typeof location === 'number'
          ? `the number ${String(location)} (write ${String(location)}n: addresses are bigint).`
          : `${JSON.stringify(location)}.`),
    )
  }
  const text = location.trim()
  const bang = text.indexOf('!')
  const head = bang >= 0 ? text.slice(bang + 1) : text
  const module = bang >= 0 ? text.slice(0, bang) : undefined
  const withOffset = OFFSET.exec(head)
  const name = withOffset ? (withOffset[1] ?? '') : head
  const offset = withOffset ? BigInt(withOffset[2] ?? '0') : 0n
  if (/^0x[0-9a-f]+$/i.test(name) && module === undefined && !withOffset)
    return { kind: 'address', address: BigInt(name) }
  // 'counter+0x1139' (module+offset) and 'bump+4' (symbol+offset) look alike: resolveLocation decides.
  if (module === undefined && withOffset) return { kind: 'offset', module: name, offset }
  if (name === '')
    throw new LocationError(`Location '${text}' names no symbol. Write 'module!symbol' or 'module+0xoffset'.`)
  return { kind: 'symbol', module, symbol: name, offset }
}

export interface ResolvedLocation {
  address: bigint
  module: Module | undefined
  /** The symbolized form: 'counter!bump', 'libc.so.6!write+0x10'. */
  description: string
}

/** Thrown by resolveLocation when the module named is not loaded (yet): the caller may keep it pending. */
export class ModuleNotLoaded extends LocationError {
  readonly module: string

  constructor(module: string, loaded: readonly Module[]) {
    super(`Module '${module}' is not loaded. Loaded: ${loaded.map((m) => m.name).join(', ') || 'none'}.`)
    this.module = module
  }
}

/** 'libc' for 'libc.so.6', 'ld-linux-x86-64' for 'ld-linux-x86-64.so.2': the part a location may name. */
function stem(name: string): string {
  const at = name.indexOf('.so')
  return at > 0 ? name.slice(0, at) : name
}

/**
 * Why the breakpoint at `location` ('module!symbol') is pending, for the messages that report it:
 * which libraries are loaded, whether the program needs (DT_NEEDED) one that the module names (then
 * ld.so loads it; otherwise only a dlopen can), and near names for a typo. A hint, never an error:
 * dlopen can load anything. `seen`: libraries loaded earlier in the run, unloaded since.
 */
export function whyNotLoaded(
  name: string,
  location: string,
  modules: readonly Module[],
  exe: Module | undefined,
  seen: readonly string[] = [],
): string {
  const loaded = [...new Set([...modules.map((m) => m.name), ...seen])]
  const needed = [...new Set(modules.flatMap((m) => m.elf.needed))]
  const neededMatch = needed.find((n) => n === name || n.startsWith(`${name}.so`) || n.startsWith(`${name}-`))
  const candidates = [...new Set([...loaded, ...needed])]
  const stems = candidates.map(stem)
  const near = findNearNames({ names: stems, lower: stems.map((n) => n.toLowerCase()) }, stem(name), 3).filter(
    (n) => n !== name,
  )
  const rest = location.slice(location.indexOf('!') + 1) // 'write', 'write+0x10'
  const symbol = OFFSET.exec(rest)?.[1] ?? rest
  const definers = modules.filter((m) => m.elf.findSymbol(symbol) !== undefined)
  const suggestions = [
    ...new Set([
      ...near.map((n) => `${n}!${rest}`),
      ...definers.map((m) => (m === exe ? rest : `${stem(m.name)}!${rest}`)),
    ]),
  ].slice(0, 3)
  const hint = suggestions.length > 0 ? ` Did you mean ${suggestions.map((n) => `'${n}'`).join(', ')}?` : ''
  if (exe && exe.elf.interpreter === undefined && exe.elf.needed.length === 0)
    return `the program is statically linked: it loads no library, so no '${name}' will come.${hint}`
  const source = neededMatch
    ? `the program needs ${neededMatch} (DT_NEEDED), which is not loaded yet`
    : `no library named '${name}' is loaded, and the program needs none by that name: only a dlopen() of one would arm it`
  return `${source} (loaded${seen.length > 0 ? ' in this run' : ''}: ${loaded.join(', ') || 'none'}).${hint}`
}

/** Resolves a location against the loaded modules; the executable is searched first, then libraries in load order. */
export function resolveLocation(
  location: Location,
  modules: readonly Module[],
  exe: Module | undefined,
): ResolvedLocation {
  const parsed = parseLocation(location)
  if (parsed.kind === 'address') {
    return {
      address: parsed.address,
      module: moduleAt(modules, parsed.address),
      description: symbolizeAddress(modules, parsed.address),
    }
  }
  if (parsed.kind === 'offset') {
    const mod = findModule(modules, parsed.module)
    if (mod) {
      const address = mod.base + parsed.offset
      return { address, module: mod, description: symbolizeAddress(modules, address) }
    }
    // Not a module: maybe 'symbol+offset'.
    return resolveSymbol(parsed.module, undefined, parsed.offset, modules, exe)
  }
  return resolveSymbol(parsed.symbol, parsed.module, parsed.offset, modules, exe)
}

function resolveSymbol(
  symbol: string,
  moduleName: string | undefined,
  offset: bigint,
  modules: readonly Module[],
  exe: Module | undefined,
): ResolvedLocation {
  let search: Module[]
  if (moduleName !== undefined) {
    const mod = findModule(modules, moduleName)
    if (!mod) throw new ModuleNotLoaded(moduleName, modules)
    search = [mod]
  } else {
    search = exe ? [exe, ...modules.filter((m) => m !== exe)] : [...modules]
  }
  for (const mod of search) {
    const found = resolveInModule(mod, symbol, offset)
    if (found) return found
  }
  const suggestions = [
    ...new Set(search.flatMap((m) => m.elf.nearNames(symbol, 3).map((n) => (m === exe ? n : `${m.name}!${n}`)))),
  ].slice(0, 5)
  const where =
    moduleName !== undefined
      ? `module '${search[0]?.name ?? moduleName}'`
      : `the executable or its ${search.length - 1} loaded libraries`
  const stripped = search.some((m) => !m.elf.sections.some((s) => s.name === '.symtab'))
  const hint =
    stripped && moduleName === undefined && exe && !exe.elf.sections.some((s) => s.name === '.symtab')
      ? ' (the executable is stripped: only its dynamic symbols are known)'
      : ''
  throw new SymbolNotFoundError(symbol, suggestions, where + hint)
}

/** `symbol`+`offset` in one module, or undefined when the module lacks the symbol. */
export function resolveInModule(mod: Module, symbol: string, offset: bigint): ResolvedLocation | undefined {
  const sym = mod.elf.findSymbol(symbol)
  if (!sym) return undefined
  const address = mod.bias + sym.value + offset
  return { address, module: mod, description: `${mod.name}!${sym.name}${offset ? `+${hex(offset)}` : ''}` }
}

export function moduleAt(modules: readonly Module[], address: bigint): Module | undefined {
  return modules.find((m) => address >= m.base && address < m.end)
}

/** 'module!symbol+0xoff' when a symbol contains the address, else 'module+0xoff', else the hex address. */
export function symbolizeAddress(modules: readonly Module[], address: bigint): string {
  const mod = moduleAt(modules, address)
  if (!mod) return hex(address)
  const hit = mod.elf.symbolize(address - mod.bias)
  if (hit) return `${mod.name}!${hit.symbol.name}${hit.offset ? `+${hex(hit.offset)}` : ''}`
  return `${mod.name}+${hex(address - mod.base)}`
}
