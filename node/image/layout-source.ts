/**
 * Choosing one image from an OCI image layout that is being imported,
 * whether a folder on disk or an extracted OCI archive.
 */
import { MAX_MANIFEST_BYTES } from '../../protocol/constants.js'
import { isDigest } from '../../protocol/digest.js'
import { LAYOUT_INDEX_FILE, LAYOUT_MARKER_FILE, parseLayoutIndex, parseLayoutMarker, refNameOf } from '../store/layout.js'
import { readLocation } from './blob-source.js'
import { AmbiguousImageError, InvalidImageSourceError } from './errors.js'
import type { Descriptor } from './manifest.js'
import type { AbortOptions } from '@libp2p/interface'

/** The image picked from a layout: its root descriptor and, when it has one, its ref name. */
export interface LayoutSelection {
  descriptor: Descriptor
  refName?: string
}

/** Returns a descriptor without its annotations, which belong to the layout's index.json rather than the image. */
function stripAnnotations (descriptor: Descriptor): Descriptor {
  const stripped: Descriptor = { mediaType: descriptor.mediaType, digest: descriptor.digest, size: descriptor.size }
  if (descriptor.platform != null) {
    stripped.platform = descriptor.platform
  }
  return stripped
}

function describeEntry (descriptor: Descriptor): string {
  return refNameOf(descriptor) ?? descriptor.digest
}

/**
 * Reads `oci-layout` and `index.json` through `locate` (which returns the
 * path of a file in the layout, or undefined) and returns the entry whose
 * ref name is `tag`, or the entry whose digest is `tag` when `tag` is a
 * digest. Without a tag the layout must hold exactly one image, else
 * AmbiguousImageError lists the ref names to choose from.
 */
export async function selectLayoutImage (locate: (name: string) => Promise<string | undefined>, description: string, tag: string | undefined, options?: AbortOptions): Promise<LayoutSelection> {
  const markerPath = await locate(LAYOUT_MARKER_FILE)
  const indexPath = await locate(LAYOUT_INDEX_FILE)
  if (markerPath == null || indexPath == null) {
    throw new InvalidImageSourceError(`${description} is not an OCI image layout: it needs both ${LAYOUT_MARKER_FILE} and ${LAYOUT_INDEX_FILE}`)
  }

  parseLayoutMarker(await readLocation({ path: markerPath }, MAX_MANIFEST_BYTES, options), `${LAYOUT_MARKER_FILE} of ${description}`)
  const index = parseLayoutIndex(await readLocation({ path: indexPath }, MAX_MANIFEST_BYTES, options), `${LAYOUT_INDEX_FILE} of ${description}`)
  const entries = index.manifests
  const names = entries.map(describeEntry)

  if (tag == null) {
    if (entries.length === 1 && entries[0] != null) {
      return { descriptor: stripAnnotations(entries[0]), refName: refNameOf(entries[0]) }
    }

    if (entries.length === 0) {
      throw new InvalidImageSourceError(`${description} contains no images: its ${LAYOUT_INDEX_FILE} lists no manifests`)
    }

    throw new AmbiguousImageError(`${description} contains ${entries.length} images: add ":TAG" to choose one of ${names.join(', ')}`, names)
  }

  // The last entry wins when a ref name repeats, as OciLayout.refs() does.
  const match = entries.findLast(entry => isDigest(tag) ? entry.digest === tag : refNameOf(entry) === tag)
  if (match == null) {
    const choices = names.length === 0 ? 'it contains no images' : `choose one of ${names.join(', ')}`
    throw new InvalidImageSourceError(`${description} has no image named ${JSON.stringify(tag)}: ${choices}`)
  }

  return { descriptor: stripAnnotations(match), refName: refNameOf(match) }
}
