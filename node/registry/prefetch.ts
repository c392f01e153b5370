/**
 * Background fetches of the blobs a client will ask for next. A client that
 * reads a manifest requests its config and layers (or, for an index, its
 * child manifests) right after, one request at a time. Starting those
 * fetches through the mesh as soon as the manifest is served overlaps their
 * round trips with the client's own work, so a cold pull through the mesh
 * does not pay one fetch after the other. A later request for a blob in
 * flight waits for that fetch instead of starting its own.
 */
import { logger } from '@libp2p/logger'
import { childDescriptors, parseManifest } from '../image/manifest.js'
import { localPlatform, MAX_INDEX_NESTING_DEPTH, selectManifests } from '../image/platform.js'
import type { FetchedBlob, RegistryBackend } from './backend.js'
import type { OciDigest } from '../../protocol/digest.js'
import type { Descriptor } from '../image/manifest.js'

const log = logger('kilomesh:registry:prefetch')

/** Maximum background fetches in flight at once. Beyond it, blobs are fetched when the client requests them. */
export const MAX_PREFETCHES = 32

export class Prefetcher {
  private readonly inFlight = new Map<OciDigest, Promise<FetchedBlob | undefined>>()

  constructor (
    private readonly backend: RegistryBackend,
    private readonly fetchTimeoutMs: number,
    private readonly shutdown: () => AbortSignal | undefined
  ) {}

  /** Number of background fetches in flight. */
  get size (): number {
    return this.inFlight.size
  }

  /** Returns the background fetch of a blob, when one is in flight. */
  pending (digest: OciDigest): Promise<FetchedBlob | undefined> | undefined {
    return this.inFlight.get(digest)
  }

  /**
   * Starts fetching the blobs that are neither local nor already in flight.
   * `parent` is the manifest that references them, whose source is asked first.
   */
  start (descriptors: Descriptor[], parent?: OciDigest): void {
    for (const descriptor of descriptors) {
      if (this.inFlight.size >= MAX_PREFETCHES) {
        log.trace('%d prefetches in flight, leaving %s for the client to request', this.inFlight.size, descriptor.digest)
        return
      }
      if (this.inFlight.has(descriptor.digest)) {
        continue
      }

      const fetch = this.fetch(descriptor, parent).finally(() => this.inFlight.delete(descriptor.digest))
      this.inFlight.set(descriptor.digest, fetch)
    }
  }

  /**
   * Starts fetching the config and layers of `manifest` once the manifest
   * itself is local, from its own prefetch or the store. The registry calls
   * it for the child of an index that matches this device's platform: the
   * container runtime on the device requests that image's blobs next. When
   * that child is itself an index, the walk goes down to this platform's
   * image, at most MAX_INDEX_NESTING_DEPTH levels.
   */
  startChildrenOf (manifest: Descriptor, depth = 1): void {
    void (async () => {
      const fetched = await this.pending(manifest.digest)
      const bytes = fetched?.bytes ?? await fetched?.arriving?.done ?? (await this.backend.store.has(manifest.digest) ? await this.backend.store.read(manifest.digest) : undefined)
      if (bytes == null) {
        return
      }

      const parsed = parseManifest(bytes, manifest.mediaType)
      this.start(childDescriptors(parsed), manifest.digest)
      if (parsed.kind === 'index' && depth < MAX_INDEX_NESTING_DEPTH) {
        const local = selectManifests(parsed, localPlatform())[0]
        if (local != null) {
          this.startChildrenOf(local, depth + 1)
        }
      }
    })().catch(err => {
      log('could not prefetch the blobs of %s - %e', manifest.digest, err)
    })
  }

  private async fetch (descriptor: Descriptor, parent: OciDigest | undefined): Promise<FetchedBlob | undefined> {
    try {
      if (await this.backend.store.has(descriptor.digest)) {
        return { stored: Promise.resolve(true) }
      }

      const fetched = await this.backend.fetchBlob(descriptor.digest, { signal: this.shutdown(), startTimeoutMs: this.fetchTimeoutMs, sizeBytes: descriptor.size, parent })
      log.trace('prefetch of %s %s', descriptor.digest, fetched == null ? 'found no source' : 'succeeded')
      return fetched
    } catch (err) {
      log('prefetch of %s failed - %e', descriptor.digest, err)
      return undefined
    }
  }
}
