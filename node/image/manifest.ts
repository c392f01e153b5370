/**
 * Parsing and validation of OCI image manifests, OCI image indexes and their
 * Docker schema 2 counterparts. Everything read from outside (registry
 * pushes, peers, archives, layout folders) passes through `parseManifest`
 * before any of its digests is used as a file name or fetched.
 *
 * @see https://github.com/opencontainers/image-spec/blob/main/manifest.md
 * @see https://github.com/opencontainers/image-spec/blob/main/image-index.md
 */
import { MAX_MANIFEST_BYTES } from '../../protocol/constants.js'
import { isDigest, type OciDigest } from '../../protocol/digest.js'
import { InvalidManifestError, errorMessage } from './errors.js'
import {
  DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST_SCHEMA1, DOCKER_MANIFEST_SCHEMA1_SIGNED, OCI_INDEX, OCI_MANIFEST,
  isIndexMediaType, isManifestMediaType, normalizeMediaType
} from './media-types.js'

/** Operating system, CPU architecture and optional CPU variant of an image, as in an index's `platform` field. */
export interface Platform {
  os: string
  architecture: string
  variant?: string
}

/** A reference to a blob by media type, digest and size, with optional platform and annotations. */
export interface Descriptor {
  mediaType: string
  digest: OciDigest
  size: number
  platform?: Platform
  annotations?: Record<string, string>
}

/** A validated manifest: either one image (config plus layers) or an index of per-platform manifests. */
export type ParsedManifest =
  | { kind: 'image', mediaType: string, config: Descriptor, layers: Descriptor[], subject?: Descriptor }
  | { kind: 'index', mediaType: string, manifests: Descriptor[] }

// RFC 6838 type and subtype names, which is what a media type in a descriptor must be.
const MEDIA_TYPE_PATTERN = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$/

const SCHEMA1_HINT = 'Docker schema 1 manifests are not supported; convert the image first, for example with "skopeo copy --format oci"'

function show (value: unknown): string {
  if (typeof value !== 'string') {
    return value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value
  }

  return JSON.stringify(value.length > 100 ? `${value.slice(0, 100)}...` : value)
}

function isObject (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function parseString (value: unknown, path: string): string {
  if (typeof value !== 'string' || value === '') {
    throw new InvalidManifestError(`invalid ${path}: expected a non-empty string, got ${show(value)}`)
  }

  return value
}

function parsePlatformField (value: unknown, path: string): Platform {
  if (!isObject(value)) {
    throw new InvalidManifestError(`invalid ${path}: expected an object with "os" and "architecture", got ${show(value)}`)
  }

  const platform: Platform = {
    os: parseString(value.os, `${path}.os`),
    architecture: parseString(value.architecture, `${path}.architecture`)
  }
  if (value.variant != null) {
    platform.variant = parseString(value.variant, `${path}.variant`)
  }

  return platform
}

function parseAnnotations (value: unknown, path: string): Record<string, string> {
  if (!isObject(value)) {
    throw new InvalidManifestError(`invalid ${path}: expected an object of strings, got ${show(value)}`)
  }

  for (const [key, entry] of Object.entries(value)) {
    if (typeof entry !== 'string') {
      throw new InvalidManifestError(`invalid ${path}[${JSON.stringify(key)}]: annotation values must be strings, got ${show(entry)}`)
    }
  }

  return { ...value } as Record<string, string>
}

/**
 * Throws InvalidManifestError when a media type in a manifest, index or
 * descriptor carries parameters, such as `; charset=utf-8`. The OCI image
 * spec requires the exact type there (a manifest's own mediaType "MUST
 * contain" `application/vnd.oci.image.manifest.v1+json`), and the bytes
 * cannot be changed without changing the digest, so the fix is in the JSON.
 * An HTTP Content-Type header may carry parameters, and callers strip them
 * with normalizeMediaType before they pass it as a hint.
 *
 * @see https://github.com/opencontainers/image-spec/blob/main/manifest.md
 */
function rejectMediaTypeParameters (mediaType: string, path: string): void {
  const separator = mediaType.indexOf(';')
  if (separator < 0) {
    return
  }

  const bare = mediaType.slice(0, separator).trim()
  const parameters = mediaType.slice(separator).trim()
  throw new InvalidManifestError(`invalid ${path} ${show(mediaType)}: a media type inside an image manifest, index or descriptor must not carry parameters such as ${show(parameters)}; change the ${path} field to ${show(bare)} and write the manifest again (its digest changes). Parameters are valid only in an HTTP Content-Type header`)
}

/**
 * Validates one descriptor: a media type, a sha256 digest of 64 lowercase hex
 * characters and a non-negative safe-integer size. `path` names the field in
 * error messages, for example `layers[2]`.
 */
export function parseDescriptor (value: unknown, path = 'descriptor'): Descriptor {
  if (!isObject(value)) {
    throw new InvalidManifestError(`invalid ${path}: expected a descriptor object, got ${show(value)}`)
  }

  const mediaType = parseString(value.mediaType, `${path}.mediaType`)
  rejectMediaTypeParameters(mediaType, `${path}.mediaType`)
  if (!MEDIA_TYPE_PATTERN.test(mediaType)) {
    throw new InvalidManifestError(`invalid ${path}.mediaType ${show(mediaType)}: expected TYPE/SUBTYPE, for example "${OCI_MANIFEST}"`)
  }

  if (!isDigest(value.digest)) {
    throw new InvalidManifestError(`invalid ${path}.digest ${show(value.digest)}: expected "sha256:" followed by 64 lowercase hex characters`)
  }

  if (typeof value.size !== 'number' || !Number.isSafeInteger(value.size) || value.size < 0) {
    throw new InvalidManifestError(`invalid ${path}.size ${String(value.size)}: expected a non-negative integer number of bytes`)
  }

  const descriptor: Descriptor = { mediaType, digest: value.digest, size: value.size }
  if (value.platform != null) {
    descriptor.platform = parsePlatformField(value.platform, `${path}.platform`)
  }
  if (value.annotations != null) {
    descriptor.annotations = parseAnnotations(value.annotations, `${path}.annotations`)
  }

  return descriptor
}

function parseDescriptorList (value: unknown, path: string): Descriptor[] {
  if (!Array.isArray(value)) {
    throw new InvalidManifestError(`invalid ${path}: expected an array of descriptors, got ${show(value)}`)
  }

  return value.map((entry, i) => parseDescriptor(entry, `${path}[${i}]`))
}

function decodeJson (bytes: Uint8Array): Record<string, unknown> {
  if (bytes.byteLength > MAX_MANIFEST_BYTES) {
    throw new InvalidManifestError(`manifest of ${bytes.byteLength} bytes is larger than the limit of ${MAX_MANIFEST_BYTES} bytes`)
  }

  // TextDecoder would drop a byte order mark, which JSON does not allow and
  // other clients reject, so a manifest with one would be stored and
  // announced but could not be pulled.
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) {
    throw new InvalidManifestError('invalid manifest: it starts with a UTF-8 byte order mark, which JSON does not allow; save it without one')
  }

  let body: unknown
  try {
    body = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes))
  } catch (err) {
    throw new InvalidManifestError(`manifest is not valid UTF-8 JSON: ${errorMessage(err)}`)
  }

  if (!isObject(body)) {
    throw new InvalidManifestError(`manifest must be a JSON object, got ${show(body)}`)
  }

  return body
}

/**
 * Picks the media type from the body, or from the hint when the body has
 * none, or from the shape as a last resort (early OCI manifests omit it).
 */
function resolveMediaType (body: Record<string, unknown>, mediaTypeHint: string | undefined): string {
  const hint = mediaTypeHint == null ? undefined : normalizeMediaType(mediaTypeHint)

  if (body.mediaType != null) {
    const own = parseString(body.mediaType, 'mediaType')
    rejectMediaTypeParameters(own, 'manifest mediaType')
    if (hint != null && hint !== own) {
      throw new InvalidManifestError(`manifest mediaType ${show(own)} does not match ${show(hint)} given by its descriptor or Content-Type`)
    }
    return own
  }

  if (hint != null) {
    // Docker's schema 2 requires the field, and clients such as skopeo
    // cannot read a Docker manifest without it.
    if (hint === DOCKER_MANIFEST || hint === DOCKER_MANIFEST_LIST) {
      throw new InvalidManifestError(`invalid manifest: mediaType is missing, and a ${hint === DOCKER_MANIFEST ? 'Docker schema 2 manifest' : 'Docker manifest list'} must contain it (its descriptor or Content-Type says ${show(hint)}); add "mediaType": ${show(hint)} to the body, or send an OCI type`)
    }
    return hint
  }

  if ('manifests' in body) {
    return OCI_INDEX
  }
  if ('config' in body) {
    return OCI_MANIFEST
  }

  throw new InvalidManifestError('manifest has no mediaType and neither "config" nor "manifests", so its kind is unknown')
}

/**
 * Validates bytes read from anywhere: size at most MAX_MANIFEST_BYTES, UTF-8
 * JSON, schemaVersion 2, a known manifest or index media type (from the body,
 * or `mediaTypeHint` from HTTP Content-Type or a descriptor when the body has
 * none; both must agree when both exist), and descriptors with valid digests
 * and non-negative safe-integer sizes. Throws InvalidManifestError naming the
 * problem.
 */
export function parseManifest (bytes: Uint8Array, mediaTypeHint?: string): ParsedManifest {
  const body = decodeJson(bytes)

  if (body.schemaVersion === 1 || (mediaTypeHint != null && [DOCKER_MANIFEST_SCHEMA1, DOCKER_MANIFEST_SCHEMA1_SIGNED].includes(normalizeMediaType(mediaTypeHint)))) {
    throw new InvalidManifestError(SCHEMA1_HINT)
  }

  if (body.schemaVersion !== 2) {
    throw new InvalidManifestError(`invalid schemaVersion ${String(body.schemaVersion)}: expected 2`)
  }

  const mediaType = resolveMediaType(body, mediaTypeHint)

  if (isManifestMediaType(mediaType)) {
    // A body that also carries "manifests" could be read as an index by
    // another client, which is how media type confusion attacks work.
    if ('manifests' in body) {
      throw new InvalidManifestError(`image manifest of type ${show(mediaType)} must not contain "manifests"`)
    }

    const manifest: ParsedManifest = {
      kind: 'image',
      mediaType,
      config: parseDescriptor(body.config, 'config'),
      layers: parseDescriptorList(body.layers, 'layers')
    }
    if (body.subject != null) {
      manifest.subject = parseDescriptor(body.subject, 'subject')
    }
    return manifest
  }

  if (isIndexMediaType(mediaType)) {
    if ('config' in body || 'layers' in body) {
      throw new InvalidManifestError(`image index of type ${show(mediaType)} must not contain "config" or "layers"`)
    }

    return { kind: 'index', mediaType, manifests: parseDescriptorList(body.manifests, 'manifests') }
  }

  if ([DOCKER_MANIFEST_SCHEMA1, DOCKER_MANIFEST_SCHEMA1_SIGNED].includes(mediaType)) {
    throw new InvalidManifestError(SCHEMA1_HINT)
  }

  throw new InvalidManifestError(`unsupported manifest mediaType ${show(mediaType)}: expected an OCI image manifest or index, or a Docker schema 2 manifest or manifest list`)
}

/**
 * Returns every blob a manifest references directly: the config and layers
 * of an image, or the child manifests of an index. A `subject` is left out
 * because it points at another image, which need not be present.
 */
export function childDescriptors (manifest: ParsedManifest): Descriptor[] {
  return manifest.kind === 'image' ? [manifest.config, ...manifest.layers] : [...manifest.manifests]
}

/** Returns true when a descriptor points at a manifest or index, which has children of its own. */
export function isManifestDescriptor (descriptor: Descriptor): boolean {
  return isManifestMediaType(descriptor.mediaType) || isIndexMediaType(descriptor.mediaType)
}
