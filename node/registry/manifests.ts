/**
 * `GET`, `HEAD` and `DELETE /v2/<name>/manifests/<reference>`, by tag or by
 * digest. A tag is resolved by the agent (local catalog, then peers) and a
 * manifest that is not local is fetched through the mesh, both within
 * bounded times, so a client with no source gets MANIFEST_UNKNOWN quickly.
 * `PUT` lives in manifest-push.ts.
 */
import { logger } from '@libp2p/logger'
import { MAX_MANIFEST_BYTES } from '../../protocol/constants.js'
import type { OciDigest } from '../../protocol/digest.js'
import { childDescriptors, parseManifest, type ParsedManifest } from '../image/manifest.js'
import { localPlatform, selectManifests, selectNestedManifests, type PlatformSelection } from '../image/platform.js'
import { ensureLocal, withTimeout, type MethodHandlers, type RegistryRequest } from './context.js'
import { RegistryError } from './errors.js'
import { sendEmpty } from './http.js'
import { manifestPushHandler } from './manifest-push.js'
import { parseManifestReference } from './manifest-reference.js'
import { describeAccepted, isAccepted, parseAccept, type AcceptedTypes } from './negotiation.js'
import type { Descriptor } from '../image/manifest.js'

const log = logger('kilomesh:registry:manifests')

/** A manifest loaded from the store, with its digest and parsed form. */
interface LoadedManifest {
  digest: OciDigest
  bytes: Uint8Array
  manifest: ParsedManifest
}

/**
 * Resolves a tag through the agent within the resolve timeout. A timeout or
 * a failed lookup returns undefined (an unknown tag), because containerd
 * only falls back to its next mirror on a 404.
 */
async function resolveTag (request: RegistryRequest, repository: string, tag: string): Promise<Descriptor | undefined> {
  const { backend, limits } = request.context
  try {
    return await backend.resolveTag(repository, tag, { signal: withTimeout(request.signal, limits.resolveTimeoutMs) })
  } catch (err) {
    if (request.signal.aborted) {
      throw new RegistryError('UNAVAILABLE', `request for ${repository}:${tag} was cancelled`)
    }

    log('resolving %s:%s failed - %e', repository, tag, err)
    return undefined
  }
}

/**
 * Loads and parses a manifest by digest, fetching it through the mesh when
 * it is not local (`parent` is the index that lists it, if any). Returns
 * undefined when no source has it, or when the blob is too large or not a
 * manifest (a layer asked for as a manifest).
 */
async function loadManifest (request: RegistryRequest, digest: OciDigest, hint?: Descriptor, parent?: OciDigest): Promise<LoadedManifest | undefined> {
  const store = request.context.backend.store
  // Without a descriptor, the limit keeps a layer requested as a manifest
  // from being downloaded before it is found not to be one.
  const fetched = await ensureLocal(request, digest, { sizeBytes: hint?.size, maxSizeBytes: MAX_MANIFEST_BYTES, parent })
  if (fetched == null) {
    return undefined
  }

  // A manifest fetched into memory is served from there, without waiting
  // for the store to write it and read it back.
  let bytes = fetched.bytes
  if (bytes == null) {
    const info = await store.stat(digest)
    if (info == null || info.sizeBytes > MAX_MANIFEST_BYTES) {
      return undefined
    }
    bytes = await store.read(digest, { signal: request.signal })
  } else if (bytes.byteLength > MAX_MANIFEST_BYTES) {
    return undefined
  }

  try {
    return { digest, bytes, manifest: parseManifest(bytes, hint?.mediaType) }
  } catch {
    return undefined
  }
}

/**
 * Picks the manifest of this agent's own platform from an index, for a
 * client that does not accept indexes, descending into nested indexes. The
 * reference registry does the same for linux/amd64.
 */
async function selectForPlatform (request: RegistryRequest, loaded: LoadedManifest, accepted: AcceptedTypes): Promise<LoadedManifest | undefined> {
  if (loaded.manifest.kind !== 'index') {
    return undefined
  }

  // Each manifest is fetched with the index that lists it as its parent,
  // whose source most likely has it too.
  const parents = new Map<OciDigest, OciDigest>(loaded.manifest.manifests.map(child => [child.digest, loaded.digest]))
  const loadIndex = async (descriptor: Descriptor): Promise<ParsedManifest> => {
    const nested = await loadManifest(request, descriptor.digest, descriptor, parents.get(descriptor.digest))
    if (nested == null) {
      throw new RegistryError('MANIFEST_UNKNOWN', `nested index ${descriptor.digest} is not in this agent's store and no peer in reach returned it in time`)
    }
    if (nested.manifest.kind === 'index') {
      for (const child of nested.manifest.manifests) {
        parents.set(child.digest, descriptor.digest)
      }
    }
    return nested.manifest
  }

  let selection: PlatformSelection
  try {
    selection = await selectNestedManifests(loaded.manifest, loaded.digest, localPlatform(), loadIndex, { signal: request.signal })
  } catch (err) {
    if (request.signal.aborted) {
      throw err
    }
    log('selecting this platform from index %s failed - %e', loaded.digest, err)
    return undefined
  }

  const candidates = selection.manifests.filter(descriptor => isAccepted(accepted, descriptor.mediaType))
  for (const candidate of candidates) {
    const child = await loadManifest(request, candidate.digest, candidate, parents.get(candidate.digest))
    if (child != null) {
      return child
    }
  }
  return undefined
}

/** Serves a manifest by tag or digest, with content negotiation. */
async function serveManifest (request: RegistryRequest, repository: string, referenceText: string): Promise<void> {
  const { req, res } = request
  const reference = parseManifestReference(referenceText)
  const referenceLabel = reference.tag != null ? `${repository}:${reference.tag}` : `${repository}@${reference.digest}`

  let descriptor: Descriptor | undefined
  if (reference.tag != null) {
    descriptor = await resolveTag(request, repository, reference.tag)
    if (descriptor == null) {
      throw new RegistryError('MANIFEST_UNKNOWN', `manifest ${referenceLabel} is unknown: no agent in reach has the tag (list tags with GET /v2/${repository}/tags/list)`)
    }
  }

  const digest = descriptor?.digest ?? reference.digest
  let loaded = digest == null ? undefined : await loadManifest(request, digest, descriptor)
  if (loaded == null) {
    throw new RegistryError('MANIFEST_UNKNOWN', `manifest ${referenceLabel} is unknown: it is not in this agent's store, no peer in reach returned it in time, or the blob is not a manifest`)
  }

  const accepted = parseAccept(req.headersDistinct.accept ?? [])
  if (!isAccepted(accepted, loaded.manifest.mediaType)) {
    const mediaType = loaded.manifest.mediaType
    loaded = await selectForPlatform(request, loaded, accepted)
    if (loaded == null) {
      throw new RegistryError('MANIFEST_UNKNOWN', `manifest ${referenceLabel} has media type ${mediaType}, which the request does not accept (Accept: ${describeAccepted(accepted)}); add it to the Accept header, or remove its q=0 entry`)
    }
  }

  // The client requests these next, so fetching them now overlaps the mesh round trips.
  request.context.prefetcher.start(childDescriptors(loaded.manifest), loaded.digest)
  // For an index, the image of this device's platform is the likely next
  // pull, so its blobs are fetched as well. Other platforms' layers are
  // left alone: a device would download every architecture for nothing.
  if (loaded.manifest.kind === 'index') {
    const local = selectManifests(loaded.manifest, localPlatform())[0]
    if (local != null) {
      request.context.prefetcher.startChildrenOf(local)
    }
  }

  res.statusCode = 200
  res.setHeader('Content-Type', loaded.manifest.mediaType)
  res.setHeader('Content-Length', loaded.bytes.byteLength)
  res.setHeader('Docker-Content-Digest', loaded.digest)
  res.setHeader('ETag', `"${loaded.digest}"`)
  res.end(req.method === 'HEAD' ? undefined : loaded.bytes)
}

/**
 * Deletes a tag, or by digest every tag of the repository that points at
 * that manifest, each as a signed tombstone. The manifest blob stays in the
 * shared content store until garbage collection, because other repositories
 * may use it.
 */
async function deleteManifest (request: RegistryRequest, repository: string, referenceText: string): Promise<void> {
  const { backend, limits } = request.context
  const reference = parseManifestReference(referenceText)
  const options = { signal: withTimeout(request.signal, limits.resolveTimeoutMs) }

  if (reference.tag != null) {
    if (!await backend.deleteTag(repository, reference.tag, options)) {
      throw new RegistryError('MANIFEST_UNKNOWN', `tag ${repository}:${reference.tag} is unknown, so there is nothing to delete`)
    }
    sendEmpty(request.res, 202)
    return
  }

  let deleted = 0
  for (const tag of await backend.listTags(repository, options)) {
    const current = await backend.resolveTag(repository, tag, options)
    if (current?.digest === reference.digest && await backend.deleteTag(repository, tag, options)) {
      deleted++
    }
  }

  if (deleted === 0 && !await backend.store.has(reference.digest)) {
    throw new RegistryError('MANIFEST_UNKNOWN', `manifest ${repository}@${reference.digest} is unknown: no tag of the repository points at it and it is not in this agent's store`)
  }

  sendEmpty(request.res, 202)
}

/** Handlers of `/v2/<name>/manifests/<reference>`. */
export const manifestHandlers: MethodHandlers<'manifest'> = {
  GET: async (request, resource) => {
    await serveManifest(request, resource.repository.repository, resource.reference)
  },
  PUT: manifestPushHandler,
  DELETE: async (request, resource) => {
    await deleteManifest(request, resource.repository.repository, resource.reference)
  }
}
