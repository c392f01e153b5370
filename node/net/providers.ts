/**
 * Provides every blob the agent holds in the DHT, so that devices that are
 * not connected to a holder still find it. A blob is provided as soon as it
 * is stored, even while the rest of its image is still downloading, which is
 * what lets a rollout spread as a swarm. kad-dht re-provides before records
 * expire; a blob that is deleted is withdrawn locally at once.
 */
import { logger } from '@libp2p/logger'
import { digestToCid, type OciDigest } from '../../protocol/digest.js'
import { PROVIDE_CONCURRENCY, PROVIDE_DELAY_MS, PROVIDE_TIMEOUT_MS } from './constants.js'
import type { KilomeshLibp2p } from './libp2p.js'
import type { BlobStore } from '../store/blob-store.js'

const log = logger('kilomesh:providers')

export class BlobProviders {
  /** Counters for status output and metrics. */
  readonly stats = { provided: 0, failed: 0, withdrawn: 0 }
  private readonly queue: OciDigest[] = []
  private readonly queued = new Set<OciDigest>()
  private running = 0
  /** Timer that starts the queued provides PROVIDE_DELAY_MS after the first of them was stored. */
  private delayTimer: ReturnType<typeof setTimeout> | undefined
  private readonly shutdown = new AbortController()
  private readonly unsubscribe: Array<() => void> = []

  constructor (private readonly node: KilomeshLibp2p, private readonly store: BlobStore) {}

  /** Provides every stored blob, then each new one as it is stored. */
  async start (): Promise<void> {
    if (this.node.services.dht == null) {
      return
    }

    this.unsubscribe.push(this.store.onStored(digest => { this.enqueue(digest) }))
    this.unsubscribe.push(this.store.onDeleted(digest => { void this.withdraw(digest) }))
    for (const blob of await this.store.list()) {
      this.enqueue(blob.digest)
    }
  }

  stop (): void {
    clearTimeout(this.delayTimer)
    this.shutdown.abort()
    this.unsubscribe.forEach(unsubscribe => { unsubscribe() })
    this.queue.length = 0
    this.queued.clear()
  }

  /** Number of provide operations not finished yet. */
  get pending (): number {
    return this.queue.length + this.running
  }

  private enqueue (digest: OciDigest): void {
    if (this.shutdown.signal.aborted || this.queued.has(digest)) {
      return
    }
    this.queued.add(digest)
    this.queue.push(digest)

    // A pull stores its blobs one after the other. Providing each at once
    // runs DHT queries and datastore writes in the middle of the pull, so the
    // blobs stored within PROVIDE_DELAY_MS are provided together after it.
    // The timer is not pushed back by later stores, so no provide waits longer.
    this.delayTimer ??= setTimeout(() => {
      this.delayTimer = undefined
      this.drain()
    }, PROVIDE_DELAY_MS)
  }

  private drain (): void {
    while (this.running < PROVIDE_CONCURRENCY && this.queue.length > 0) {
      const digest = this.queue.shift() as OciDigest
      this.running++
      void this.provide(digest).finally(() => {
        this.running--
        this.queued.delete(digest)
        this.drain()
      })
    }
  }

  private async provide (digest: OciDigest): Promise<void> {
    const signal = AbortSignal.any([this.shutdown.signal, AbortSignal.timeout(PROVIDE_TIMEOUT_MS)])
    try {
      // Providing with no peers only records the provider locally; kad-dht
      // re-provides it to the network on its next cycle.
      await this.node.contentRouting.provide(digestToCid(digest), { signal })
      this.stats.provided++
      log.trace('provided %s', digest)
    } catch (err: any) {
      if (this.shutdown.signal.aborted) {
        return
      }
      this.stats.failed++
      log('could not provide %s: %e', digest, err)
    }
  }

  private async withdraw (digest: OciDigest): Promise<void> {
    const dht = this.node.services.dht
    if (dht == null) {
      return
    }
    try {
      await dht.cancelReprovide(digestToCid(digest))
      this.stats.withdrawn++
      log('withdrew provider record of %s', digest)
    } catch (err: any) {
      log('could not withdraw provider record of %s: %e', digest, err)
    }
  }
}
