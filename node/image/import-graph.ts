/**
 * The two phases of every import, whatever the source format. First the
 * image graph (index, manifests, configs, layers) is walked and every
 * manifest parsed; then every blob is streamed into uncommitted store
 * writers while being hashed. Only when all blobs matched their digests are
 * the writers committed, children before parents, so a rejected import
 * stores nothing and a manifest never lands in the store before its blobs.
 */
import { createHash } from 'node:crypto'
import { logger } from '@libp2p/logger'
import { MAX_MANIFEST_BYTES } from '../../protocol/constants.js'
import { digestOf, type OciDigest } from '../../protocol/digest.js'
import { DigestMismatchError } from '../../protocol/errors.js'
import { CorruptBlobError } from '../store/errors.js'
import { locationSize, readLocation, streamLocation, type BlobLocation, type BlobSource } from './blob-source.js'
import { InvalidImageSourceError, InvalidManifestError, errorMessage } from './errors.js'
import { childDescriptors, isManifestDescriptor, parseManifest, type Descriptor } from './manifest.js'
import type { BlobStore, BlobWriter } from '../store/blob-store.js'
import type { AbortOptions } from '@libp2p/interface'

const log = logger('kilomesh:image:import')

/** One blob of an image graph with where to read it; manifests carry their verified bytes. */
export interface GraphBlob {
  descriptor: Descriptor
  location: BlobLocation
  bytes?: Uint8Array
}

/**
 * Walks the image under `root` in `source` and returns its blobs children
 * first, each digest once. Checks that every blob exists with its
 * descriptor's size and that every manifest hashes to its digest and parses.
 * Configs and layers are hashed later, by storeImageGraph.
 */
export async function collectImageGraph (source: BlobSource, root: Descriptor, options?: AbortOptions): Promise<GraphBlob[]> {
  const ordered: GraphBlob[] = []
  const seen = new Map<OciDigest, number>()

  const visit = async (descriptor: Descriptor, where: string): Promise<void> => {
    options?.signal?.throwIfAborted()

    const seenSize = seen.get(descriptor.digest)
    if (seenSize != null) {
      if (seenSize !== descriptor.size) {
        throw new InvalidManifestError(`${where} gives blob ${descriptor.digest} a size of ${descriptor.size} bytes, but another descriptor gives ${seenSize}`)
      }
      return
    }
    seen.set(descriptor.digest, descriptor.size)

    const location = await source.locate(descriptor.digest, options)
    if (location == null) {
      throw new InvalidImageSourceError(`${source.description} is missing blob ${descriptor.digest} (${where})`)
    }

    const sizeBytes = await locationSize(location)
    if (sizeBytes !== descriptor.size) {
      throw new InvalidImageSourceError(`blob ${descriptor.digest} in ${source.description} has ${sizeBytes} bytes, but ${where} gives its size as ${descriptor.size}`)
    }

    if (!isManifestDescriptor(descriptor)) {
      ordered.push({ descriptor, location })
      return
    }

    if (descriptor.size > MAX_MANIFEST_BYTES) {
      throw new InvalidManifestError(`manifest ${descriptor.digest} (${where}) has ${descriptor.size} bytes, more than the limit of ${MAX_MANIFEST_BYTES} bytes`)
    }

    const bytes = await readLocation(location, MAX_MANIFEST_BYTES, options)
    const actual = digestOf(bytes)
    if (actual !== descriptor.digest) {
      throw new DigestMismatchError(`manifest ${descriptor.digest} (${where}) in ${source.description} hashes to ${actual}; the source is corrupt`)
    }

    let manifest
    try {
      manifest = parseManifest(bytes, descriptor.mediaType)
    } catch (err) {
      throw new InvalidManifestError(`manifest ${descriptor.digest} (${where}) in ${source.description}: ${errorMessage(err)}`)
    }

    const children = childDescriptors(manifest)
    for (const [i, child] of children.entries()) {
      const field = manifest.kind === 'index' ? `manifests[${i}]` : i === 0 ? 'config' : `layers[${i - 1}]`
      await visit(child, `${field} of manifest ${descriptor.digest}`)
    }

    ordered.push({ descriptor, location, bytes })
  }

  await visit(root, 'the root descriptor')
  return ordered
}

/** Returns true when the store already has the blob with intact bytes. A corrupt copy is removed by verify and reported as absent. */
async function holdsVerified (store: BlobStore, digest: OciDigest, options?: AbortOptions): Promise<boolean> {
  if (!(await store.has(digest))) {
    return false
  }

  try {
    await store.verify(digest, options)
    return true
  } catch (err) {
    if (err instanceof CorruptBlobError) {
      return false
    }
    throw err
  }
}

/**
 * Stores the blobs returned by collectImageGraph, all or none. Returns how
 * many blobs were written; blobs already in the store are kept as they are.
 */
export async function storeImageGraph (store: BlobStore, source: BlobSource, blobs: GraphBlob[], options?: AbortOptions): Promise<number> {
  const pending: BlobWriter[] = []

  try {
    for (const blob of blobs) {
      const { digest, size } = blob.descriptor
      if (await holdsVerified(store, digest, options)) {
        continue
      }

      const writer = await store.createWriter(digest, size)
      pending.push(writer)

      const hash = createHash('sha256')
      const chunks = blob.bytes != null ? [blob.bytes] : streamLocation(blob.location, options)
      for await (const chunk of chunks) {
        options?.signal?.throwIfAborted()
        hash.update(chunk)
        await writer.write(chunk)
      }

      // Checked here, before any commit, so one bad blob leaves the store untouched.
      const actual = `sha256:${hash.digest('hex')}`
      if (actual !== digest) {
        throw new DigestMismatchError(`blob ${digest} in ${source.description} hashes to ${actual}; the source is corrupt, so nothing was imported`)
      }
    }
  } catch (err) {
    await Promise.all(pending.map(async writer => writer.abort()))
    throw err
  }

  let committed = 0
  try {
    for (const writer of pending) {
      await writer.commit(options)
      committed++
    }
  } catch (err) {
    await Promise.all(pending.slice(committed).map(async writer => writer.abort()))
    throw err
  }

  log('stored %d of %d blobs from %s', committed, blobs.length, source.description)
  return committed
}
