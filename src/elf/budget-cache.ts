// A least-recently-used map bounded by the summed cost of its entries (estimated bytes), not by their count.

/** What a BudgetCache did since it was made: for tests and benchmarks, which assert on these rather than on time. */
export interface BudgetCacheStats {
  /** Entries held now. */
  entries: number
  /** Summed cost of the entries held now (at most `maxCost`, unless one entry alone costs more). */
  cost: number
  maxCost: number
  hits: number
  misses: number
  /** Entries dropped to stay within `maxCost`. */
  evictions: number
}

interface Entry<V> {
  key: string
  value: V
  cost: number
}

export class BudgetCache<V> {
  private readonly map = new Map<string, Entry<V>>()
  private total = 0
  private counts = { hits: 0, misses: 0, evictions: 0 }
  maxCost: number

  constructor(maxCost: number) {
    this.maxCost = maxCost
  }

  /** The value stored under `name` when its version `key` is still the same (a hit makes it the newest); else undefined. */
  get(name: string, key: string): V | undefined {
    const hit = this.map.get(name)
    if (hit?.key !== key) {
      this.counts.misses++
      return undefined
    }
    this.counts.hits++
    this.map.delete(name)
    this.map.set(name, hit)
    return hit.value
  }

  /** Stores `value` as the newest entry, then drops the oldest until the total fits (the newest always stays). */
  set(name: string, key: string, value: V, cost: number): void {
    this.delete(name)
    this.map.set(name, { key, value, cost })
    this.total += cost
    this.trim()
  }

  /** Drops the oldest entries until the total cost fits `maxCost`; the newest entry always stays. */
  trim(): void {
    for (const [name, entry] of this.map) {
      if (this.total <= this.maxCost || this.map.size <= 1) break
      this.map.delete(name)
      this.total -= entry.cost
      this.counts.evictions++
    }
  }

  clear(): void {
    this.map.clear()
    this.total = 0
  }

  stats(): BudgetCacheStats {
    return { entries: this.map.size, cost: this.total, maxCost: this.maxCost, ...this.counts }
  }

  private delete(name: string): void {
    const old = this.map.get(name)
    if (!old) return
    this.map.delete(name)
    this.total -= old.cost
  }
}
