/**
 * `PUT /v2/<name>/manifests/<reference>`: stores a manifest or index and,
 * for a tag, signs and announces the tag record through the agent, as
 * `kilomesh publish` does.
 *
 * Every blob the manifest references (config and layers, or the child
 * manifests of an index) must be present, locally or from the mesh within
 * the fetch timeout, with the size its descriptor gives. Otherwise the push
 * is rejected with MANIFEST_BLOB_UNKNOWN or MANIFEST_INVALID before anything
 * is stored: a tag announced to the whole mesh must never point at an image
 * that no device can pull. The OCI distribution spec allows a registry to
 * reject such pushes. A `subject` need not be present, as the spec requires.
 */
import { logger } from '@libp2p/logger'
import { MAX_MANIFEST_BYTES } from '../../protocol/constants.js'
import { digestOf } from '../../protocol/digest.js'
import { InvalidManifestError } from '../image/errors.js'
import { childDescriptors, parseManifest, type Descriptor, type ParsedManifest } from '../image/manifest.js'
import {
  DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST_SCHEMA1, DOCKER_MANIFEST_SCHEMA1_SIGNED, OCI_INDEX, OCI_MANIFEST,
  isIndexMediaType, isManifestMediaType, normalizeMediaType
} from '../image/media-types.js'
import { ensureLocal, type RegistryRequest, type ResourceHandler } from './context.js'
import { RegistryError } from './errors.js'
import { readBody, sendEmpty } from './http.js'
import { parseManifestReference } from './manifest-reference.js'
import { mapLimited } from '../util/map-limited.js'
import { repositoryPath } from './route.js'

const log = logger('kilomesh:registry:manifests')

/** Media types a manifest may be pushed as: the manifest and index types kilomesh stores. */
const PUSHABLE_MEDIA_TYPES = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST]

/** Generic JSON Content-Type, which leaves the media type to the body's own mediaType field, as a missing header does. */
const GENERIC_JSON = 'application/json'

/** Lists the Content-Types a push accepts, for error messages. */
function describePushableTypes (): string {
  return `${PUSHABLE_MEDIA_TYPES.join(', ')}, or ${GENERIC_JSON} (or none) when the manifest names its own mediaType`
}

/** Returns the body's own mediaType field, or undefined when it has none or is not JSON (parseManifest reports that). */
function bodyMediaType (bytes: Uint8Array): string | undefined {
  try {
    const body: unknown = JSON.parse(new TextDecoder().decode(bytes))
    const mediaType = (body as { mediaType?: unknown } | null)?.mediaType
    return typeof mediaType === 'string' ? mediaType : undefined
  } catch {
    return undefined
  }
}

/**
 * Checks the Content-Type of a pushed manifest and returns it as the media
 * type hint for parseManifest. A manifest or index type is the hint, and
 * must match the body's mediaType when the body has one. A missing header
 * or application/json leaves the type to the body. Schema 1 types pass on
 * so that parseManifest's error explains how to convert the image. Any
 * other type (such as text/plain) is rejected with MANIFEST_INVALID,
 * because the type decides how every client reads the bytes.
 */
function mediaTypeHint (contentType: string | undefined, bytes: Uint8Array): string | undefined {
  const sent = contentType == null ? '' : normalizeMediaType(contentType)
  if (sent === '' || sent === GENERIC_JSON) {
    return undefined
  }
  if (sent === DOCKER_MANIFEST_SCHEMA1 || sent === DOCKER_MANIFEST_SCHEMA1_SIGNED) {
    return sent
  }

  if (!isManifestMediaType(sent) && !isIndexMediaType(sent)) {
    throw new RegistryError('MANIFEST_INVALID', `manifest pushed with Content-Type ${JSON.stringify(contentType)}, which is not a manifest media type; send one of ${describePushableTypes()}`)
  }

  // A mediaType field with parameters is invalid whatever Content-Type is sent,
  // and parseManifest names that cause and its fix.
  const own = bodyMediaType(bytes)
  if (own != null && !own.includes(';') && own !== sent) {
    throw new RegistryError('MANIFEST_INVALID', `manifest pushed with Content-Type ${JSON.stringify(sent)} has mediaType ${JSON.stringify(own)}; send Content-Type: ${own}, which must be one of ${describePushableTypes()}`)
  }
  return sent
}

function parsePushedManifest (bytes: Uint8Array, contentType: string | undefined): ParsedManifest {
  const hint = mediaTypeHint(contentType, bytes)
  try {
    return parseManifest(bytes, hint)
  } catch (err) {
    if (err instanceof InvalidManifestError) {
      throw new RegistryError('MANIFEST_INVALID', err.message)
    }
    throw err
  }
}

/** Blobs of one pushed manifest that may be fetched through the mesh. A manifest missing more is rejected. */
export const MAX_MESH_FETCHES_PER_MANIFEST = 64

/** Mesh fetches of one pushed manifest's blobs that run at once. */
const MESH_FETCH_CONCURRENCY = 8

/** Store lookups of one pushed manifest's blobs that run at once. */
const STORE_CHECK_CONCURRENCY = 64

/** Returns the MANIFEST_BLOB_UNKNOWN error naming up to five of the `missing` blobs and why they cannot be used. */
function missingBlobs (missing: Descriptor[], reason: string): RegistryError {
  const list = missing.slice(0, 5).map(child => child.digest).join(', ')
  const more = missing.length > 5 ? ` and ${missing.length - 5} more` : ''
  return new RegistryError('MANIFEST_BLOB_UNKNOWN', `manifest references ${missing.length} blob(s) that cannot be used: ${reason}: ${list}${more}; push the blobs before the manifest`)
}

/** Checks that every referenced blob is present with its declared size, fetching missing ones through the mesh. */
async function requireChildren (request: RegistryRequest, manifest: ParsedManifest): Promise<void> {
  const store = request.context.backend.store
  const children = childDescriptors(manifest)

  // A manifest may list one blob twice, and may list tens of thousands, so
  // each digest is looked up once, a bounded number at a time.
  const unique = [...new Map(children.map(child => [child.digest, child])).values()]
  const local = await mapLimited(unique, STORE_CHECK_CONCURRENCY, async child => store.has(child.digest))
  const absent = unique.filter((_child, i) => !local[i])
  // Each absent blob costs a mesh fetch of up to the fetch timeout, so a
  // manifest that lists thousands of unknown blobs is rejected at once.
  if (absent.length > MAX_MESH_FETCHES_PER_MANIFEST) {
    throw missingBlobs(absent, `more than ${MAX_MESH_FETCHES_PER_MANIFEST} are not in this agent's store, so none was fetched through the mesh`)
  }

  // The tag about to be published must find every child in the store, so a
  // blob fetched into memory counts only once it has been written there.
  const stored = await mapLimited(absent, MESH_FETCH_CONCURRENCY, async child => {
    const fetched = await ensureLocal(request, child.digest, { sizeBytes: child.size, storeAtOnce: true })
    return fetched != null && await fetched.stored
  })
  const missing = absent.filter((_child, i) => !stored[i])
  if (missing.length > 0) {
    throw missingBlobs(missing, 'this agent does not have them and no peer returned them in time')
  }

  for (const child of children) {
    const info = await store.stat(child.digest)
    if (info != null && info.sizeBytes !== child.size) {
      throw new RegistryError('MANIFEST_INVALID', `manifest gives blob ${child.digest} a size of ${child.size} bytes, but the blob has ${info.sizeBytes} bytes`)
    }
  }
}

/** Handler of `PUT /v2/<name>/manifests/<reference>`. */
export const manifestPushHandler: ResourceHandler<'manifest'> = async (request, resource) => {
  const { context, req, res, signal } = request
  const name = resource.repository
  const reference = parseManifestReference(resource.reference)

  const bytes = await readBody(req, MAX_MANIFEST_BYTES, 'MANIFEST_TOO_LARGE', 'manifest')
  const manifest = parsePushedManifest(bytes, req.headers['content-type'])

  const digest = digestOf(bytes)
  if (reference.digest != null && reference.digest !== digest) {
    throw new RegistryError('DIGEST_INVALID', `manifest pushed as ${reference.digest} hashes to ${digest}: push it by tag, or by the digest of the exact bytes sent`)
  }

  await requireChildren(request, manifest)
  await context.backend.store.put(bytes, digest, { signal })
  context.referrers.add(digest, bytes)

  const descriptor: Descriptor = { mediaType: manifest.mediaType, digest, size: bytes.byteLength }
  let warning: string | undefined
  if (reference.tag != null) {
    warning = await context.backend.publishTag(name.repository, reference.tag, descriptor, { signal })
    log('published %s:%s as %s', name.repository, reference.tag, digest)
  } else {
    log('stored manifest %s in %s', digest, name.repository)
  }

  const headers: Record<string, string> = {
    Location: repositoryPath(name, `manifests/${digest}`),
    'Docker-Content-Digest': digest
  }
  // The push succeeded here, but the tag may not spread. The distribution
  // spec's main branch lets a registry add Warning headers with code 299
  // to any response, for clients to show.
  if (warning != null) {
    headers.Warning = `299 - ${JSON.stringify(warning)}`
  }
  if (manifest.kind === 'image' && manifest.subject != null) {
    // Tells the client that this registry indexes referrers itself, so it
    // need not maintain the fallback referrers tag.
    headers['OCI-Subject'] = manifest.subject.digest
  }
  sendEmpty(res, 201, headers)
}
