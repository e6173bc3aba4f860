// Breakpoint sites sorted by address, so that a read or write finds the sites it overlaps by binary
// search (O(log n + hits)) instead of looking at every site: the unwinder's many small reads each
// paid for all breakpoints.

/** What the index needs of a site: where it is and how many bytes it patches. */
export interface Placed {
  readonly address: bigint
  readonly original: Uint8Array
}

export class SiteIndex<S extends Placed> {
  /** Sorted by address; addresses are distinct (one site per address). */
  private readonly sorted: S[] = []
  /** The longest patch of any site: a site starting that far below a range may still reach into it. */
  private reach = 0n

  get size(): number {
    return this.sorted.length
  }

  add(site: S): void {
    const i = this.firstFrom(site.address)
    if (this.sorted[i]?.address === site.address) this.sorted[i] = site
    else this.sorted.splice(i, 0, site)
    const length = BigInt(site.original.length)
    if (length > this.reach) this.reach = length
  }

  remove(site: S): void {
    const i = this.firstFrom(site.address)
    if (this.sorted[i] === site) this.sorted.splice(i, 1)
  }

  clear(): void {
    this.sorted.length = 0
    this.reach = 0n
  }

  /** Calls `visit` with each site whose patched bytes [address, address + length) meet [from, to), in address order. */
  forOverlapping(from: bigint, to: bigint, visit: (site: S) => void): void {
    if (this.sorted.length === 0 || to <= from) return
    for (let i = this.firstFrom(from - this.reach + 1n); i < this.sorted.length; i++) {
      const site = this.sorted[i]
      if (!site || site.address >= to) return
      if (site.address >= from || site.address + BigInt(site.original.length) > from) visit(site)
    }
  }

  /** Index of the first site at or above `address`. */
  private firstFrom(address: bigint): number {
    let lo = 0
    let hi = this.sorted.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if ((this.sorted[mid]?.address ?? 0n) < address) lo = mid + 1
      else hi = mid
    }
    return lo
  }
}
