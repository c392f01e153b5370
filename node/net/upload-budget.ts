/**
 * How many copies of each blob this agent uploads. Once it has sent a blob
 * to MAX_UPLOADS_PER_BLOB different peers within UPLOAD_WINDOW_MS (a small
 * blob, such as a manifest, to MAX_UPLOADS_PER_SMALL_BLOB peers), further
 * peers get BUSY and fetch from the peers that already have a copy. Only
 * recipients still connected count, because only they can pass it on. A
 * publisher therefore uploads a few copies however large the fleet, while a
 * lone holder whose earlier recipients left keeps serving. Resumed transfers
 * and peers that already received a copy are always served.
 */
import { MAX_CONCURRENT_UPLOADS, MAX_UPLOADS_PER_BLOB, MAX_UPLOADS_PER_SMALL_BLOB, SMALL_BLOB_BYTES, UPLOAD_WINDOW_MS } from './constants.js'
import { setMostRecent } from '../util/bounded-map.js'

/** Blobs tracked at most; the oldest entries are dropped beyond it. */
const MAX_TRACKED_BLOBS = 4096

export interface UploadBudgetInit {
  maxUploadsPerBlob?: number
  maxUploadsPerSmallBlob?: number
  smallBlobBytes?: number
  windowMs?: number
  maxConcurrentUploads?: number
}

export class UploadBudget {
  private readonly copies = new Map<string, Map<string, number>>()
  private active = 0
  private readonly maxUploadsPerBlob: number
  private readonly maxUploadsPerSmallBlob: number
  private readonly smallBlobBytes: number
  private readonly windowMs: number
  private readonly maxConcurrentUploads: number

  constructor (init: UploadBudgetInit = {}) {
    this.maxUploadsPerBlob = init.maxUploadsPerBlob ?? MAX_UPLOADS_PER_BLOB
    this.maxUploadsPerSmallBlob = init.maxUploadsPerSmallBlob ?? MAX_UPLOADS_PER_SMALL_BLOB
    this.smallBlobBytes = init.smallBlobBytes ?? SMALL_BLOB_BYTES
    this.windowMs = init.windowMs ?? UPLOAD_WINDOW_MS
    this.maxConcurrentUploads = init.maxConcurrentUploads ?? MAX_CONCURRENT_UPLOADS
  }

  /**
   * Returns the reason to respond BUSY, or undefined when the upload may go
   * ahead. `isConnected` returns whether an earlier recipient is still
   * connected. A small blob (`sizeBytes` at most SMALL_BLOB_BYTES) is not
   * held back by the uploads in progress, which it would wait for longer
   * than it takes to send.
   */
  check (digest: string, peer: string, offset: number, isConnected: (peer: string) => boolean = () => true, sizeBytes = Number.POSITIVE_INFINITY): string | undefined {
    const small = sizeBytes <= this.smallBlobBytes
    if (!small && this.active >= this.maxConcurrentUploads) {
      return `${this.active} uploads are running, the limit is ${this.maxConcurrentUploads}`
    }
    if (offset > 0) {
      return undefined
    }

    const recent = this.recentCopies(digest)
    if (recent.has(peer)) {
      return undefined
    }
    const holders = [...recent.keys()].filter(isConnected).length
    if (holders < (small ? this.maxUploadsPerSmallBlob : this.maxUploadsPerBlob)) {
      return undefined
    }
    return `sent ${holders} copies of ${digest} to connected peers in the last ${this.windowMs} ms; fetch it from one of them`
  }

  /** Returns up to `max` recent recipients of `digest` that are still connected, newest first. */
  recipients (digest: string, isConnected: (peer: string) => boolean, max: number): string[] {
    return [...this.recentCopies(digest).entries()]
      .filter(([peer]) => isConnected(peer))
      .sort((a, b) => b[1] - a[1])
      .slice(0, max)
      .map(([peer]) => peer)
  }

  /** Records the start of an upload; call the returned function when it ends. */
  begin (digest: string, peer: string): () => void {
    this.active++
    const recent = this.recentCopies(digest)
    recent.set(peer, Date.now())
    setMostRecent(this.copies, digest, recent, MAX_TRACKED_BLOBS)

    let ended = false
    return () => {
      if (!ended) {
        ended = true
        this.active--
      }
    }
  }

  private recentCopies (digest: string): Map<string, number> {
    const recent = this.copies.get(digest) ?? new Map<string, number>()
    const cutoff = Date.now() - this.windowMs
    for (const [peer, atMs] of recent) {
      if (atMs < cutoff) {
        recent.delete(peer)
      }
    }
    return recent
  }
}
