/**
 * A seeded pseudo-random generator (mulberry32), so that a scenario's seed
 * fixes its topology, identities and choices of nodes. Separate streams are
 * forked by label, so that using randomness in one place (link jitter, whose
 * draws depend on traffic timing) does not shift the draws of another (which
 * nodes a `random` selector picks).
 */
export class SeededRandom {
  private state: number

  constructor (seed: number) {
    this.state = seed >>> 0
  }

  /** Returns a new generator whose sequence depends on this one's seed and `label` only. */
  static fork (seed: number, label: string): SeededRandom {
    let hash = (seed ^ 0x9e3779b9) >>> 0
    for (let i = 0; i < label.length; i++) {
      hash = Math.imul(hash ^ label.charCodeAt(i), 0x01000193) >>> 0
    }
    return new SeededRandom(hash)
  }

  /** Returns a float in [0, 1). */
  next (): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0
    let t = this.state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296
  }

  /** Returns an integer in [0, limit). */
  below (limit: number): number {
    return Math.floor(this.next() * limit)
  }

  /** Returns a float in [min, max]. */
  between (min: number, max: number): number {
    return min + this.next() * (max - min)
  }

  /** Returns a shuffled copy (Fisher-Yates). */
  shuffle<T> (items: readonly T[]): T[] {
    const copy = [...items]
    for (let i = copy.length - 1; i > 0; i--) {
      const j = this.below(i + 1)
      const swap = copy[i] as T
      copy[i] = copy[j] as T
      copy[j] = swap
    }
    return copy
  }

  /** Returns `count` distinct items, in the order they were drawn. */
  pick<T> (items: readonly T[], count: number): T[] {
    return this.shuffle(items).slice(0, count)
  }

  /** Returns 32 bytes, for seeding identity keys. */
  bytes (length: number): Uint8Array {
    const out = new Uint8Array(length)
    for (let i = 0; i < length; i++) {
      out[i] = this.below(256)
    }
    return out
  }
}
