/**
 * Subscriptions: the agent pulls every new version of each subscribed tag as
 * soon as its catalog learns of it (by gossip, sync, or already at start),
 * for the local platform, without anyone running `pull`. It pins the current
 * and the previous version of each subscribed tag for A/B rollback, runs
 * garbage collection under the storage quota, and keeps tags that
 * `kilomesh rollback --local` holds on their older version.
 *
 * Subscriptions and holds are stored in config.json, pins in pins.json.
 */
import { logger } from '@libp2p/logger'
import { parseDigest, type OciDigest } from '../../protocol/digest.js'
import { tagKey, type SignedTagRecord } from '../../protocol/tag-record.js'
import { localPlatform } from '../image/platform.js'
import { endsHold, findPreviousRecord, LocalHolds } from './rollback.js'
import { GarbageCollector } from '../store/gc.js'
import { PinFile, type TagVersion } from '../store/pins.js'
import { connectedPeers } from '../net/peers.js'
import { anySignal } from '../net/signals.js'
import { ROLLOUT_FIRST_LOOKUP_DELAY_MAX_MS } from '../fetch/sources.js'
import { pullImage } from './pull.js'
import { PullQueue, type PullQueueInit } from './subscription-pulls.js'
import { describeSubscriptions, type SubscriptionView } from './subscription-views.js'
import {
  addSubscriptionToConfig, formatSubscription, notSubscribedError, parseSubscription, readHolds,
  readMaxStorageBytes, readSubscriptions, removeSubscriptionFromConfig, subscriptionCovers,
  splitTagKey, versionOf, type LocalHold, type Subscription
} from './subscription-config.js'
import type { AgentContext } from './agent.js'
import type { Catalog } from '../catalog/catalog.js'
import type { AgentConfig } from '../config/config.js'
import type { DataDirPaths } from '../config/paths.js'
import type { Descriptor } from '../image/manifest.js'
import type { BlobStore } from '../store/blob-store.js'
import type { OciLayout } from '../store/layout.js'
import type { AbortOptions } from '@libp2p/interface'

const log = logger('kilomesh:subscriptions')

/** Maximum time of one automatic pull attempt, in ms; a longer attempt is aborted and retried. */
export const PULL_ATTEMPT_TIMEOUT_MS = 10 * 60 * 1000

/** How long an automatic pull keeps looking for holders of each blob, in ms. */
const SUBSCRIPTION_WAIT_FOR_SOURCES_MS = 60_000

export type PulledListener = (repository: string, tag: string, digest: OciDigest) => void

export interface SubscriptionComponents {
  paths: DataDirPaths
  config: AgentConfig
  store: BlobStore
  layout: OciLayout
  catalog: Catalog
}

export interface SubscriptionInit extends Omit<PullQueueInit, 'pull'> {
  /** Storage quota in bytes; config.json's `maxStorageBytes` when omitted, else no quota. */
  maxStorageBytes?: number
  /** Called after garbage collection evicts a blob. */
  onEvicted?: (digest: OciDigest) => void
  /** Blobs used within this many ms are never evicted. @default 600000 */
  recentUseGraceMs?: number
  /** Time between quota checks, in ms. @default 60000 */
  gcIntervalMs?: number
}

export class SubscriptionManager {
  readonly gc: GarbageCollector
  readonly pins: PinFile
  private subscriptions: Subscription[]
  private readonly holds: LocalHolds
  private readonly queue: PullQueue
  private readonly listeners = new Set<PulledListener>()
  private readonly cleanups: Array<() => void> = []
  private context?: AgentContext
  private started = false

  /** Reads the subscription settings of config.json; throws InvalidConfigError naming a bad entry. */
  constructor (private readonly components: SubscriptionComponents, init: SubscriptionInit = {}) {
    const { config, paths } = components
    this.subscriptions = readSubscriptions(config, paths.config)
    this.holds = new LocalHolds(paths.config, readHolds(config, paths.config))

    this.pins = new PinFile(paths.root)
    this.queue = new PullQueue({ ...init, pull: async (repository, tag, version, signal, onProgress) => this.pullVersion(repository, tag, version, signal, onProgress) })
    this.gc = new GarbageCollector({
      store: components.store,
      layout: components.layout,
      pinnedRoots: async options => this.pinnedRoots(options),
      maxStorageBytes: init.maxStorageBytes ?? readMaxStorageBytes(config, paths.config),
      recentUseGraceMs: init.recentUseGraceMs,
      intervalMs: init.gcIntervalMs,
      onEvicted: init.onEvicted
    })
  }

  /** Loads the pins, then pulls what the catalog already has for the subscriptions and follows its changes. */
  async start (context: AgentContext): Promise<void> {
    if (this.started) {
      return
    }

    this.context = context
    await this.pins.load()
    this.started = true

    this.cleanups.push(this.components.catalog.onChange(current => { this.onRecord(current) }))
    const onConnect = (): void => { this.queue.retrySoon() }
    context.node.addEventListener('peer:connect', onConnect)
    this.cleanups.push(() => { context.node.removeEventListener('peer:connect', onConnect) })

    for (const hold of this.holds.all()) {
      const winner = this.components.catalog.get(hold.repository, hold.tag)
      if (winner != null) {
        this.checkHold(winner)
      }
    }
    this.refreshAll()
    this.gc.start()
    log('started with %d subscriptions and %d holds', this.subscriptions.length, this.holds.size)
  }

  /** Stops following the catalog, aborts pulls in progress and stops garbage collection. */
  async stop (): Promise<void> {
    if (!this.started) {
      return
    }

    this.started = false
    this.cleanups.splice(0).forEach(cleanup => { cleanup() })
    await this.queue.stop()
    await this.gc.stop()
    log('stopped')
  }

  /** Returns the subscriptions as "REPOSITORY:TAG" or "REPOSITORY". */
  list (): string[] {
    return this.subscriptions.map(formatSubscription)
  }

  /** Subscribes to "REPOSITORY:TAG", or "REPOSITORY" for every tag, and stores it in config.json. */
  async subscribe (reference: string, options?: AbortOptions): Promise<{ subscription: string, added: boolean }> {
    const subscription = parseSubscription(reference)
    const name = formatSubscription(subscription)
    options?.signal?.throwIfAborted()

    const added = await addSubscriptionToConfig(this.components.paths.config, subscription)
    if (!this.list().includes(name)) {
      this.subscriptions.push(subscription)
    }
    log('%s %s', added ? 'subscribed to' : 'already subscribed to', name)
    this.refreshAll()
    return { subscription: name, added }
  }

  /** Removes a subscription; its tags are no longer pulled and their pins are released. */
  async unsubscribe (reference: string, options?: AbortOptions): Promise<{ subscription: string, removed: boolean }> {
    const subscription = parseSubscription(reference)
    const name = formatSubscription(subscription)
    if (!this.list().includes(name)) {
      throw notSubscribedError(name, this.subscriptions)
    }
    options?.signal?.throwIfAborted()

    const removed = await removeSubscriptionFromConfig(this.components.paths.config, subscription)
    this.subscriptions = this.subscriptions.filter(other => formatSubscription(other) !== name)
    for (const signed of this.components.catalog.list()) {
      const { repository, tag } = signed.record
      if (subscriptionCovers(subscription, repository, tag) && !this.isSubscribed(repository, tag)) {
        this.queue.cancel(repository, tag)
      }
    }

    const released = await this.pins.retain(key => { const { repository, tag } = splitTagKey(key); return this.isSubscribed(repository, tag) })
    log('unsubscribed from %s; released the pins of %d tags', name, released.length)
    return { subscription: name, removed }
  }

  /**
   * Calls `listener` with the digest of the tag's record after each pull this
   * manager completes: automatic ones and those of a local rollback.
   * Returns a function that unsubscribes.
   */
  onPulled (listener: PulledListener): () => void {
    this.listeners.add(listener)
    return () => { this.listeners.delete(listener) }
  }

  /** Returns true when a subscription covers `repository:tag`. */
  isSubscribed (repository: string, tag: string): boolean {
    return this.subscriptions.some(subscription => subscriptionCovers(subscription, repository, tag))
  }

  /** Returns the local hold of a tag, if any. */
  holdOf (repository: string, tag: string): LocalHold | undefined {
    return this.holds.get(repository, tag)
  }

  /**
   * Holds a tag on `hold.version` on this device: pulls that version, points
   * the index.json ref at it and stores the hold in config.json. Automatic
   * pulls leave the tag alone until a record newer than `hold.from` arrives.
   * On failure the previous hold state is restored.
   */
  async hold (hold: LocalHold, options?: AbortOptions): Promise<void> {
    const before = this.holds.get(hold.repository, hold.tag)
    this.holds.set(hold)
    options?.signal?.throwIfAborted()

    try {
      await this.queue.pullNow(hold.repository, hold.tag, hold.version)
      await this.holds.save()
    } catch (err) {
      if (before == null) {
        this.holds.delete(hold.repository, hold.tag)
      } else {
        this.holds.set(before)
      }
      this.refresh(hold.repository, hold.tag)
      throw err
    }
    log('holding %s:%s at %s until a version newer than %s is published', hold.repository, hold.tag, hold.version.digest, hold.from.digest)
  }

  /** Ends the local hold of a tag; returns false when there was none. Subscribed tags then move to the newest version. */
  async release (repository: string, tag: string): Promise<boolean> {
    if (!this.holds.delete(repository, tag)) {
      return false
    }

    await this.holds.save()
    log('released the hold of %s:%s', repository, tag)
    this.refresh(repository, tag)
    return true
  }

  /**
   * Returns the roots of every image garbage collection must keep: the
   * pinned versions and newest records of subscribed tags with the record
   * before each, the index.json entries of subscribed tags, and held versions.
   * The newest record protects the blobs of a pull still in progress.
   */
  async pinnedRoots (options?: AbortOptions): Promise<Descriptor[]> {
    const roots: Descriptor[] = []
    const add = (version: TagVersion | undefined): void => {
      if (version != null) {
        roots.push({ digest: version.digest, mediaType: version.mediaType, size: version.size })
      }
    }

    for (const [key, pins] of this.pins.entries()) {
      const { repository, tag } = splitTagKey(key)
      if (this.isSubscribed(repository, tag)) {
        add(pins.current)
        add(pins.previous)
      }
    }

    for (const signed of this.components.catalog.list()) {
      const { repository, tag, digest } = signed.record
      if (this.isSubscribed(repository, tag)) {
        add(versionOf(signed))
        const previous = findPreviousRecord(this.components.catalog, repository, tag, digest)
        add(previous == null ? undefined : versionOf(previous))
      }
    }

    for (const hold of this.holds.all()) {
      add(hold.version)
    }

    for (const [refName, descriptor] of await this.components.layout.refs(options)) {
      const { repository, tag } = splitTagKey(refName)
      if (refName.includes(':') && this.isSubscribed(repository, tag)) {
        roots.push(descriptor)
      }
    }
    return roots
  }

  /** Describes every subscription and the state of each tag it covers. */
  view (): SubscriptionView[] {
    return describeSubscriptions(this.subscriptions, {
      catalog: this.components.catalog,
      pins: this.pins,
      holdOf: (repository, tag) => this.holds.get(repository, tag),
      pullStatus: (repository, tag) => this.queue.status(repository, tag)
    })
  }

  private onRecord (current: SignedTagRecord): void {
    this.checkHold(current)
    this.refresh(current.record.repository, current.record.tag)
  }

  /** Ends a hold when `current` is a version newer than the one rolled back from. */
  private checkHold (current: SignedTagRecord): void {
    const { repository, tag, digest } = current.record
    const hold = this.holds.get(repository, tag)
    if (hold == null || !endsHold(hold, current.record)) {
      return
    }

    this.holds.delete(repository, tag)
    log('hold of %s:%s at %s ended: a newer version %s was published', repository, tag, hold.version.digest, digest)
    this.holds.save().catch((err: any) => { log.error('could not store the end of the hold of %s:%s in config.json: %e', repository, tag, err) })
  }

  private refreshAll (): void {
    const keys = new Set([...this.components.catalog.list().map(signed => tagKey(signed.record.repository, signed.record.tag)), ...this.holds.all().map(hold => tagKey(hold.repository, hold.tag))])
    for (const key of keys) {
      const { repository, tag } = splitTagKey(key)
      this.refresh(repository, tag)
    }
  }

  /** Tells the pull queue which version a tag needs: its hold, else its newest record, unless that is pinned already. */
  private refresh (repository: string, tag: string): void {
    if (!this.started || !this.isSubscribed(repository, tag)) {
      return
    }

    const key = tagKey(repository, tag)
    const winner = this.components.catalog.get(repository, tag)
    const target = this.holds.get(repository, tag)?.version ?? (winner == null ? undefined : versionOf(winner))
    const applied = this.pins.get(key)?.current.digest
    this.queue.setTarget(repository, tag, target?.digest === applied ? undefined : target)
  }

  /** Pulls one version of a subscribed tag, then points index.json at it and pins it. */
  private async pullVersion (repository: string, tag: string, version: TagVersion, signal: AbortSignal, onProgress: () => void): Promise<void> {
    const context = this.context
    if (context == null) {
      throw new Error('the subscription manager is not started')
    }

    const attemptSignal = anySignal([signal, AbortSignal.timeout(PULL_ATTEMPT_TIMEOUT_MS)])
    // The tag is known to exist, so holders appear as the rollout spreads: keep looking for them.
    // The publisher almost always has what it published. Asking it first
    // saves probing random peers for the manifest, which in a large mesh
    // often misses it.
    const publisher = this.components.catalog.get(repository, tag)?.record.publisher
    const publisherPeer = publisher == null ? undefined : connectedPeers(context.node).get(publisher)
    const preferredPeers = publisherPeer == null ? [] : [publisherPeer]
    const result = await pullImage(context, `${repository}@${version.digest}`, { platform: localPlatform(), signal: attemptSignal, waitForSourcesMs: SUBSCRIPTION_WAIT_FOR_SOURCES_MS, firstLookupDelayMaxMs: ROLLOUT_FIRST_LOOKUP_DELAY_MAX_MS, preferredPeers, onProgress })

    // A newer version may have superseded this one while the pull finished.
    signal.throwIfAborted()
    const image = parseDigest(result.digest)
    const info = await this.components.store.stat(image)
    await this.components.layout.setRef(tagKey(repository, tag), { mediaType: result.mediaType, digest: image, size: info?.sizeBytes ?? version.size })
    await this.pins.record(tagKey(repository, tag), version)

    log('pulled subscribed %s:%s -> %s (image %s, %d blobs, %d fetched, %d bytes)', repository, tag, version.digest, result.digest, result.blobCount, result.fetchedBlobs, result.fetchedBytes)
    for (const listener of this.listeners) {
      try {
        listener(repository, tag, version.digest)
      } catch (err: any) {
        log.error('pull listener failed for %s:%s: %e', repository, tag, err)
      }
    }
    this.gc.trigger()
  }
}
