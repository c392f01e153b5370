/**
 * Pulling: resolve a tag (locally, else by asking connected peers), fetch the
 * manifest, the platform manifests the caller selected, then configs and
 * layers, and optionally export the image as an OCI image layout.
 */
import { setMaxListeners } from 'node:events'
import { logger } from '@libp2p/logger'
import { parseReference, type ImageReference } from '../../protocol/reference.js'
import { childDescriptors, parseManifest, type Descriptor, type ParsedManifest, type Platform } from '../image/manifest.js'
import { isIndexMediaType } from '../image/media-types.js'
import { formatPlatform, localPlatform, MAX_INDEX_NESTING_DEPTH, platformMatches, selectNestedManifests } from '../image/platform.js'
import { connectedPeers } from '../net/peers.js'
import { resolveFromPeers } from '../net/resolve.js'
import { sleep } from '../net/signals.js'
import { CorruptBlobError } from '../store/errors.js'
import { PullTimeoutError, TagNotFoundError } from './errors.js'
import type { AgentContext } from './agent.js'
import type { FetchedBlobInfo, FetchProgress } from '../fetch/fetcher.js'
import type { AbortOptions, PeerId } from '@libp2p/interface'

const log = logger('kilomesh:pull')

/** Blobs fetched at once while pulling one image. */
const PULL_CONCURRENCY = 4

/** Time between two requests for a tag that no peer knew yet, while a pull waits for sources, in ms. */
const TAG_RETRY_MS = 1_000

export interface PullOptions extends AbortOptions {
  /** Layout folder to export the image to. */
  to?: string
  /** Platform to take from an index; the local platform when omitted. */
  platform?: Platform | 'all'
  /**
   * The user named `platform`, so a single-platform image for another
   * platform is an error rather than the only image there is.
   */
  platformRequired?: boolean
  onProgress?: (progress: FetchProgress) => void
  /**
   * How long each blob fetch keeps looking when no peer has the blob yet
   * (see FetchOptions), and how long the pull requests a tag that no peer
   * has yet again.
   */
  waitForSourcesMs?: number
  /** Maximum random wait before the first DHT lookup of each blob (see FetchOptions). */
  firstLookupDelayMaxMs?: number
  /**
   * Peers to fetch from first when the reference names a digest, such as the
   * publisher of the tag record that led to it. A tag finds its own.
   */
  preferredPeers?: PeerId[]
}

export interface PullResult {
  reference: string
  /** Descriptor of the image that was pulled: the tag's manifest or index, or one platform's manifest. */
  digest: string
  mediaType: string
  /**
   * Platforms that `digest` covers when the pull went through an index:
   * every platform the index lists for `--platform all`, else the one taken.
   */
  platforms?: string[]
  blobCount: number
  /** Blobs that were not local and came from peers. */
  fetchedBlobs: number
  fetchedBytes: number
  exportedTo?: string
}

/**
 * Resolves a tag to the descriptor of its current manifest. Also returns the
 * peers to fetch it from first: those that returned the winning record when
 * the tag was asked of peers, else its publisher when connected, which
 * almost always has what it published.
 */
export async function resolveTag (context: AgentContext, repository: string, tag: string, options: AbortOptions = {}): Promise<{ descriptor: Descriptor, sources: PeerId[] } | undefined> {
  let sources: PeerId[] = []
  let current = context.catalog.get(repository, tag)

  if (current == null) {
    sources = await resolveFromPeers(context.node, context.catalog, repository, tag, options)
    current = context.catalog.get(repository, tag)
  }

  if (current == null || current.record.deleted || current.record.digest == null) {
    return undefined
  }

  if (sources.length === 0) {
    const publisher = current.record.publisher
    const connected = connectedPeers(context.node).get(publisher)
    if (connected != null) {
      sources = [connected]
    }
  }

  const { digest, mediaType, sizeBytes } = current.record
  return { descriptor: { digest, mediaType, size: sizeBytes }, sources }
}

/** `kilomesh pull`: makes an image local and optionally exports it. */
export async function pullImage (context: AgentContext, reference: string, options: PullOptions = {}): Promise<PullResult> {
  const parsed = parseReference(reference)
  const before = { ...context.fetcher.stats }

  // Every blob fetch of this pull, and every stream it opens, listens on this signal.
  if (options.signal != null) {
    setMaxListeners(Infinity, options.signal)
  }

  try {
    return await pullParsed(context, parsed, reference, options, before)
  } catch (err: any) {
    if (options.signal?.aborted === true && err === options.signal.reason) {
      throw new PullTimeoutError(`pull of ${reference} did not finish in time; check "kilomesh peers" for connected peers, or raise --timeout`)
    }
    throw err
  }
}

async function pullParsed (context: AgentContext, parsed: ImageReference, reference: string, options: PullOptions, before: { fetchedBlobs: number, receivedBytes: number }): Promise<PullResult> {
  let root: Descriptor | undefined
  let sources: PeerId[] = options.preferredPeers ?? []

  if (parsed.digest != null) {
    root = { digest: parsed.digest, mediaType: '', size: -1 }
  } else {
    // A tag may reach this agent a moment after the pull starts, while its
    // record spreads, so within the wait for sources the pull requests it again.
    const waitUntilMs = Date.now() + (options.waitForSourcesMs ?? 0)
    let resolved = await resolveTag(context, parsed.repository, parsed.tag, options)
    while (resolved == null && context.catalog.get(parsed.repository, parsed.tag) == null && Date.now() + TAG_RETRY_MS <= waitUntilMs) {
      await sleep(TAG_RETRY_MS, options.signal)
      resolved = await resolveTag(context, parsed.repository, parsed.tag, options)
    }
    const tombstone = context.catalog.get(parsed.repository, parsed.tag)
    if (resolved == null && tombstone?.record.deleted === true) {
      throw new TagNotFoundError(`tag ${reference} was deleted by ${tombstone.record.publisher} at ${new Date(tombstone.record.hlc.wallMs).toISOString()}; pull an image by digest (REPOSITORY@sha256:...), or publish the tag again`)
    }
    if (resolved == null) {
      throw new TagNotFoundError(`tag ${reference} is not known to this agent or to its ${context.node.getPeers().length} connected peer(s); check the name, or connect to a peer that has it`)
    }
    root = resolved.descriptor
    sources = resolved.sources
  }

  const platform = options.platform ?? localPlatform()
  const fetchOne = async (descriptor: Descriptor, onVerified?: (bytes: Uint8Array) => void): Promise<void> => {
    const fetch = async (): Promise<FetchedBlobInfo> => context.fetcher.fetch(descriptor.digest, {
      signal: options.signal,
      sizeBytes: descriptor.size >= 0 ? descriptor.size : undefined,
      preferredPeers: sources,
      onProgress: options.onProgress,
      waitForSourcesMs: options.waitForSourcesMs,
      firstLookupDelayMaxMs: options.firstLookupDelayMaxMs,
      onVerified
    })
    let info = await fetch()
    if (info.fetched) {
      return
    }

    // A blob that was already here is checked, and fetched again from a
    // peer when the check finds it corrupt and removes it. Its modification
    // time is its last use for eviction, so it is touched. A blob stored
    // just now already has a fresh one.
    try {
      await context.store.verify(descriptor.digest, options)
    } catch (err) {
      if (!(err instanceof CorruptBlobError)) {
        throw err
      }
      log('local copy of %s was corrupt, fetching it again: %s', descriptor.digest, err.message)
      info = await fetch()
    }
    if (!info.fetched) {
      await context.store.touch(descriptor.digest)
    }
  }

  // The root manifest is parsed as soon as its bytes match the digest, so
  // its children are requested while the store still makes it durable. The
  // pull waits for that write before it names the image anywhere.
  let verifiedRoot: Uint8Array | undefined
  let announceRoot = (): void => {}
  const rootVerified = new Promise<void>(resolve => { announceRoot = resolve })
  const rootStored = fetchOne(root, bytes => { verifiedRoot = bytes; announceRoot() })
  // Awaited before the pull returns. This keeps a failure meanwhile from going unhandled.
  rootStored.catch(() => {})
  await Promise.race([rootVerified, rootStored])
  const rootBytes = verifiedRoot ?? await context.store.read(root.digest, options)
  const rootManifest = parseManifest(rootBytes, root.mediaType === '' ? undefined : root.mediaType)
  root = { ...root, mediaType: rootManifest.mediaType, size: rootBytes.byteLength }

  // The image that ends up complete: the root, or one platform's manifest when
  // a single platform is taken from an index, as `skopeo copy` does.
  let image: Descriptor = root
  let platforms: string[] | undefined
  const leaves: Descriptor[] = []
  let blobCount = 1

  // Digests that count as this version for holdsVersion: the root's
  // children, and every index and manifest the selection went through.
  const versionDigests = new Set<string>(rootManifest.kind === 'index' ? rootManifest.manifests.map(child => child.digest) : [])

  if (rootManifest.kind === 'index') {
    // Nested indexes are fetched one level at a time, as the walk reaches them.
    const loadIndex = async (child: Descriptor): Promise<ReturnType<typeof parseManifest>> => {
      await fetchOne(child)
      return parseManifest(await context.store.read(child.digest, options), child.mediaType)
    }
    const selection = await selectNestedManifests(rootManifest, root.digest, platform, loadIndex, options)
    const selected = selection.manifests
    if (selected.length === 0) {
      const available = selection.availablePlatforms.length === 0 ? 'none listed' : selection.availablePlatforms.join(', ')
      throw new TagNotFoundError(`${reference} has no manifest for platform ${typeof platform === 'string' ? platform : formatPlatform(platform)}; available: ${available}; pass --platform`)
    }

    await runLimited(selected, async child => { await fetchOne(child) })
    for (const child of selected) {
      const manifest = parseManifest(await context.store.read(child.digest, options), child.mediaType)
      leaves.push(...childDescriptors(manifest))
    }
    for (const child of [...selection.indexes, ...selected]) {
      versionDigests.add(child.digest)
    }
    blobCount += selection.indexes.length + selected.length
    if (selected.length === 1 && platform !== 'all' && selected[0] != null) {
      image = selected[0]
    }
    platforms = platform === 'all' ? selection.availablePlatforms : [...new Set(selected.map(child => formatPlatform(child.platform ?? platform)))]
  } else {
    // A single image given with an explicit --platform must be for that
    // platform. Its config names the platform, so it is fetched first.
    if (options.platformRequired === true && options.platform != null && options.platform !== 'all' && rootManifest.kind === 'image') {
      await fetchOne(rootManifest.config)
      checkImagePlatform(await context.store.read(rootManifest.config.digest, options), options.platform, reference)
    }
    leaves.push(...childDescriptors(rootManifest))
  }

  await runLimited(leaves, async leaf => { await fetchOne(leaf) })
  await rootStored
  blobCount += leaves.length

  // With --platform all this device stores every platform of the index, so
  // the tag names the index, as `skopeo copy --all` does, even where it
  // named one platform before.
  const pulledEveryPlatform = platform === 'all' && rootManifest.kind === 'index'
  if (parsed.tag != null && !await holdsVersion(context, `${parsed.repository}:${parsed.tag}`, root, rootManifest, versionDigests, pulledEveryPlatform, options)) {
    await context.layout.setRef(`${parsed.repository}:${parsed.tag}`, { mediaType: image.mediaType, digest: image.digest, size: image.size })
  }

  let exportedTo: string | undefined
  if (options.to != null) {
    // Loaded on first use, so that it stays out of the agent's start.
    const { exportImage } = await import('../image/export.js')
    await exportImage(context.store, root, options.to, parsed.tag ?? parsed.digest ?? '', { signal: options.signal, platform })
    exportedTo = options.to
  }

  const result: PullResult = {
    reference,
    digest: image.digest,
    mediaType: image.mediaType,
    ...(platforms == null ? {} : { platforms }),
    blobCount,
    fetchedBlobs: context.fetcher.stats.fetchedBlobs - before.fetchedBlobs,
    fetchedBytes: context.fetcher.stats.receivedBytes - before.receivedBytes,
    exportedTo
  }
  log('pulled %s -> %s (%d blobs, %d fetched)', reference, image.digest, blobCount, result.fetchedBlobs)
  return result
}

/**
 * Returns true when the data directory's tag already names this version:
 * its root, or one of the manifests or nested indexes under the root
 * (`versionDigests`, and the nested indexes this device holds). A pull of
 * one platform then leaves the tag alone, so a device that has the whole
 * index (such as the publisher), or another platform of a nested index,
 * keeps it after exporting another platform with --to. With `rootOnly`
 * (a pull of every platform) only the root counts.
 */
async function holdsVersion (context: AgentContext, refName: string, root: Descriptor, rootManifest: ParsedManifest, versionDigests: Set<string>, rootOnly: boolean, options: AbortOptions): Promise<boolean> {
  const current = (await context.layout.refs(options)).get(refName)
  if (current == null) {
    return false
  }
  if (current.digest === root.digest) {
    return true
  }
  if (rootOnly) {
    return false
  }
  if (versionDigests.has(current.digest)) {
    return true
  }
  return rootManifest.kind === 'index' && await isUnderLocalIndexes(context, rootManifest, current.digest, MAX_INDEX_NESTING_DEPTH, options)
}

/** Returns true when `digest` is a child of `index` or of a nested index in this device's store, at most `depth` levels down. */
async function isUnderLocalIndexes (context: AgentContext, index: ParsedManifest & { kind: 'index' }, digest: string, depth: number, options: AbortOptions): Promise<boolean> {
  for (const child of index.manifests) {
    if (child.digest === digest) {
      return true
    }
    if (depth <= 1 || !isIndexMediaType(child.mediaType) || !await context.store.has(child.digest)) {
      continue
    }

    const nested = parseManifest(await context.store.read(child.digest, options), child.mediaType)
    if (nested.kind === 'index' && await isUnderLocalIndexes(context, nested, digest, depth - 1, options)) {
      return true
    }
  }
  return false
}

/**
 * Throws TagNotFoundError when an image config names an os or architecture
 * other than `platform`. A config without them (such as an artifact's) passes.
 */
function checkImagePlatform (configBytes: Uint8Array, platform: Platform, reference: string): void {
  let config: { os?: unknown, architecture?: unknown, variant?: unknown }
  try {
    config = JSON.parse(new TextDecoder().decode(configBytes))
  } catch {
    return
  }
  if (typeof config.os !== 'string' || typeof config.architecture !== 'string') {
    return
  }

  const actual: Platform = { os: config.os, architecture: config.architecture, ...(typeof config.variant === 'string' ? { variant: config.variant } : {}) }
  if (!platformMatches(actual, platform)) {
    throw new TagNotFoundError(`${reference} is an image for ${formatPlatform(actual)}, not ${formatPlatform(platform)}; pass --platform ${formatPlatform(actual)}, or omit --platform`)
  }
}

/** Runs `task` over `items` with at most PULL_CONCURRENCY at once; the first failure rejects. */
async function runLimited<T> (items: T[], task: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  const workers = Array.from({ length: Math.min(PULL_CONCURRENCY, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next++] as T
      await task(item)
    }
  })
  await Promise.all(workers)
}
