/**
 * A sorted snapshot of the records a peer reconciles, with prefix sums of
 * the item keys so that the summary of any node costs two binary searches.
 */
import { createHash } from 'node:crypto'
import { nodeRange, type NodeSummary, type SyncNode } from '../../protocol/sync.js'

const itemKeys = new WeakMap<Uint8Array, bigint>()

/** Returns the item key of an envelope: the first 8 bytes of its sha256, big-endian. */
export function itemKeyOf (envelope: Uint8Array): bigint {
  let key = itemKeys.get(envelope)
  if (key == null) {
    key = createHash('sha256').update(envelope).digest().readBigUInt64BE(0)
    itemKeys.set(envelope, key)
  }

  return key
}

/** An immutable, sorted set of envelopes with their item keys. */
export class SyncIndex {
  /** Item keys in ascending order. */
  readonly keys: BigUint64Array
  /** Envelopes in the order of `keys`. */
  readonly envelopes: readonly Uint8Array[]
  /** cumulative[i] is the sum of keys[0 .. i - 1] modulo 2^64. */
  private readonly cumulative: BigUint64Array

  constructor (envelopes: Iterable<Uint8Array>) {
    const items = [...envelopes].map(envelope => ({ key: itemKeyOf(envelope), envelope }))
    items.sort((a, b) => a.key < b.key ? -1 : (a.key > b.key ? 1 : Buffer.compare(a.envelope, b.envelope)))

    this.keys = new BigUint64Array(items.length)
    this.cumulative = new BigUint64Array(items.length + 1)
    this.envelopes = items.map(item => item.envelope)
    items.forEach((item, index) => {
      this.keys[index] = item.key
      // BigUint64Array stores values modulo 2^64, which is the sum the protocol defines.
      this.cumulative[index + 1] = BigInt.asUintN(64, (this.cumulative[index] as bigint) + item.key)
    })
  }

  get size (): number {
    return this.keys.length
  }

  /** Returns the index range [start, end) of the items under a node. */
  indexRange (node: SyncNode): { start: number, end: number } {
    const { start, end } = nodeRange(node)
    return { start: this.lowerBound(start), end: this.lowerBound(end) }
  }

  /** Returns the item count and key sum of a node. */
  summary (node: SyncNode): NodeSummary {
    const { start, end } = this.indexRange(node)
    return { count: end - start, sum: BigInt.asUintN(64, (this.cumulative[end] as bigint) - (this.cumulative[start] as bigint)) }
  }

  /** Returns the item keys under a node, ascending. */
  keysIn (node: SyncNode): bigint[] {
    const { start, end } = this.indexRange(node)
    return [...this.keys.subarray(start, end)]
  }

  /** Returns the envelopes under a node. */
  envelopesIn (node: SyncNode): Uint8Array[] {
    const { start, end } = this.indexRange(node)
    return this.envelopes.slice(start, end)
  }

  /** Returns the envelopes whose item key is `key`: usually none or one. */
  findByKey (key: bigint): Uint8Array[] {
    const found: Uint8Array[] = []
    for (let index = this.lowerBound(key); index < this.keys.length && this.keys[index] === key; index++) {
      found.push(this.envelopes[index] as Uint8Array)
    }

    return found
  }

  /** Returns the index of the first key that is not less than `key`. */
  private lowerBound (key: bigint): number {
    let low = 0
    let high = this.keys.length
    while (low < high) {
      const middle = (low + high) >>> 1
      if ((this.keys[middle] as bigint) < key) {
        low = middle + 1
      } else {
        high = middle
      }
    }

    return low
  }
}
