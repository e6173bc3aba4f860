// parseImage: ELF images read from memory (the vDSO) parsed once, reused only for the same bytes.
import { openSync, readFileSync, readSync, closeSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { parseElf, parseImage } from '../../src/elf/index.js'

/** This process's own vDSO, read through /proc/self/mem. */
function ownVdso(): Uint8Array {
  const line = readFileSync('/proc/self/maps', 'latin1')
    .split('\n')
    .find((l) => l.endsWith('[vdso]'))
  if (!line) throw new Error('no [vdso] in /proc/self/maps')
  const [start = 0n, end = 0n] = (line.split(' ')[0] ?? '').split('-').map((h) => BigInt(`0x${h}`))
  const bytes = new Uint8Array(Number(end - start))
  const fd = openSync('/proc/self/mem', 'r')
  try {
    readSync(fd, bytes, 0, bytes.length, start)
  } finally {
    closeSync(fd)
  }
  return bytes
}

describe('parseImage', () => {
  it('parses the vDSO as parseElf does, once for the same bytes, again for other bytes', () => {
    const image = ownVdso()
    const first = parseImage(image, '[vdso]')
    expect(first.findSymbol('__vdso_clock_gettime')?.value).toBe(
      parseElf(image, '[vdso]').findSymbol('__vdso_clock_gettime')?.value,
    )
    expect(parseImage(Uint8Array.from(image), '[vdso]')).toBe(first)
    const patched = Uint8Array.from(image)
    const at = Number((first.findSymbol('__vdso_time')?.value ?? 0n) - first.minLoadVaddr)
    patched[at] = 0xc3 // ret: other bytes, another parse
    expect(parseImage(patched, '[vdso]')).not.toBe(first)
    expect(parseImage(image, '[vdso]')).toBe(first)
  })

  it("keeps its own copy: a change to the caller's buffer afterwards does not reach the cache", () => {
    const image = ownVdso()
    const first = parseImage(image, '[vdso]')
    image.fill(0)
    expect(parseImage(ownVdso(), '[vdso]')).toBe(first)
  })
})
