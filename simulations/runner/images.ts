/**
 * Imports every image a scenario names once, into a scratch store, before
 * any node starts: a bad source fails the run at once with its name, and the
 * manifest digests are known so expectations can compare against them.
 */
import { join } from 'node:path'
import { importImage } from '../../node/image/import.js'
import { listImageBlobs } from '../../node/image/image-graph.js'
import { localPlatform } from '../../node/image/platform.js'
import { BlobStore } from '../../node/store/blob-store.js'
import { SimulationSetupError } from '../errors.js'
import type { AbortOptions } from '@libp2p/interface'

export interface ImageInfo {
  name: string
  source: string
  /** Digest of the image's root: its manifest, or its index for a multi-platform image. */
  digest: string
  mediaType: string
  /** Blobs a node pulls for its own platform, the root included. */
  blobCount: number
  /** Bytes of those blobs. */
  sizeBytes: number
}

/** Imports each image into a store under `workDir` and returns what the runner needs to know about it. */
export async function prepareImages (images: Record<string, string>, workDir: string, options?: AbortOptions): Promise<Map<string, ImageInfo>> {
  const store = new BlobStore(join(workDir, 'images'))
  await store.init()

  const prepared = new Map<string, ImageInfo>()
  for (const [name, source] of Object.entries(images)) {
    try {
      const imported = await importImage(store, source, options)
      const blobs = await listImageBlobs(store, imported.descriptor, { platform: localPlatform(), signal: options?.signal })
      prepared.set(name, {
        name,
        source,
        digest: imported.descriptor.digest,
        mediaType: imported.descriptor.mediaType,
        blobCount: blobs.length,
        sizeBytes: blobs.reduce((sum, blob) => sum + blob.size, 0)
      })
    } catch (err: any) {
      throw new SimulationSetupError(`image ${name} (${source}) could not be imported: ${err.message}`)
    }
  }
  return prepared
}

/** Names a digest by its image, or shortens it when no image of the scenario has it. */
export function imageLabel (images: Map<string, ImageInfo>, digest: string | null): string {
  if (digest == null) {
    return 'nothing'
  }
  for (const image of images.values()) {
    if (image.digest === digest) {
      return image.name
    }
  }
  return digest.slice(0, 'sha256:'.length + 12)
}
