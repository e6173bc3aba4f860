// Program headers: parsing, PT_INTERP, the link-time base, and vaddr <-> file offset mapping through PT_LOAD.
import type { ElfFileHeader } from './header.js'
import type { ElfReader } from './reader.js'
import type { ElfSegment } from './types.js'

export const PT_LOAD = 1
export const PT_DYNAMIC = 2
export const PT_INTERP = 3
export const PT_NOTE = 4

/** Reads the program header table; each segment's file bytes must lie inside the file. */
export function parseSegments(r: ElfReader, h: ElfFileHeader): ElfSegment[] {
  if (h.phnum === 0) return []
  const minSize = r.is64 ? 56 : 32
  if (h.phentsize < minSize) throw r.corrupt(`e_phentsize is ${h.phentsize}, expected at least ${minSize}`)
  const table = r.table(h.phoff, h.phnum, h.phentsize, 'program header table')
  const segments: ElfSegment[] = []
  for (let i = 0; i < h.phnum; i++) {
    const at = table.start + i * h.phentsize
    const segment: ElfSegment = r.is64
      ? {
          type: r.u32(at),
          flags: r.u32(at + 4),
          offset: r.u64(at + 8),
          vaddr: r.u64(at + 16),
          filesz: r.u64(at + 32),
          memsz: r.u64(at + 40),
          align: r.u64(at + 48),
        }
      : {
          type: r.u32(at),
          offset: BigInt(r.u32(at + 4)),
          vaddr: BigInt(r.u32(at + 8)),
          filesz: BigInt(r.u32(at + 16)),
          memsz: BigInt(r.u32(at + 20)),
          flags: r.u32(at + 24),
          align: BigInt(r.u32(at + 28)),
        }
    if (segment.filesz > 0n) r.span(segment.offset, segment.filesz, `segment ${i} (type ${segment.type})`)
    segments.push(segment)
  }
  return segments
}

/** The PT_INTERP path (e.g. /lib64/ld-linux-x86-64.so.2), if any. */
export function readInterpreter(r: ElfReader, segments: readonly ElfSegment[]): string | undefined {
  const interp = segments.find((s) => s.type === PT_INTERP)
  if (interp === undefined) return undefined
  const span = r.span(interp.offset, interp.filesz, 'PT_INTERP segment')
  if (span.end === span.start) throw r.corrupt('the PT_INTERP segment is empty')
  return r.string(span, 0, 'PT_INTERP')
}

/** The lowest PT_LOAD vaddr rounded down to its alignment, or 0 without PT_LOAD. */
export function findMinLoadVaddr(segments: readonly ElfSegment[]): bigint {
  let min: bigint | undefined
  for (const s of segments) {
    if (s.type !== PT_LOAD) continue
    const base = s.align > 1n && (s.align & (s.align - 1n)) === 0n ? s.vaddr & ~(s.align - 1n) : s.vaddr
    if (min === undefined || base < min) min = base
  }
  return min ?? 0n
}

/** File offset of a link-time vaddr backed by file bytes of a PT_LOAD segment. */
export function mapVaddrToFileOffset(segments: readonly ElfSegment[], vaddr: bigint): bigint | undefined {
  for (const s of segments) {
    if (s.type === PT_LOAD && vaddr >= s.vaddr && vaddr - s.vaddr < s.filesz) return s.offset + (vaddr - s.vaddr)
  }
  return undefined
}

/** Link-time vaddr of a file offset inside a PT_LOAD segment's file bytes. */
export function mapFileOffsetToVaddr(segments: readonly ElfSegment[], offset: bigint): bigint | undefined {
  for (const s of segments) {
    if (s.type === PT_LOAD && offset >= s.offset && offset - s.offset < s.filesz) return s.vaddr + (offset - s.offset)
  }
  return undefined
}
