// The newest bytes of a captured stream: one ring that grows to at most `limit` bytes however much
// and in however many pieces the program writes, counting what fell off the front. After a drop the
// kept bytes start on a UTF-8 character, so their text never begins with a broken one.
export class TailBuffer {
  private ring = Buffer.alloc(0)
  /** Offset in the ring of the oldest byte kept. */
  private start = 0
  /** Bytes kept. */
  private size = 0
  /** Bytes dropped from the front, the continuation bytes of a character cut by a drop included. */
  dropped = 0

  constructor(readonly limit: number) {}

  push(chunk: Uint8Array): void {
    if (chunk.length >= this.limit) {
      this.dropped += this.size + chunk.length - this.limit
      this.start = 0
      this.size = 0
      chunk = chunk.subarray(chunk.length - this.limit)
    } else if (this.size + chunk.length > this.limit) this.drop(this.size + chunk.length - this.limit)
    this.reserve(this.size + chunk.length)
    this.append(chunk)
    if (this.dropped > 0) this.alignStart()
  }

  /** The bytes kept, oldest first (a view of the ring when they do not wrap around). */
  bytes(): Buffer {
    const end = this.start + this.size
    if (end <= this.ring.length) return this.ring.subarray(this.start, end)
    return Buffer.concat([this.ring.subarray(this.start), this.ring.subarray(0, end - this.ring.length)])
  }

  private drop(n: number): void {
    this.start = (this.start + n) % this.ring.length
    this.size -= n
    this.dropped += n
  }

  /** Drops the rest of a UTF-8 character cut by a drop: at most 3 continuation bytes (10xxxxxx). */
  private alignStart(): void {
    for (let i = 0; i < 3 && this.size > 0 && ((this.ring[this.start] ?? 0) & 0xc0) === 0x80; i++) this.drop(1)
  }

  /** Grows the ring to hold `needed` bytes: doubling, up to the limit, the kept bytes moved to its start. */
  private reserve(needed: number): void {
    if (needed <= this.ring.length) return
    const grown = Buffer.allocUnsafe(Math.min(this.limit, Math.max(needed, this.ring.length * 2, 4096)))
    this.bytes().copy(grown)
    this.ring = grown
    this.start = 0
  }

  /** Copies `chunk` after the kept bytes, wrapping around the end of the ring; it fits. */
  private append(chunk: Uint8Array): void {
    const end = (this.start + this.size) % Math.max(this.ring.length, 1)
    const first = Math.min(chunk.length, this.ring.length - end)
    this.ring.set(chunk.subarray(0, first), end)
    this.ring.set(chunk.subarray(first), 0)
    this.size += chunk.length
  }
}
