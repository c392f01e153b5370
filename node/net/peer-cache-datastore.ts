/**
 * A datastore that keeps libp2p's peer store in memory and writes it to the
 * datastore beneath in the background. libp2p reads and rewrites a peer's
 * record for every stream it opens and every peer a DHT query returns. With
 * LevelDB beneath, that took about a quarter of all CPU time in a profiled
 * 10-agent rollout. Peer records are hints (addresses, protocols, tags) that
 * identify and the DHT learn again, so a crash that loses the last seconds of
 * them costs little. Every other key (DHT records, the catalog) is written
 * through at once, and batches stay atomic.
 */
import { BaseDatastore, MemoryDatastore } from 'datastore-core'
import { Key } from 'interface-datastore'
import { logger } from '@libp2p/logger'
import type { AbortOptions } from '@libp2p/interface'
import type { Batch, Datastore, KeyQuery, Pair, Query } from 'interface-datastore'

const log = logger('kilomesh:peer-cache')

/** Key prefix of libp2p's peer store. */
export const PEER_STORE_PREFIX = '/peers/'

/** Default delay between a peer record change and its write to the datastore beneath. */
export const DEFAULT_PEER_FLUSH_INTERVAL_MS = 10_000

export interface PeerCacheDatastoreInit {
  /** @default DEFAULT_PEER_FLUSH_INTERVAL_MS */
  flushIntervalMs?: number
}

function isPeerKey (key: Key): boolean {
  return key.toString().startsWith(PEER_STORE_PREFIX)
}

/** True when a query's prefix may match peer records as well as other keys. */
function spansPeersAndOthers (prefix: string | undefined): boolean {
  return prefix == null || (PEER_STORE_PREFIX.startsWith(prefix) && prefix !== PEER_STORE_PREFIX && prefix !== '/peers')
}

function onlyPeers (prefix: string | undefined): boolean {
  return prefix != null && (prefix.startsWith(PEER_STORE_PREFIX) || prefix === '/peers')
}

export class PeerCacheDatastore extends BaseDatastore {
  private readonly cache = new MemoryDatastore()
  /** Peer keys changed since the last flush: the new value, or null when deleted. */
  private dirty = new Map<string, Uint8Array | null>()
  private timer?: NodeJS.Timeout
  private flushing: Promise<void> = Promise.resolve()
  private readonly flushIntervalMs: number

  constructor (private readonly inner: Datastore, init: PeerCacheDatastoreInit = {}) {
    super()
    this.flushIntervalMs = init.flushIntervalMs ?? DEFAULT_PEER_FLUSH_INTERVAL_MS
  }

  /** Loads the stored peer records into memory; call before libp2p starts. */
  async open (options?: AbortOptions): Promise<void> {
    let count = 0
    for await (const { key, value } of this.inner.query({ prefix: PEER_STORE_PREFIX }, options)) {
      await this.cache.put(key, value)
      count++
    }
    log('loaded %d peer records', count)
  }

  /** Writes pending peer records and stops the background writes. */
  async close (options?: AbortOptions): Promise<void> {
    clearTimeout(this.timer)
    this.timer = undefined
    await this.flush(options)
  }

  /** Writes the peer records changed since the last flush to the datastore beneath. */
  async flush (options?: AbortOptions): Promise<void> {
    // One flush at a time, so an older value never lands after a newer one.
    const previous = this.flushing
    const run = previous.then(async () => this.writeDirty(options))
    this.flushing = run.catch(() => {})
    await run
  }

  override async put (key: Key, value: Uint8Array, options?: AbortOptions): Promise<Key> {
    if (!isPeerKey(key)) {
      return this.inner.put(key, value, options)
    }
    await this.cache.put(key, value, options)
    this.markDirty(key, value)
    return key
  }

  override async get (key: Key, options?: AbortOptions): Promise<Uint8Array> {
    return isPeerKey(key) ? this.cache.get(key, options) : this.inner.get(key, options)
  }

  override async has (key: Key, options?: AbortOptions): Promise<boolean> {
    return isPeerKey(key) ? this.cache.has(key, options) : this.inner.has(key, options)
  }

  override async delete (key: Key, options?: AbortOptions): Promise<void> {
    if (!isPeerKey(key)) {
      await this.inner.delete(key, options)
      return
    }
    await this.cache.delete(key, options)
    this.markDirty(key, null)
  }

  override batch (): Batch {
    const innerBatch = this.inner.batch()
    const peerPuts: Pair[] = []
    const peerDeletes: Key[] = []
    return {
      put: (key, value) => {
        if (isPeerKey(key)) {
          peerPuts.push({ key, value })
        } else {
          innerBatch.put(key, value)
        }
      },
      delete: (key) => {
        if (isPeerKey(key)) {
          peerDeletes.push(key)
        } else {
          innerBatch.delete(key)
        }
      },
      commit: async (options?: AbortOptions) => {
        await innerBatch.commit(options)
        for (const { key, value } of peerPuts) {
          await this.put(key, value, options)
        }
        for (const key of peerDeletes) {
          await this.delete(key, options)
        }
      }
    }
  }

  override async * query (q: Query, options?: AbortOptions): AsyncGenerator<Pair> {
    if (onlyPeers(q.prefix)) {
      yield * this.cache.query(q, options)
      return
    }
    // A query over peers and other keys reads the datastore beneath, so that
    // must contain every peer record first.
    if (spansPeersAndOthers(q.prefix)) {
      await this.flush(options)
    }
    yield * this.inner.query(q, options)
  }

  override async * queryKeys (q: KeyQuery, options?: AbortOptions): AsyncGenerator<Key> {
    if (onlyPeers(q.prefix)) {
      yield * this.cache.queryKeys(q, options)
      return
    }
    if (spansPeersAndOthers(q.prefix)) {
      await this.flush(options)
    }
    yield * this.inner.queryKeys(q, options)
  }

  private markDirty (key: Key, value: Uint8Array | null): void {
    this.dirty.set(key.toString(), value)
    if (this.timer == null) {
      this.timer = setTimeout(() => {
        this.timer = undefined
        this.flush().catch(err => { log.error('failed to write peer records, retrying after the next change: %e', err) })
      }, this.flushIntervalMs)
      // Pending peer records never keep the process alive; close() writes them.
      this.timer.unref()
    }
  }

  private async writeDirty (options?: AbortOptions): Promise<void> {
    if (this.dirty.size === 0) {
      return
    }
    const pending = this.dirty
    this.dirty = new Map()
    const batch = this.inner.batch()
    for (const [key, value] of pending) {
      if (value == null) {
        batch.delete(new Key(key))
      } else {
        batch.put(new Key(key), value)
      }
    }
    try {
      await batch.commit(options)
    } catch (err) {
      // Keep what failed for the next flush, unless a newer change replaced it.
      for (const [key, value] of pending) {
        if (!this.dirty.has(key)) {
          this.dirty.set(key, value)
        }
      }
      throw err
    }
    log.trace('wrote %d peer records', pending.size)
  }
}
