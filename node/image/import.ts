/**
 * Import of an image into the content store from an OCI image layout
 * folder, an OCI archive or a `docker save` archive. Every blob is hashed
 * against its digest, and nothing is stored unless the whole image checks
 * out (see import-graph.ts).
 */
import { randomBytes } from 'node:crypto'
import { mkdir, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { logger } from '@libp2p/logger'
import { extractArchive } from './archive.js'
import { ArchiveLayoutSource, LayoutFolderSource, type BlobSource } from './blob-source.js'
import { convertDockerArchive } from './docker-archive.js'
import { InvalidImageSourceError, errorCode } from './errors.js'
import { collectImageGraph, storeImageGraph } from './import-graph.js'
import { selectLayoutImage, type LayoutSelection } from './layout-source.js'
import type { Descriptor } from './manifest.js'
import type { BlobStore } from '../store/blob-store.js'
import type { AbortOptions } from '@libp2p/interface'

const log = logger('kilomesh:image:import')

/** Summary of one import. */
export interface ImportResult {
  /** Root of the imported image: a manifest or an index. */
  descriptor: Descriptor
  /** The ref name or repository tag the image carried in its source, if any. */
  refName?: string
  /** Distinct blobs in the image, the root included. */
  blobCount: number
  /** Blobs written by this import; the others were already stored. */
  storedBlobCount: number
  /** Total size of the image's distinct blobs. */
  sizeBytes: number
}

const SOURCE_FORMS = 'give a layout folder DIR[:TAG], an OCI archive FILE.tar[:TAG] or a docker save archive FILE.tar[:REPOSITORY:TAG]'

async function kindOf (path: string): Promise<'folder' | 'file' | undefined> {
  try {
    const info = await stat(path)
    return info.isDirectory() ? 'folder' : info.isFile() ? 'file' : undefined
  } catch (err) {
    if (errorCode(err) === 'ENOENT' || errorCode(err) === 'ENOTDIR') {
      return undefined
    }
    throw err
  }
}

/**
 * Splits `PATH[:TAG]`. A path that exists is used as-is; otherwise the
 * longest prefix before a ':' that exists is the path and the rest is the
 * tag, which lets docker archives take `FILE.tar:REPOSITORY:TAG`.
 */
async function splitSource (source: string): Promise<{ path: string, kind: 'folder' | 'file', tag?: string }> {
  const whole = await kindOf(source)
  if (whole != null) {
    return { path: source, kind: whole }
  }

  for (let colon = source.lastIndexOf(':'); colon > 0; colon = source.lastIndexOf(':', colon - 1)) {
    const path = source.slice(0, colon)
    const kind = await kindOf(path)
    if (kind == null) {
      continue
    }

    const tag = source.slice(colon + 1)
    if (tag === '') {
      throw new InvalidImageSourceError(`image source ${JSON.stringify(source)} ends with ":" but names no tag: ${SOURCE_FORMS}`)
    }
    return { path, kind, tag }
  }

  throw new InvalidImageSourceError(`image source ${JSON.stringify(source)} not found: ${SOURCE_FORMS}`)
}

async function importSelection (store: BlobStore, source: BlobSource, selection: LayoutSelection, options?: AbortOptions): Promise<ImportResult> {
  const blobs = await collectImageGraph(source, selection.descriptor, options)
  const storedBlobCount = await storeImageGraph(store, source, blobs, options)
  const sizeBytes = blobs.reduce((total, blob) => total + blob.descriptor.size, 0)

  log('imported %s (%s) from %s: %d blobs, %d new, %d bytes', selection.descriptor.digest, selection.refName ?? 'no ref name', source.description, blobs.length, storedBlobCount, sizeBytes)
  return { descriptor: selection.descriptor, refName: selection.refName, blobCount: blobs.length, storedBlobCount, sizeBytes }
}

/** Extracts an archive into the store's temporary folder (same file system, cleared on restart) and imports from it. */
async function importArchive (store: BlobStore, archive: string, tag: string | undefined, options?: AbortOptions): Promise<ImportResult> {
  const staging = join(store.temporaryFolder, `import-${randomBytes(8).toString('hex')}`)
  await mkdir(staging, { recursive: true })

  try {
    const tree = await extractArchive(archive, staging, options)

    // Docker 25 and later write archives that are OCI layouts and docker archives at once; the OCI side wins.
    if (await tree.locate('index.json') != null) {
      const selection = await selectLayoutImage(async name => tree.locate(name), archive, tag, options)
      return await importSelection(store, new ArchiveLayoutSource(tree), selection, options)
    }

    if (await tree.locate('manifest.json') != null) {
      const conversion = await convertDockerArchive(tree, tag, options)
      return await importSelection(store, conversion.source, conversion, options)
    }

    throw new InvalidImageSourceError(`${archive} is neither an OCI archive (oci-layout and index.json) nor a docker save archive (manifest.json)`)
  } finally {
    await rm(staging, { recursive: true, force: true })
  }
}

/**
 * Imports an image into `store`, verifying every blob against its digest:
 * an OCI image layout folder `DIR` (which must then hold exactly one image)
 * or `DIR:TAG`; an OCI archive `FILE.tar[:TAG]`; or a `docker save` archive
 * `FILE.tar[:REF]`, converted to an OCI image manifest. Archives may be
 * gzip-compressed. The whole graph is imported, every platform of an index
 * included. Throws InvalidImageSourceError, AmbiguousImageError,
 * InvalidManifestError, DigestMismatchError or UnsafeArchiveEntryError, and
 * then stores nothing.
 */
export async function importImage (store: BlobStore, source: string, options?: AbortOptions): Promise<ImportResult> {
  const { path, kind, tag } = await splitSource(source)
  log('importing %s (tag %s)', path, tag ?? 'none')

  if (kind === 'file') {
    return importArchive(store, path, tag, options)
  }

  const selection = await selectLayoutImage(async name => {
    const file = join(path, name)
    return await kindOf(file) === 'file' ? file : undefined
  }, path, tag, options)
  return importSelection(store, new LayoutFolderSource(path), selection, options)
}
