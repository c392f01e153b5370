/** Digests and sizes of the single-layer fixture images the benchmarks transfer. */
import { BlobStore } from '../../../node/store/blob-store.js'
import { findRef } from '../../utils/layout.js'
import type { OciDigest } from '../../../protocol/digest.js'

export interface ImageBlobs {
  manifest: OciDigest
  manifestSizeBytes: number
  config: OciDigest
  layer: OciDigest
  layerSizeBytes: number
  /** Manifest, config and layer together. */
  totalBytes: number
}

/** Reads the manifest of `layout:tag` and the descriptors it names; the image must have one layer. */
export async function readImageBlobs (layout: string, tag: string): Promise<ImageBlobs> {
  const ref = await findRef(layout, tag)
  if (ref == null) {
    throw new Error(`fixture ${layout} has no image tagged ${tag}`)
  }
  const store = new BlobStore(layout)
  const manifest = JSON.parse(Buffer.from(await store.read(ref.digest as OciDigest)).toString('utf8')) as { config: { digest: OciDigest, size: number }, layers: Array<{ digest: OciDigest, size: number }> }
  const layer = manifest.layers[0]
  if (manifest.layers.length !== 1 || layer == null) {
    throw new Error(`fixture ${layout}:${tag} has ${manifest.layers.length} layers; the benchmarks expect one`)
  }
  return { manifest: ref.digest as OciDigest, manifestSizeBytes: ref.size, config: manifest.config.digest, layer: layer.digest, layerSizeBytes: layer.size, totalBytes: ref.size + manifest.config.size + layer.size }
}

/** Path of a blob on the HTTP floor server. */
export function blobPath (digest: OciDigest): string {
  return `/blobs/sha256/${digest.slice('sha256:'.length)}`
}
