/**
 * The bytes of small verified blobs, kept in memory so that the blobs requested
 * most (manifests, configs, the layers of micro images) are served without
 * touching the disk. Only bytes that were hashed and matched their digest go in.
 */
import type { OciDigest } from '../../protocol/digest.js'

/**
 * Maximum size of a blob the cache keeps, in bytes: a micro image's layer.
 * Served from disk, a 1 MB layer cost an open, a stat, four reads and a
 * close per request. That held the blob protocol to 0.75x of a bare
 * stream's throughput, and served from memory it matches the bare stream.
 */
export const MAX_CACHED_BLOB_BYTES = 2 * 1024 * 1024

/**
 * Maximum bytes the cache keeps in all, four of the largest cached blobs.
 * The least recently used blobs are evicted first.
 */
export const MAX_CACHE_BYTES = 8 * 1024 * 1024

export class BlobCache {
  /** Blob bytes by digest, least recently used first (Map keeps insertion order). */
  private readonly entries = new Map<OciDigest, Uint8Array>()
  private sizeBytes = 0

  constructor (private readonly maxBytes = MAX_CACHE_BYTES) {}

  /** Returns the cached bytes of a blob and marks them as used. The caller must not change them. */
  get (digest: OciDigest): Uint8Array | undefined {
    const bytes = this.entries.get(digest)
    if (bytes != null) {
      this.entries.delete(digest)
      this.entries.set(digest, bytes)
    }
    return bytes
  }

  /** Keeps the verified bytes of a blob if it is small enough, evicting the least recently used. */
  set (digest: OciDigest, bytes: Uint8Array): void {
    if (bytes.byteLength > MAX_CACHED_BLOB_BYTES || bytes.byteLength > this.maxBytes) {
      return
    }

    this.delete(digest)
    this.entries.set(digest, bytes)
    this.sizeBytes += bytes.byteLength
    for (const [oldest, oldBytes] of this.entries) {
      if (this.sizeBytes <= this.maxBytes) {
        break
      }
      this.entries.delete(oldest)
      this.sizeBytes -= oldBytes.byteLength
    }
  }

  delete (digest: OciDigest): void {
    const bytes = this.entries.get(digest)
    if (bytes != null) {
      this.entries.delete(digest)
      this.sizeBytes -= bytes.byteLength
    }
  }
}
