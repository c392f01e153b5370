/**
 * Export of a stored image to an OCI image layout folder that skopeo,
 * umoci, podman or containerd can read without kilomesh.
 */
import { createHash, randomBytes } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { logger } from '@libp2p/logger'
import { DigestMismatchError } from '../../protocol/errors.js'
import { fsyncDirectory } from '../store/atomic-file.js'
import { LAYOUT_MARKER_FILE, OciLayout } from '../store/layout.js'
import { InvalidExportDestinationError, errorCode } from './errors.js'
import { listImageBlobs, readStoredManifest, type PlatformOptions } from './image-graph.js'
import { isIndexMediaType } from './media-types.js'
import { noMatchingPlatformError, selectNestedManifests } from './platform.js'
import type { Descriptor } from './manifest.js'
import type { BlobStore } from '../store/blob-store.js'
import type { AbortOptions } from '@libp2p/interface'

export { listImageBlobs, type PlatformOptions } from './image-graph.js'

const log = logger('kilomesh:image:export')

/** Creates the destination, or accepts it when it is an OCI image layout or an empty folder. */
async function prepareDestination (destination: string): Promise<void> {
  let info
  try {
    info = await stat(destination)
  } catch (err) {
    if (errorCode(err) === 'ENOENT') {
      await mkdir(destination, { recursive: true })
      return
    }
    throw err
  }

  if (!info.isDirectory()) {
    throw new InvalidExportDestinationError(`export destination ${destination} is a file; give a new or empty folder, or an existing OCI image layout`)
  }

  const names = await readdir(destination)
  // An agent's data directory is an OCI image layout too, but its index is
  // the agent's own: a second writer would race the agent that owns it.
  if (names.includes('identity.key') || names.includes('config.json')) {
    throw new InvalidExportDestinationError(`export destination ${destination} is a kilomesh agent's data directory; give another folder, because that agent keeps its own index.json there`)
  }
  if (names.length > 0 && !names.includes(LAYOUT_MARKER_FILE)) {
    throw new InvalidExportDestinationError(`export destination ${destination} is a folder that is neither empty nor an OCI image layout (it has no ${LAYOUT_MARKER_FILE}); give a new or empty folder so no other file gets overwritten`)
  }
}

/** Returns true when the file at `path` contains exactly the blob's bytes. */
async function holdsBlob (path: string, descriptor: Descriptor, options?: AbortOptions): Promise<boolean> {
  try {
    if ((await stat(path)).size !== descriptor.size) {
      return false
    }
  } catch (err) {
    if (errorCode(err) === 'ENOENT') {
      return false
    }
    throw err
  }

  const hash = createHash('sha256')
  for await (const chunk of createReadStream(path, { signal: options?.signal })) {
    hash.update(chunk as Buffer)
  }
  return `sha256:${hash.digest('hex')}` === descriptor.digest
}

/**
 * Copies one blob from the store (a verified read) to `path` through a
 * temporary file beside it, hashing again on the way, so no reader of the
 * layout finds a partial or wrong blob under its final name.
 */
async function copyBlob (store: BlobStore, descriptor: Descriptor, path: string, options?: AbortOptions): Promise<boolean> {
  if (await holdsBlob(path, descriptor, options)) {
    return false
  }

  const temporary = join(dirname(path), `.${descriptor.digest.slice('sha256:'.length)}.${randomBytes(6).toString('hex')}.tmp`)
  const handle = await open(temporary, 'wx', 0o644)
  try {
    const hash = createHash('sha256')
    const { stream } = await store.readStream(descriptor.digest, options)
    for await (const chunk of stream) {
      hash.update(chunk)
      let written = 0
      while (written < chunk.byteLength) {
        written += (await handle.write(chunk, written, chunk.byteLength - written)).bytesWritten
      }
    }

    const actual = `sha256:${hash.digest('hex')}`
    if (actual !== descriptor.digest) {
      throw new DigestMismatchError(`store returned bytes for ${descriptor.digest} that hash to ${actual}`)
    }

    await handle.sync()
    await handle.close()
    await rename(temporary, path)
    return true
  } catch (err) {
    await handle.close().catch(() => {})
    await rm(temporary, { force: true })
    throw err
  }
}

/**
 * Follows an index, through any nested indexes, down to its one selected
 * manifest, as `skopeo copy` without --all does. Stays at the index when
 * the platform is `all` or several manifests match.
 */
async function chooseRoot (store: BlobStore, descriptor: Descriptor, options?: PlatformOptions): Promise<Descriptor> {
  const platform = options?.platform ?? 'all'
  if (platform === 'all' || !isIndexMediaType(descriptor.mediaType)) {
    return descriptor
  }

  const manifest = await readStoredManifest(store, descriptor, options)
  if (manifest.kind !== 'index') {
    return descriptor
  }

  const selection = await selectNestedManifests(manifest, descriptor.digest, platform, async child => readStoredManifest(store, child, options), options)
  if (selection.manifests.length === 0) {
    throw noMatchingPlatformError(descriptor.digest, platform, selection.availablePlatforms)
  }
  return selection.manifests.length === 1 && selection.manifests[0] != null ? selection.manifests[0] : descriptor
}

/**
 * Writes an OCI image layout at `destination` (created if missing; an
 * existing layout is added to and keeps its other refs) holding the image
 * and every blob under it, with index.json naming it `refName`. For an index
 * only the selected platforms are written. When exactly one manifest is
 * selected it becomes the root; when several are, the index is written
 * unchanged (so its digest stays valid) while blobs of unselected platforms
 * are left out. Returns the index.json entry written.
 */
export async function exportImage (store: BlobStore, descriptor: Descriptor, destination: string, refName: string, options?: PlatformOptions): Promise<Descriptor> {
  const root = await chooseRoot(store, descriptor, options)
  const blobs = await listImageBlobs(store, root, options)

  await prepareDestination(destination)
  const layout = new OciLayout(destination)
  await layout.init(options)

  // Children first, so a layout interrupted halfway never has a manifest without its blobs.
  let copied = 0
  for (const blob of [...blobs].reverse()) {
    if (await copyBlob(store, blob, layout.blobPath(blob.digest), options)) {
      copied++
    }
  }
  await fsyncDirectory(layout.blobFolder)

  const entry: Descriptor = { mediaType: root.mediaType, digest: root.digest, size: root.size }
  if (root.platform != null) {
    entry.platform = root.platform
  }
  await layout.setRef(refName, entry, options)

  log('exported %s as %s to %s: %d blobs, %d copied', root.digest, refName, destination, blobs.length, copied)
  return (await layout.refs(options)).get(refName) ?? entry
}
