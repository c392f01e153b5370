/**
 * Writes an OCI image layout with a multi-platform image of random layers,
 * for benchmarks that need an image whose blobs no fixture shares.
 */
import { createHash, randomBytes } from 'node:crypto'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'

const MANIFEST_TYPE = 'application/vnd.oci.image.manifest.v1+json'
const INDEX_TYPE = 'application/vnd.oci.image.index.v1+json'

interface Written {
  digest: string
  size: number
}

async function writeBlob (layout: string, bytes: Uint8Array): Promise<Written> {
  const hex = createHash('sha256').update(bytes).digest('hex')
  await writeFile(join(layout, 'blobs', 'sha256', hex), bytes)
  return { digest: `sha256:${hex}`, size: bytes.byteLength }
}

function json (value: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(value))
}

/**
 * Writes `layout` with an image index tagged `tag`: one image per
 * architecture in `architectures` (linux), each with a config and one layer
 * of `layerSizeBytes` random bytes.
 */
export async function writeRandomImage (layout: string, tag: string, architectures: string[], layerSizeBytes: number): Promise<void> {
  await mkdir(join(layout, 'blobs', 'sha256'), { recursive: true })
  await writeFile(join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }))

  const manifests: Array<Written & { mediaType: string, platform: { architecture: string, os: string } }> = []
  for (const architecture of architectures) {
    const layer = await writeBlob(layout, randomBytes(layerSizeBytes))
    const config = await writeBlob(layout, json({ architecture, os: 'linux', rootfs: { type: 'layers', diff_ids: [layer.digest] }, config: {} }))
    const manifest = await writeBlob(layout, json({
      schemaVersion: 2,
      mediaType: MANIFEST_TYPE,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...layer }]
    }))
    manifests.push({ mediaType: MANIFEST_TYPE, ...manifest, platform: { architecture, os: 'linux' } })
  }

  const index = await writeBlob(layout, json({ schemaVersion: 2, mediaType: INDEX_TYPE, manifests }))
  await writeFile(join(layout, 'index.json'), JSON.stringify({
    schemaVersion: 2,
    manifests: [{ mediaType: INDEX_TYPE, ...index, annotations: { 'org.opencontainers.image.ref.name': tag } }]
  }))
}
