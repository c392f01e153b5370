/**
 * Blob sources of an import: files of a layout folder or an extracted
 * archive, or bytes built in memory (a converted Docker manifest). Nothing
 * here trusts the bytes, because the import hashes them.
 */
import { createReadStream } from 'node:fs'
import { open, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { digestHex, type OciDigest } from '../../protocol/digest.js'
import { InvalidImageSourceError, errorCode } from './errors.js'
import type { ArchiveTree } from './archive.js'
import type { AbortOptions } from '@libp2p/interface'

/** A blob's bytes, as a file or in memory. */
export type BlobLocation = { path: string } | { bytes: Uint8Array }

/** A read-only set of blobs addressed by digest. */
export interface BlobSource {
  /** The folder or archive the blobs come from, used in error messages. */
  readonly description: string

  /** Returns where the blob is, or undefined when the source lacks it. */
  locate(digest: OciDigest, options?: AbortOptions): Promise<BlobLocation | undefined>
}

/** Blobs under `blobs/sha256/` of a layout folder on disk. */
export class LayoutFolderSource implements BlobSource {
  constructor (readonly root: string, readonly description = root) {}

  async locate (digest: OciDigest): Promise<BlobLocation | undefined> {
    // digestHex only accepts 64 lowercase hex characters, so the path stays in the blob folder.
    const path = join(this.root, 'blobs', 'sha256', digestHex(digest))
    try {
      return (await stat(path)).isFile() ? { path } : undefined
    } catch (err) {
      if (errorCode(err) === 'ENOENT') {
        return undefined
      }
      throw err
    }
  }
}

/** Blobs under `blobs/sha256/` of an extracted OCI archive, links followed. */
export class ArchiveLayoutSource implements BlobSource {
  readonly description: string

  constructor (readonly tree: ArchiveTree) {
    this.description = tree.archive
  }

  async locate (digest: OciDigest): Promise<BlobLocation | undefined> {
    const path = await this.tree.locate(`blobs/sha256/${digestHex(digest)}`)
    return path == null ? undefined : { path }
  }
}

/** Blobs listed one by one, for an image converted from another format. */
export class MapBlobSource implements BlobSource {
  constructor (readonly description: string, readonly blobs: Map<OciDigest, BlobLocation>) {}

  async locate (digest: OciDigest): Promise<BlobLocation | undefined> {
    return this.blobs.get(digest)
  }
}

/** Returns the size of a located blob in bytes. */
export async function locationSize (location: BlobLocation): Promise<number> {
  return 'bytes' in location ? location.bytes.byteLength : (await stat(location.path)).size
}

/** Reads a located blob into memory, refusing more than `maxBytes` (for manifests and configs). */
export async function readLocation (location: BlobLocation, maxBytes: number, options?: AbortOptions): Promise<Uint8Array> {
  if ('bytes' in location) {
    return location.bytes
  }

  const handle = await open(location.path, 'r')
  try {
    const { size } = await handle.stat()
    if (size > maxBytes) {
      throw new InvalidImageSourceError(`${location.path} has ${size} bytes, more than the limit of ${maxBytes} bytes for a manifest or config`)
    }
    return await handle.readFile({ signal: options?.signal })
  } finally {
    await handle.close()
  }
}

/** Streams a located blob. */
export function streamLocation (location: BlobLocation, options?: AbortOptions): AsyncIterable<Uint8Array> {
  if ('bytes' in location) {
    const { bytes } = location
    return (async function * () { yield bytes })()
  }

  return createReadStream(location.path, { signal: options?.signal, highWaterMark: 256 * 1024 })
}
