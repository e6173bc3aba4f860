// symbolizeIn for the addresses of one map: what every address of the map shares (its module or
// region, identity, prefix) worked out once, so that a diff's record costs one number-to-hex string.
import type { ElfFile } from '../elf/index.js'
import type { MapState, SnapshotData } from './model.js'
import { THREAD_STACK, hex, identities, mapAt, symbolizeIn, type SnapshotModule } from './regions.js'

/** The name symbolizeIn gives the address `offset` bytes into the map (`address`: the same, as a bigint). */
export type MapLocator = (offset: number, address: bigint) => string | undefined

/** A locator for `map`, one of `data`'s maps: symbolizeIn's answer for each of its addresses. */
export function mapLocator(data: SnapshotData, modules: readonly SnapshotModule[], map: MapState): MapLocator {
  const generic: MapLocator = (_, address) => symbolizeIn(data, modules, address)
  // Below 2^53 every offset is an exact number; a map of data's own has no other map over it.
  if (map.end > BigInt(Number.MAX_SAFE_INTEGER) || mapAt(data.maps, map.start) !== map) return generic
  const size = Number(map.end - map.start)
  const over = modules.filter((m) => m.start < map.end && m.end > map.start)
  const mod = over[0]
  if (over.length > 1 || (mod && (mod.start > map.start || mod.end < map.end))) return generic
  if (mod) {
    // moduleAt finds this module for every address of the map
    const base = Number(map.start - mod.start)
    const prefix = `${mod.name}+0x`
    const { elf, bias, name } = mod
    return (offset, address) => {
      if (offset >= size) return generic(offset, address)
      return (elf && symbolIn(elf, name, address - bias)) ?? prefix + (base + offset).toString(16)
    }
  }
  // .bss past the file's last page is anonymous memory right after the module: its symbols still apply
  const owner = map.path === '' ? modules.find((m) => m.end === map.start) : undefined
  const id = identities(data).get(map) ?? 'anon'
  const stack = map.path === '[stack]' || id.startsWith(THREAD_STACK)
  const prefix = stack ? `${id}-0x` : map.path.startsWith('[') ? `${map.path}+0x` : `${id}+0x`
  return (offset, address) => {
    if (offset >= size) return generic(offset, address)
    const hit = owner?.elf && symbolIn(owner.elf, owner.name, address - owner.bias)
    return hit || prefix + (stack ? size - offset : offset).toString(16)
  }
}

/** 'module!symbol+0xoff' for a link-time address, as symbolizeIn writes it. */
function symbolIn(elf: ElfFile, name: string, vaddr: bigint): string | undefined {
  const hit = elf.symbolize(vaddr)
  return hit && `${name}!${hit.symbol.name}${hit.offset ? `+${hex(hit.offset)}` : ''}`
}
