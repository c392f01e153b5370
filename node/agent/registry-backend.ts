/** The agent's implementation of the registry API's backend: its store, catalog and mesh fetcher. */
import { resolve } from 'node:path'
import { logger } from '@libp2p/logger'
import { rejectedElsewhere } from '../catalog/trust.js'
import { InvalidConfigError } from '../config/errors.js'
import { RegistryServer } from '../registry/server.js'
import { NotStartedError } from '../fetch/errors.js'
import { raceAbort, SharedWorkSignal, startDeadline } from '../net/signals.js'
import { DEFAULT_FETCH_TIMEOUT_MS } from '../registry/constants.js'
import { setMostRecent } from '../util/bounded-map.js'
import { deleteTag, publishTag } from './publish.js'
import { resolveTag } from './pull.js'
import { MAX_MEMORY_FETCH_BYTES, MEMORY_FETCH_BUDGET_BYTES, openIntoMemory, STREAM_TO_CLIENT_MIN_BYTES } from './registry-fetch.js'
import { WriteBehind, WRITE_BEHIND_MS } from './write-behind.js'
import type { AgentContext } from './agent.js'
import type { OciDigest } from '../../protocol/digest.js'
import type { Descriptor } from '../image/manifest.js'
import type { FetchBlobOptions, FetchedBlob, RegistryBackend } from '../registry/backend.js'
import type { BlobStore } from '../store/blob-store.js'
import type { AbortOptions, PeerId } from '@libp2p/interface'

const log = logger('kilomesh:registry')

/** Blobs whose preferred sources are remembered; the oldest entry goes first. */
const MAX_SOURCE_HINTS = 1024

/** A blob that is already in the store. */
const IN_STORE: FetchedBlob = { stored: Promise.resolve(true) }

/** Limits of fetches into memory, for tests; the defaults suit an agent. */
export interface MemoryFetchInit {
  /** @default MAX_MEMORY_FETCH_BYTES (4 MiB) */
  maxMemoryFetchBytes?: number
  /** @default MEMORY_FETCH_BUDGET_BYTES (16 MiB) */
  memoryFetchBudgetBytes?: number
  /** @default WRITE_BEHIND_MS (300 ms) */
  writeBehindMs?: number
}

export class AgentRegistryBackend implements RegistryBackend {
  /**
   * Peers to ask first for a blob: those that supplied its tag record, or
   * the peer that supplied the manifest that references it. Asking them
   * directly skips the round of asking every connected peer.
   */
  private readonly sourceHints = new Map<OciDigest, PeerId[]>()
  /** Blobs fetched into memory, until they are in the store, so a request in between does not fetch them again. */
  private readonly inMemory = new Map<OciDigest, { pending: Promise<FetchedBlob | undefined>, shared: SharedWorkSignal }>()
  /** Bytes reserved by the entries of `inMemory`, at most the budget. */
  private memoryBytes = 0

  private readonly maxMemoryFetchBytes: number
  private readonly memoryFetchBudgetBytes: number
  /** Delays the writes of blobs fetched into memory until the client's next requests have gone by. */
  private readonly writeBehind: WriteBehind
  /** Writes of verified blobs fetched into memory, from their delay until they are stored or failed. */
  private readonly pendingWrites = new Map<OciDigest, Promise<boolean>>()
  private readonly unwatchWrites: () => void

  constructor (private readonly context: AgentContext, init: MemoryFetchInit = {}) {
    this.maxMemoryFetchBytes = init.maxMemoryFetchBytes ?? MAX_MEMORY_FETCH_BYTES
    this.memoryFetchBudgetBytes = init.memoryFetchBudgetBytes ?? MEMORY_FETCH_BUDGET_BYTES
    this.writeBehind = new WriteBehind(init.writeBehindMs ?? WRITE_BEHIND_MS)
    this.unwatchWrites = context.fetcher.watchPendingWrites(digest => this.storeNow(digest))
  }

  /**
   * Returns the write of a blob whose bytes are in memory and verified,
   * started now if it waits, or undefined when there is none. A blob still
   * arriving has no write yet. The fetcher and the blob server use it
   * during the write-behind delay, instead of downloading the blob again or
   * returning NOT_FOUND.
   */
  storeNow (digest: OciDigest): Promise<boolean> | undefined {
    const written = this.pendingWrites.get(digest)
    if (written != null) {
      this.writeBehind.flush(digest)
    }
    return written
  }

  /** Removes this backend's lookup of pending writes from the fetcher, which the blob server also uses. */
  stopWatchingWrites (): void {
    this.unwatchWrites()
  }

  /** Starts the delayed writes now and waits until every blob fetched into memory is stored or failed. */
  async flushWrites (): Promise<void> {
    this.writeBehind.flushAll()
    await Promise.all([...this.inMemory.values()].map(async entry => entry.pending.then(async fetched => fetched?.stored).catch(() => {})))
  }

  get store (): BlobStore {
    return this.context.store
  }

  async resolveTag (repository: string, tag: string, options?: AbortOptions): Promise<Descriptor | undefined> {
    const resolved = await resolveTag(this.context, repository, tag, options)
    if (resolved != null) {
      this.rememberSources(resolved.descriptor.digest, resolved.sources)
    }
    return resolved?.descriptor
  }

  /**
   * Fetches a blob through the mesh. A blob within the memory fetch limits
   * with a known source is fetched from it into memory and returned while
   * the store writes it. Anything else goes through the blob fetcher into
   * the store.
   */
  async fetchBlob (digest: OciDigest, options: FetchBlobOptions = {}): Promise<FetchedBlob | undefined> {
    const startTimeoutMs = options.startTimeoutMs ?? DEFAULT_FETCH_TIMEOUT_MS
    const deadlineMs = Date.now() + startTimeoutMs
    const notStarted = (): Error => new NotStartedError(`no peer started sending ${digest} within ${startTimeoutMs} ms`)
    const preferred = this.preferredPeers(digest, options.parent)
    // A blob of unknown size may be as large as the limit, so it reserves that much.
    const reservedBytes = options.sizeBytes ?? this.memoryLimitBytes(options)
    const fits = reservedBytes <= this.maxMemoryFetchBytes && this.memoryBytes + reservedBytes <= this.memoryFetchBudgetBytes

    // The fetch is shared by every request for the blob, and stops only
    // when all of them gave up before it delivered. Once a large blob
    // arrives, it is finished and stored even when no request reads it any more.
    let entry = this.inMemory.get(digest)
    if ((entry == null || entry.shared.aborted) && preferred.length > 0 && fits) {
      const shared = new SharedWorkSignal()
      // The fetcher counts this transfer until the blob is stored, so the
      // stored blob is provided like any other blob fetched from a peer.
      const endTransfer = this.context.fetcher.trackTransfer(digest)
      const started = { shared, pending: this.fetchIntoMemory(digest, preferred, { ...options, signal: shared.signal }) }
      entry = started
      this.memoryBytes += reservedBytes
      this.inMemory.set(digest, started)
      void started.pending.then(async fetched => fetched?.stored).catch(() => {}).finally(() => {
        if (this.inMemory.get(digest) === started) {
          this.inMemory.delete(digest)
        }
        this.memoryBytes -= reservedBytes
        endTransfer()
      })
    }

    // When the preferred peers were asked and did not deliver, the blob
    // fetcher does not request from them first again.
    let preferredMissed = false
    let fetched: FetchedBlob | undefined
    if (entry != null) {
      // The fetch into memory resolves once the peer accepted, or once a
      // small blob arrived, so the deadline bounds only its start.
      const start = startDeadline(options.signal, deadlineMs, () => false, notStarted)
      const leave = entry.shared.join(start.signal)
      try {
        fetched = await raceAbort(entry.pending, start.signal).catch(() => undefined)
      } finally {
        leave()
        start.clear()
      }
      if (options.signal?.aborted === true) {
        return undefined
      }
      preferredMissed = fetched == null || fetched.arriving?.failed === true
    }
    if (fetched != null && fetched.arriving?.failed !== true) {
      return fetched
    }

    // A transfer that a peer is sending at the deadline goes on. The
    // fetcher's stall timeout still stops one that stops making progress.
    const start = startDeadline(options.signal, deadlineMs, () => this.context.fetcher.receivingFrom(digest) != null, notStarted)
    try {
      await this.context.fetcher.fetch(digest, { signal: start.signal, sizeBytes: options.sizeBytes, maxSizeBytes: options.maxSizeBytes, preferredPeers: preferredMissed ? [] : preferred })
      // The peer that delivered is not known here, so the blob's children
      // inherit the parent's sources.
      this.rememberSources(digest, preferred)
      return IN_STORE
    } catch (err: any) {
      if (options.signal?.aborted === true) {
        return undefined
      }
      log('could not fetch %s for a registry client: %e', digest, err)
      return undefined
    } finally {
      start.clear()
    }
  }

  /**
   * Requests the blob from each preferred peer in turn. A blob of at least
   * STREAM_TO_CLIENT_MIN_BYTES is returned as soon as a peer starts sending
   * it, so the registry can pass it on as it arrives. A smaller one is
   * returned once verified. Either way the store writes it once verified.
   * NOTE: a transfer of the same blob that the blob fetcher runs at the same
   * time (for a subscription's pull) is not shared with this one, so both may
   * download it.
   */
  private async fetchIntoMemory (digest: OciDigest, peers: PeerId[], options: FetchBlobOptions): Promise<FetchedBlob | undefined> {
    if (await this.context.store.has(digest)) {
      return IN_STORE
    }

    for (const peer of peers) {
      const arriving = await openIntoMemory(this.context.node, this.context.penalties, peer, digest, options.sizeBytes, { ...options, maxSizeBytes: this.memoryLimitBytes(options) })
      if (arriving == null) {
        continue
      }

      const stored = arriving.done.then(async bytes => {
        if (bytes == null) {
          return false
        }
        log('fetched %s (%d bytes) from %p into memory', digest, bytes.byteLength, peer)
        this.context.fetcher.stats.fetchedBlobs++
        this.context.fetcher.stats.receivedBytes += bytes.byteLength
        this.rememberSources(digest, [peer])

        // The wait is registered before the write becomes visible to
        // storeNow, so that storeNow can always start it.
        const written = this.writeBehind.wait(digest, options.storeAtOnce === true).then(async () => this.writeVerified(digest, bytes))
        this.pendingWrites.set(digest, written)
        try {
          return await written
        } finally {
          this.pendingWrites.delete(digest)
        }
      })

      if (arriving.sizeBytes >= STREAM_TO_CLIENT_MIN_BYTES) {
        return { arriving, stored }
      }
      const bytes = await arriving.done
      if (bytes != null) {
        return { bytes, stored }
      }
      options.signal?.throwIfAborted()
    }
    return undefined
  }

  /** Stores bytes that match `digest`, unless a pull stored the blob meanwhile. Returns false when the write failed. */
  private async writeVerified (digest: OciDigest, bytes: Uint8Array): Promise<boolean> {
    if (await this.context.store.has(digest)) {
      return true
    }

    // receiveBody hashed these bytes as they arrived, and `done` gives them only once they matched.
    try {
      await this.context.store.putVerified(bytes, digest)
      return true
    } catch (err: any) {
      log.error('could not store %s after fetching it: %e', digest, err)
      return false
    }
  }

  /** Returns the largest blob fetched into memory for this request: the memory limit, or the request's own limit when lower. */
  private memoryLimitBytes (options: FetchBlobOptions): number {
    return Math.min(this.maxMemoryFetchBytes, options.maxSizeBytes ?? Infinity)
  }

  /** Returns the remembered sources of a blob, else of its parent, that are connected and not penalised. */
  private preferredPeers (digest: OciDigest, parent: OciDigest | undefined): PeerId[] {
    const hinted = this.sourceHints.get(digest) ?? (parent == null ? undefined : this.sourceHints.get(parent)) ?? []
    return hinted.filter(peer => !this.context.penalties.isPenalised(peer.toString()) && this.context.node.getConnections(peer).length > 0)
  }

  private rememberSources (digest: OciDigest, peers: PeerId[]): void {
    if (peers.length === 0) {
      return
    }

    setMostRecent(this.sourceHints, digest, peers, MAX_SOURCE_HINTS)
  }

  async publishTag (repository: string, tag: string, descriptor: Descriptor, options?: AbortOptions): Promise<string | undefined> {
    await publishTag(this.context, repository, tag, descriptor, options)
    const warning = rejectedElsewhere(this.context.catalog.trust, this.context.peerId, repository)
    if (warning != null) {
      log('a client pushed %s:%s, but %s', repository, tag, warning)
    }
    return warning
  }

  async deleteTag (repository: string, tag: string, options?: AbortOptions): Promise<boolean> {
    return deleteTag(this.context, repository, tag, options)
  }

  async listRepositories (): Promise<string[]> {
    const names = new Set<string>()
    for (const { record } of this.context.catalog.list()) {
      if (!record.deleted) {
        names.add(record.repository)
      }
    }
    return [...names].sort()
  }

  async listTags (repository: string): Promise<string[]> {
    return this.context.catalog.list()
      .filter(({ record }) => record.repository === repository && !record.deleted)
      .map(({ record }) => record.tag)
      .sort()
  }
}

/** Starts the registry API on `host:port` and returns the bound address. */
export async function startRegistry (context: AgentContext, address: { host: string, port: number }): Promise<{ address: string, stop: () => Promise<void> }> {
  const tls = parseRegistryTls(context.config.registryTls, context.dir)
  const backend = new AgentRegistryBackend(context)
  const server = new RegistryServer(backend, {
    host: address.host,
    port: address.port,
    uploadFolder: context.paths.uploads,
    tls
  })
  const bound = await server.start()
  const host = bound.host.includes(':') ? `[${bound.host}]` : bound.host
  log('registry API listening on %s://%s:%d', tls == null ? 'http' : 'https', host, bound.port)

  const stop = async (): Promise<void> => {
    await server.stop()
    await backend.flushWrites()
    backend.stopWatchingWrites()
  }
  return { address: `${host}:${bound.port}`, stop }
}

/**
 * Reads config.json's optional `registryTls: { "certFile": PATH, "keyFile": PATH }`
 * (PEM files; relative paths are taken from the data directory).
 */
export function parseRegistryTls (value: unknown, dir: string): { certFile: string, keyFile: string } | undefined {
  if (value == null) {
    return undefined
  }

  const section = value as Record<string, unknown>
  if (typeof value !== 'object' || typeof section.certFile !== 'string' || typeof section.keyFile !== 'string') {
    throw new InvalidConfigError(`"registryTls" in config.json must be { "certFile": "PATH", "keyFile": "PATH" } naming PEM files, got ${JSON.stringify(value)}`)
  }
  return { certFile: resolve(dir, section.certFile), keyFile: resolve(dir, section.keyFile) }
}
