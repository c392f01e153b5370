/**
 * Garbage collection under a storage quota. Blobs reachable from pinned
 * images are kept. When the store contains more bytes than the quota, other blobs are
 * evicted least recently used first, by the mtime that BlobStore.touch sets.
 * An index.json entry whose image lost a blob is removed with it, so the
 * data directory stays a valid OCI image layout.
 *
 * A pull or upload in progress writes to DIR/tmp, which is never scanned,
 * and a blob it has just stored carries a fresh mtime. Blobs used within
 * `recentUseGraceMs` are never evicted, and each blob is checked again just
 * before it is removed: a new mtime or a new pin spares it.
 */
import { logger } from '@libp2p/logger'
import { MAX_MANIFEST_BYTES } from '../../protocol/constants.js'
import { isManifestDescriptor, parseManifest, childDescriptors, type Descriptor } from '../image/manifest.js'
import type { BlobInfo, BlobStore } from './blob-store.js'
import type { OciLayout } from './layout.js'
import type { OciDigest } from '../../protocol/digest.js'
import type { AbortOptions } from '@libp2p/interface'

const log = logger('kilomesh:gc')

/** Default time after its last use during which a blob is never evicted, in ms. */
export const DEFAULT_RECENT_USE_GRACE_MS = 10 * 60 * 1000

/** Default time between two quota checks of a running agent, in ms. */
export const DEFAULT_GC_INTERVAL_MS = 60 * 1000

export interface GarbageCollectorInit {
  store: BlobStore
  layout: OciLayout
  /** Returns the roots of the images to keep; every blob under them stays. */
  pinnedRoots: (options?: AbortOptions) => Promise<Descriptor[]>
  /** Quota in bytes; without it only `collect` with its own quota evicts anything. */
  maxStorageBytes?: number
  /** Blobs used within this many ms before a run are never evicted. @default 600000 */
  recentUseGraceMs?: number
  /** Time between quota checks after `start`, in ms. @default 60000 */
  intervalMs?: number
  /** Called after each evicted blob, for example to withdraw its DHT provider record. */
  onEvicted?: (digest: OciDigest) => void
}

export interface CollectOptions extends AbortOptions {
  /** Quota for this run only, in bytes; the configured one when omitted. */
  maxStorageBytes?: number
  /** Report what would be evicted without removing anything. */
  dryRun?: boolean
}

/** One evicted blob. */
export interface EvictedBlob {
  digest: OciDigest
  sizeBytes: number
  lastUsedMs: number
}

/** Outcome of one garbage collection run. */
export interface CollectResult {
  /** Quota applied in bytes, or null when none was set and nothing was evicted. */
  maxStorageBytes: number | null
  dryRun: boolean
  storedBytesBefore: number
  storedBytesAfter: number
  freedBytes: number
  /** Evicted blobs, least recently used first. */
  evicted: EvictedBlob[]
  pinnedBlobs: number
  pinnedBytes: number
  /** Unpinned blobs spared because they were used within the grace time. */
  recentBlobs: number
  /** index.json ref names removed because their image lost a blob. */
  removedRefs: string[]
  /** True when the store still exceeds the quota, because every blob left is pinned or recent. */
  overQuota: boolean
}

/**
 * Returns every digest that `roots` reference, following stored manifests
 * and indexes down to configs and layers. Digests that are not stored are
 * included but not followed: a subscribed pull takes one platform of an
 * index, so its other children are absent by design.
 */
export async function referencedDigests (store: BlobStore, roots: Descriptor[], options?: AbortOptions): Promise<Set<OciDigest>> {
  const reached = new Set<OciDigest>()
  const pending = [...roots]

  for (let descriptor = pending.pop(); descriptor != null; descriptor = pending.pop()) {
    options?.signal?.throwIfAborted()
    if (reached.has(descriptor.digest)) {
      continue
    }
    reached.add(descriptor.digest)

    // A root taken from a pin or a record may have no media type, so the size decides whether to parse it.
    const mayBeManifest = descriptor.mediaType === '' || isManifestDescriptor(descriptor)
    const info = mayBeManifest ? await store.stat(descriptor.digest) : undefined
    if (info == null || info.sizeBytes > MAX_MANIFEST_BYTES) {
      continue
    }

    try {
      const manifest = parseManifest(await store.read(descriptor.digest, options), descriptor.mediaType === '' ? undefined : descriptor.mediaType)
      pending.push(...childDescriptors(manifest))
    } catch (err: any) {
      if (options?.signal?.aborted === true) {
        throw err
      }
      log('blob %s is not a manifest kilomesh can read, so nothing under it is followed: %s', descriptor.digest, err.message)
    }
  }

  return reached
}

export class GarbageCollector {
  readonly maxStorageBytes: number | undefined
  private readonly recentUseGraceMs: number
  private readonly intervalMs: number
  private running: Promise<unknown> = Promise.resolve()
  private timer?: NodeJS.Timeout
  private reportedOverQuota = false

  constructor (private readonly init: GarbageCollectorInit) {
    this.maxStorageBytes = init.maxStorageBytes
    this.recentUseGraceMs = init.recentUseGraceMs ?? DEFAULT_RECENT_USE_GRACE_MS
    this.intervalMs = init.intervalMs ?? DEFAULT_GC_INTERVAL_MS
  }

  /** Checks the quota now and then every `intervalMs`; does nothing without a quota. */
  start (): void {
    if (this.maxStorageBytes == null || this.timer != null) {
      return
    }

    this.timer = setInterval(() => { this.trigger() }, this.intervalMs)
    this.timer.unref()
    this.trigger()
    log('storage quota %d bytes, checked every %d ms', this.maxStorageBytes, this.intervalMs)
  }

  /** Stops the periodic check and waits for a run in progress. */
  async stop (): Promise<void> {
    clearInterval(this.timer)
    this.timer = undefined
    await this.running.catch(() => {})
  }

  /** Starts a quota check in the background, as after a pull; errors are logged. */
  trigger (): void {
    if (this.maxStorageBytes == null) {
      return
    }
    this.collect().catch((err: any) => { log.error('garbage collection failed: %e', err) })
  }

  /** Evicts unpinned blobs, least recently used first, until the store fits the quota. Runs one at a time. */
  async collect (options: CollectOptions = {}): Promise<CollectResult> {
    const run = this.running.catch(() => {}).then(async () => this.collectNow(options))
    this.running = run
    return run
  }

  private async collectNow (options: CollectOptions): Promise<CollectResult> {
    const quota = options.maxStorageBytes ?? this.maxStorageBytes ?? null
    const dryRun = options.dryRun === true
    const startedAtMs = Date.now()

    const blobs = await this.init.store.list()
    const storedBytesBefore = blobs.reduce((sum, blob) => sum + blob.sizeBytes, 0)
    let pinned = await referencedDigests(this.init.store, await this.init.pinnedRoots(options), options)
    const pinnedBlobs = blobs.filter(blob => pinned.has(blob.digest))

    const result: CollectResult = {
      maxStorageBytes: quota,
      dryRun,
      storedBytesBefore,
      storedBytesAfter: storedBytesBefore,
      freedBytes: 0,
      evicted: [],
      pinnedBlobs: pinnedBlobs.length,
      pinnedBytes: pinnedBlobs.reduce((sum, blob) => sum + blob.sizeBytes, 0),
      recentBlobs: 0,
      removedRefs: [],
      overQuota: false
    }

    if (quota == null || storedBytesBefore <= quota) {
      this.reportedOverQuota = false
      return result
    }

    const recentSinceMs = startedAtMs - this.recentUseGraceMs
    const unpinned = blobs.filter(blob => !pinned.has(blob.digest))
    result.recentBlobs = unpinned.filter(blob => blob.lastUsedMs >= recentSinceMs).length
    const candidates = unpinned
      .filter(blob => blob.lastUsedMs < recentSinceMs)
      .sort((a, b) => a.lastUsedMs - b.lastUsedMs || a.digest.localeCompare(b.digest))

    // Pins may have changed while the store was scanned, for example when a
    // newer record arrived and its pull reuses old blobs: look again.
    if (candidates.length > 0 && !dryRun) {
      pinned = await referencedDigests(this.init.store, await this.init.pinnedRoots(options), options)
    }

    for (const candidate of candidates) {
      if (result.storedBytesAfter <= quota) {
        break
      }
      options.signal?.throwIfAborted()

      if (!dryRun && !await this.evict(candidate, pinned)) {
        continue
      }
      result.evicted.push({ digest: candidate.digest, sizeBytes: candidate.sizeBytes, lastUsedMs: candidate.lastUsedMs })
      result.storedBytesAfter -= candidate.sizeBytes
      result.freedBytes += candidate.sizeBytes
    }

    if (result.evicted.length > 0) {
      result.removedRefs = await this.removeBrokenRefs(new Set(result.evicted.map(blob => blob.digest)), dryRun, options)
    }

    result.overQuota = result.storedBytesAfter > quota
    this.report(result, quota, options.maxStorageBytes == null)
    return result
  }

  /** Removes one blob unless it was used or pinned since the scan; returns true when it was removed. */
  private async evict (candidate: BlobInfo, pinned: Set<OciDigest>): Promise<boolean> {
    if (pinned.has(candidate.digest)) {
      return false
    }

    // NOTE: a pull that has just found this blob stored, and not touched it
    // yet, can still lose it between this check and the unlink. That pull
    // then fails: a subscription pull retries and fetches the blob again,
    // but a manual pull or registry push has to be run again.
    const now = await this.init.store.stat(candidate.digest)
    if (now?.lastUsedMs !== candidate.lastUsedMs) {
      return false
    }

    if (!await this.init.store.delete(candidate.digest)) {
      return false
    }

    log('evicted %s (%d bytes, last used %s)', candidate.digest, candidate.sizeBytes, new Date(candidate.lastUsedMs).toISOString())
    try {
      this.init.onEvicted?.(candidate.digest)
    } catch (err: any) {
      log.error('eviction listener failed for %s: %e', candidate.digest, err)
    }
    return true
  }

  /** Removes index.json entries whose image references an evicted blob; returns their names. */
  private async removeBrokenRefs (evicted: Set<OciDigest>, dryRun: boolean, options?: AbortOptions): Promise<string[]> {
    const removed: string[] = []
    for (const [refName, descriptor] of await this.init.layout.refs(options)) {
      const referenced = await referencedDigests(this.init.store, [descriptor], options)
      if (![...referenced].some(digest => evicted.has(digest))) {
        continue
      }

      if (!dryRun) {
        await this.init.layout.removeRef(refName, options)
        log('removed ref %s from index.json because its image lost evicted blobs', refName)
      }
      removed.push(refName)
    }
    return removed
  }

  /** Logs a run; staying over the configured quota is logged as an error once until the store fits again. */
  private report (result: CollectResult, quota: number, configuredQuota: boolean): void {
    if (result.evicted.length > 0) {
      log('%s %d blobs (%d bytes); the store now holds %d of %d bytes', result.dryRun ? 'would evict' : 'evicted', result.evicted.length, result.freedBytes, result.storedBytesAfter, quota)
    }

    if (!configuredQuota) {
      return
    }

    if (result.overQuota && !this.reportedOverQuota) {
      log.error('the store contains %d bytes, above the quota of %d bytes, but %d bytes are pinned and %d unpinned blobs were used in the last %d ms', result.storedBytesAfter, quota, result.pinnedBytes, result.recentBlobs, this.recentUseGraceMs)
    }
    this.reportedOverQuota = result.overQuota
  }
}
