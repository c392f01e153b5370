/** Reads OCI image layouts in tests. */
import { readFile, readdir } from 'node:fs/promises'
import { join } from 'node:path'

export interface IndexJson {
  schemaVersion: number
  manifests: Array<{ mediaType: string, digest: string, size: number, annotations?: Record<string, string> }>
}

export async function readIndexJson (layout: string): Promise<IndexJson> {
  return JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as IndexJson
}

/** Returns the hex names of every blob file in a layout. */
export async function blobNames (layout: string): Promise<string[]> {
  return (await readdir(join(layout, 'blobs', 'sha256'))).sort()
}

export async function readBlob (layout: string, digest: string): Promise<Buffer> {
  return readFile(join(layout, 'blobs', 'sha256', digest.replace(/^sha256:/, '')))
}

/** Finds the descriptor a layout's index.json names `refName`. */
export async function findRef (layout: string, refName: string): Promise<IndexJson['manifests'][number] | undefined> {
  const index = await readIndexJson(layout)
  return index.manifests.find(entry => entry.annotations?.['org.opencontainers.image.ref.name'] === refName)
}
