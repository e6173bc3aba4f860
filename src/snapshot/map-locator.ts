// symbolizeIn for the addresses of one map: what every address of the map shares (its module or
// region, identity, prefix) worked out once, so that a diff's record costs one number-to-hex string.
import type { ElfFile } from '../elf/index.js'
import type { MapState, SnapshotData } from './model.js'
import { THREAD_STACK, hex, identities, mapAt, type SnapshotModule } from './regions.js'

/** The name symbolizeIn gives the address `offset` bytes into the map (`address`: the same, as a bigint). */
export type MapLocator = (offset: number, address: bigint) => string | undefined

/**
 * A locator for `map`, one of `data`'s maps: symbolizeIn's answer for each of its addresses (offsets
 * below its size), holding neither `data` nor the map. Undefined when that answer is not the same
 * kind of name across the map (modules overlap it, or it ends past 2^53): use symbolizeIn.
 */
export function mapLocator(
  data: SnapshotData,
  modules: readonly SnapshotModule[],
  map: MapState,
): MapLocator | undefined {
  // Below 2^53 every offset is an exact number; a map of data's own has no other map over it.
  if (map.end > BigInt(Number.MAX_SAFE_INTEGER) || mapAt(data.maps, map.start) !== map) return undefined
  const size = Number(map.end - map.start)
  const over = modules.filter((m) => m.start < map.end && m.end > map.start)
  const mod = over[0]
  if (over.length > 1 || (mod && (mod.start > map.start || mod.end < map.end))) return undefined
  if (mod) {
    // moduleAt finds this module for every address of the map
    const base = Number(map.start - mod.start)
    const prefix = `${mod.name}+0x`
    const { elf, bias, name } = mod
    return (offset, address) => (elf && symbolIn(elf, name, address - bias)) || prefix + (base + offset).toString(16)
  }
  // .bss past the file's last page is anonymous memory right after the module: its symbols still apply
  const owner = map.path === '' ? modules.find((m) => m.end === map.start) : undefined
  const id = identities(data).get(map) ?? 'anon'
  const stack = map.path === '[stack]' || id.startsWith(THREAD_STACK)
  const prefix = stack ? `${id}-0x` : map.path.startsWith('[') ? `${map.path}+0x` : `${id}+0x`
  const ownerElf = owner?.elf
  const bias = owner?.bias ?? 0n
  const name = owner?.name ?? ''
  return (offset, address) => {
    const hit = ownerElf && symbolIn(ownerElf, name, address - bias)
    return hit || prefix + (stack ? size - offset : offset).toString(16)
  }
}

/** 'module!symbol+0xoff' for a link-time address, as symbolizeIn writes it. */
function symbolIn(elf: ElfFile, name: string, vaddr: bigint): string | undefined {
  const hit = elf.symbolize(vaddr)
  return hit && `${name}!${hit.symbol.name}${hit.offset ? `+${hex(hit.offset)}` : ''}`
}
