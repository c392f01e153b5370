/**
 * Provides every blob the agent holds in the DHT, so that devices that are
 * not connected to a holder still find it. A blob added on this device
 * (publish, push, import) is provided almost at once. A blob fetched from a
 * peer is provided after a random delay of a few seconds. In a rollout every
 * device fetches the same blobs at nearly the same moment, and each provide
 * sends about 40 DHT requests, half of them to the 20 peers closest to the
 * blob's key. Spreading the provides keeps those peers from being flooded and
 * lets the transfers use the CPU and the links first. Meanwhile connected
 * peers find the new holder by asking it directly. kad-dht re-provides before
 * records expire, and a deleted blob is withdrawn locally at once.
 */
import { logger } from '@libp2p/logger'
import { digestToCid, type OciDigest } from '../../protocol/digest.js'
import { FETCHED_PROVIDE_DELAY_MAX_MS, FETCHED_PROVIDE_DELAY_MIN_MS, PROVIDE_CONCURRENCY, PROVIDE_DELAY_MS, PROVIDE_TIMEOUT_MS } from './constants.js'
import { anySignal } from './signals.js'
import type { KilomeshLibp2p } from './libp2p.js'
import type { BlobStore } from '../store/blob-store.js'

const log = logger('kilomesh:providers')

export interface BlobProvidersInit {
  /** Tells whether a blob being stored arrived from a peer. */
  isFetched?: (digest: OciDigest) => boolean
  /** Minimum delay before a fetched blob is provided, in ms. @default FETCHED_PROVIDE_DELAY_MIN_MS */
  fetchedDelayMinMs?: number
  /** Maximum delay before a fetched blob is provided, in ms. @default FETCHED_PROVIDE_DELAY_MAX_MS */
  fetchedDelayMaxMs?: number
}

export class BlobProviders {
  /** Counters for status output and metrics. `delayed` counts fetched blobs put off by the random delay. */
  readonly stats = { provided: 0, failed: 0, withdrawn: 0, delayed: 0 }
  private readonly queue: OciDigest[] = []
  private readonly queued = new Set<OciDigest>()
  private running = 0
  /** Timer that starts the queued provides PROVIDE_DELAY_MS after the first of them was stored. */
  private delayTimer: ReturnType<typeof setTimeout> | undefined
  private readonly shutdown = new AbortController()
  private readonly unsubscribe: Array<() => void> = []

  /** Fetched blobs waiting for their random delay to pass. */
  private readonly delayed = new Map<OciDigest, ReturnType<typeof setTimeout>>()
  private readonly fetchedDelayMinMs: number
  private readonly fetchedDelayMaxMs: number

  constructor (private readonly node: KilomeshLibp2p, private readonly store: BlobStore, private readonly init: BlobProvidersInit = {}) {
    this.fetchedDelayMinMs = init.fetchedDelayMinMs ?? FETCHED_PROVIDE_DELAY_MIN_MS
    this.fetchedDelayMaxMs = Math.max(this.fetchedDelayMinMs, init.fetchedDelayMaxMs ?? FETCHED_PROVIDE_DELAY_MAX_MS)
  }

  /** Provides every stored blob, then each new one as it is stored. */
  async start (): Promise<void> {
    if (this.node.services.dht == null) {
      return
    }

    this.unsubscribe.push(this.store.onStored(digest => { this.onStored(digest) }))
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
    this.delayed.forEach(timer => { clearTimeout(timer) })
    this.delayed.clear()
  }

  /** Number of provide operations not finished yet, delayed ones included. */
  get pending (): number {
    return this.queue.length + this.running + this.delayed.size
  }

  private onStored (digest: OciDigest): void {
    if (this.init.isFetched?.(digest) !== true) {
      this.enqueue(digest)
      return
    }
    if (this.shutdown.signal.aborted || this.delayed.has(digest) || this.queued.has(digest)) {
      return
    }

    this.stats.delayed++
    const delayMs = this.fetchedDelayMinMs + Math.random() * (this.fetchedDelayMaxMs - this.fetchedDelayMinMs)
    const timer = setTimeout(() => {
      this.delayed.delete(digest)
      this.enqueue(digest)
    }, delayMs)
    // A waiting provide never keeps the process alive, because start() provides every stored blob again.
    timer.unref()
    this.delayed.set(digest, timer)
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
    const signal = anySignal([this.shutdown.signal, AbortSignal.timeout(PROVIDE_TIMEOUT_MS)])
    try {
      // A delayed blob may have been collected as garbage in the meantime.
      if (await this.store.stat(digest) == null) {
        log.trace('skipped providing %s because it is no longer stored', digest)
        return
      }

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
