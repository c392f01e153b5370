/**
 * Walking an image that is already in the content store: which blobs belong
 * to it for a platform selection. The agent uses it to check that a pulled
 * image is complete, to pin blobs, and to export.
 */
import { MAX_MANIFEST_BYTES } from '../../protocol/constants.js'
import { BlobNotFoundError } from '../store/errors.js'
import { InvalidManifestError } from './errors.js'
import { childDescriptors, isManifestDescriptor, parseManifest, type Descriptor, type ParsedManifest, type Platform } from './manifest.js'
import { isIndexMediaType } from './media-types.js'
import { noMatchingPlatformError, selectNestedManifests } from './platform.js'
import type { OciDigest } from '../../protocol/digest.js'
import type { BlobStore } from '../store/blob-store.js'
import type { AbortOptions } from '@libp2p/interface'

/** Options of a walk over a stored image. */
export interface PlatformOptions extends AbortOptions {
  /** Platforms to follow in an index; `all` when not given. */
  platform?: Platform | 'all'
}

/** Reads a stored manifest (verified by the store) and checks it against its descriptor. */
export async function readStoredManifest (store: BlobStore, descriptor: Descriptor, options?: AbortOptions): Promise<ParsedManifest> {
  if (descriptor.size > MAX_MANIFEST_BYTES) {
    throw new InvalidManifestError(`manifest ${descriptor.digest} has a size of ${descriptor.size} bytes, more than the limit of ${MAX_MANIFEST_BYTES} bytes`)
  }

  const bytes = await store.read(descriptor.digest, options)
  if (bytes.byteLength !== descriptor.size) {
    throw new InvalidManifestError(`manifest ${descriptor.digest} has ${bytes.byteLength} bytes, but its descriptor gives ${descriptor.size}`)
  }

  return parseManifest(bytes, descriptor.mediaType)
}

/**
 * Walks an image already in `store` and returns every descriptor under
 * `descriptor`, itself first and each digest once. In an index it follows
 * only the selected platforms, descending into nested indexes. Throws
 * BlobNotFoundError for a missing blob and NoMatchingPlatformError when an
 * index root has no manifest for the selected platform at any depth.
 */
export async function listImageBlobs (store: BlobStore, descriptor: Descriptor, options?: PlatformOptions): Promise<Descriptor[]> {
  const platform = options?.platform ?? 'all'
  const found: Descriptor[] = []
  const seen = new Set<OciDigest>()

  // Only manifests get here; the indexes under an index root were walked already.
  const readManifest = async (current: Descriptor, where: string): Promise<ParsedManifest> => {
    try {
      return await readStoredManifest(store, current, options)
    } catch (err) {
      if (err instanceof BlobNotFoundError) {
        throw new BlobNotFoundError(`manifest ${current.digest} (${where}) is not in the store`)
      }
      throw err
    }
  }

  const visit = async (current: Descriptor, where: string): Promise<void> => {
    options?.signal?.throwIfAborted()
    if (seen.has(current.digest)) {
      return
    }
    seen.add(current.digest)

    if (!isManifestDescriptor(current)) {
      const info = await store.stat(current.digest)
      if (info == null) {
        throw new BlobNotFoundError(`blob ${current.digest} (${where}) is not in the store`)
      }
      if (info.sizeBytes !== current.size) {
        throw new InvalidManifestError(`blob ${current.digest} (${where}) has ${info.sizeBytes} bytes, but its descriptor gives ${current.size}`)
      }
      found.push(current)
      return
    }

    const manifest = await readManifest(current, where)
    found.push(current)

    if (manifest.kind === 'image') {
      for (const child of childDescriptors(manifest)) {
        await visit(child, `referenced by ${current.digest}`)
      }
      return
    }

    // The selection descends through nested indexes itself, so that a
    // nested index without the platform is not an error while a sibling
    // has it. Each nested index is then listed like any other blob.
    const selection = await selectNestedManifests(manifest, current.digest, platform, async child => readManifest(child, `listed by an index under ${current.digest}`), options)
    if (selection.manifests.length === 0) {
      throw noMatchingPlatformError(current.digest, platform, selection.availablePlatforms)
    }
    for (const child of [...selection.indexes, ...selection.manifests]) {
      if (isIndexMediaType(child.mediaType)) {
        if (!seen.has(child.digest)) {
          seen.add(child.digest)
          found.push(child)
        }
        continue
      }
      await visit(child, `selected from index ${current.digest}`)
    }
  }

  await visit(descriptor, 'the root descriptor')
  return found
}
