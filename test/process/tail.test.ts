// TailBuffer against the obvious oracle (keep everything, then take the end): chunks of every size,
// wrapping around the ring, growing it, limit 0, and bytes that are not UTF-8 at all.
import { describe, expect, it } from 'vitest'
import { TailBuffer } from '../../src/process/tail.js'

/** What TailBuffer should keep of `all` (everything pushed): the last `limit` bytes, minus a cut character's rest. */
function oracle(all: Buffer, limit: number): Buffer {
  let start = Math.max(0, all.length - limit)
  for (let i = 0; i < 3 && start > 0 && start < all.length && ((all[start] ?? 0) & 0xc0) === 0x80; i++) start++
  return all.subarray(start)
}

/** A deterministic stream of pseudo-random numbers below `n` (a linear congruential generator). */
function random(seed: number): (n: number) => number {
  let state = seed
  return (n) => {
    state = (state * 1103515245 + 12345) % 2 ** 31
    return state % n
  }
}

describe('TailBuffer', () => {
  it.each([0, 1, 7, 100, 4096, 5000])('keeps what the oracle keeps, with limit %i', (limit) => {
    const next = random(limit + 1)
    const tail = new TailBuffer(limit)
    const pushed: Buffer[] = []
    for (let i = 0; i < 400; i++) {
      const size = [0, 1, 3, next(200), next(limit + 2), next(3 * limit + 1)][next(6)] ?? 0
      const chunk = Buffer.from(Array.from({ length: size }, () => next(256)))
      tail.push(chunk)
      pushed.push(chunk)
      const all = Buffer.concat(pushed)
      const kept = oracle(all, limit)
      expect(tail.bytes().equals(kept)).toBe(true)
      expect(tail.dropped).toBe(all.length - kept.length)
      expect(tail.bytes().length).toBeLessThanOrEqual(limit)
    }
  })

  it('drops the rest of a character the limit cuts, and only after a drop', () => {
    const tail = new TailBuffer(5)
    tail.push(Buffer.from([0x80, 0x81])) // continuation bytes at the very start: kept, nothing was dropped
    expect(tail.bytes()).toEqual(Buffer.from([0x80, 0x81]))
    tail.push(Buffer.from('😀x')) // 4 + 1 bytes: the two before are dropped
    expect(tail.bytes().toString()).toBe('😀x')
    tail.push(Buffer.from('y')) // cuts the emoji: its 3 other bytes go too
    expect(tail.bytes().toString()).toBe('xy')
    expect(tail.dropped).toBe(6)
  })
})
