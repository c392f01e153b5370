/**
 * A second check of a stored blob while it is read out. The store hashes a
 * file before it serves it the first time, and trusts it again while its size
 * and mtime stay the same. A file changed during a read, after that check,
 * would otherwise reach the reader unnoticed. The check runs before the last
 * chunk of a read is returned, so a reader that sends chunks on as it gets
 * them never sends the whole of a changed blob.
 */
import { createHash, type Hash } from 'node:crypto'
import type { OciDigest } from '../../protocol/digest.js'

/** Size and mtime of the file as it is now. */
export type StatNow = () => Promise<{ size: number, mtimeMs: number }>

/** Hashes the whole file as it is now and returns its digest. */
export type HashNow = () => Promise<string>

/** Removes the blob and throws CorruptBlobError, naming `reason`. */
export type DiscardCorrupt = (reason: string) => Promise<never>

export interface ReadCheckInit {
  digest: OciDigest
  sizeBytes: number
  /** The mtime at which the store last verified the file. */
  mtimeMs: number
  /** Offset just past the last byte this read returns. */
  endBytes: number
  statNow: StatNow
  hashNow: HashNow
  discardCorrupt: DiscardCorrupt
}

/**
 * Hashes the chunks of a read that starts at offset 0, and compares the
 * digest before the last chunk goes out. A read that starts later, or stops
 * before the end of the blob, cannot be hashed whole, so it compares the
 * file's size and mtime with the verified ones instead. A file whose mtime
 * changed is hashed whole before it is called corrupt, because `touch`
 * changes the mtime of a blob in use.
 */
export class ReadCheck {
  private readonly hash: Hash = createHash('sha256')
  private hashedBytes = 0
  private done = false

  constructor (private readonly init: ReadCheckInit) {}

  /** Checks a chunk at `position`. Throws CorruptBlobError before the read's last chunk when the blob changed. */
  async check (position: number, chunk: Uint8Array): Promise<void> {
    if (position === this.hashedBytes) {
      this.hash.update(chunk)
      this.hashedBytes += chunk.byteLength
    }
    if (this.done || position + chunk.byteLength < this.init.endBytes) {
      return
    }
    this.done = true

    if (this.hashedBytes === this.init.sizeBytes) {
      const actual = `sha256:${this.hash.digest('hex')}`
      if (actual !== this.init.digest) {
        await this.init.discardCorrupt(`it hashed to ${actual} while it was read`)
      }
      return
    }

    const now = await this.init.statNow()
    if (now.size === this.init.sizeBytes && now.mtimeMs === this.init.mtimeMs) {
      return
    }
    const actual = await this.init.hashNow()
    if (actual !== this.init.digest) {
      await this.init.discardCorrupt(`it changed on disk while it was read, and now hashes to ${actual}`)
    }
  }
}
