/**
 * An in-progress write of one blob into the store's temporary folder. Bytes
 * are hashed as they arrive and queued for the disk, so a network reader does
 * not wait for each chunk's write. `commit` waits for the disk, checks the
 * digest, fsyncs the file and hands it to the store.
 */
import { createHash, type Hash } from 'node:crypto'
import { rm, type FileHandle } from 'node:fs/promises'
import { DigestMismatchError } from '../../protocol/errors.js'
import { MAX_CACHED_BLOB_BYTES } from './blob-cache.js'
import { BlobTooLargeError } from './errors.js'
import type { OciDigest } from '../../protocol/digest.js'
import type { AbortOptions } from '@libp2p/interface'

/**
 * Maximum bytes accepted but not yet written before `write` waits for the
 * disk. It bounds the memory of one transfer.
 */
export const MAX_PENDING_WRITE_BYTES = 4 * 1024 * 1024

/** Maximum buffers passed to one writev call, below IOV_MAX (1024 on Linux and macOS). */
const MAX_BUFFERS_PER_WRITE = 256

/** Moves a verified temporary file to its final name. The store passes this function to each writer. */
export type AdoptBlob = (temporaryPath: string, digest: OciDigest, sizeBytes: number, mtimeMs: number | undefined, bytes?: Uint8Array) => Promise<void>

/** Size and modification time of a blob that a writer has just stored. */
export interface CommittedBlob {
  digest: OciDigest
  sizeBytes: number
  mtimeMs: number
}

/**
 * Hashes each chunk as it arrives and writes it to a temporary file in the
 * background; `commit` stores the blob only if the hash matches.
 */
export class BlobWriter {
  /** Number of bytes received so far; a resumed download requests the rest from its next source starting here. */
  offset = 0
  private readonly hash: Hash = createHash('sha256')
  private closed = false
  /** Chunks accepted but not yet passed to the disk. */
  private queued: Uint8Array[] = []
  private queuedBytes = 0
  private flushing: Promise<void> | undefined
  /** The first disk error; every later call throws it. */
  private failure: Error | undefined
  /** Every chunk of a blob that is still small enough for the store's cache; undefined once it is larger. */
  private retained: Uint8Array[] | undefined = []

  /**
   * With `hashedBy`, the caller has already hashed every byte it will write
   * to `expectedDigest`, and the writer does not hash them again.
   */
  constructor (
    private readonly handle: FileHandle,
    readonly temporaryPath: string,
    readonly expectedDigest: OciDigest | undefined,
    readonly expectedSizeBytes: number | undefined,
    private readonly adopt: AdoptBlob,
    private readonly hashedBy?: 'caller'
  ) {}

  /** The disk error that stopped this writer, if any. A writer that failed cannot be resumed. */
  get error (): Error | undefined {
    return this.failure
  }

  /**
   * Hashes a chunk and queues it for the disk. Waits only when more than
   * MAX_PENDING_WRITE_BYTES are queued. The writer keeps `chunk` until it is
   * written, so the caller must not change its bytes afterwards. Throws
   * BlobTooLargeError when the chunk goes past the expected size.
   */
  async write (chunk: Uint8Array): Promise<void> {
    if (this.closed) {
      throw new Error('blob writer is already closed')
    }
    this.throwIfFailed()

    if (this.expectedSizeBytes != null && this.offset + chunk.byteLength > this.expectedSizeBytes) {
      throw new BlobTooLargeError(`blob ${this.expectedDigest ?? ''} received ${this.offset + chunk.byteLength} bytes, more than its size of ${this.expectedSizeBytes} bytes`)
    }

    if (chunk.byteLength === 0) {
      return
    }

    if (this.hashedBy !== 'caller') {
      this.hash.update(chunk)
    }
    this.offset += chunk.byteLength
    if (this.retained != null && this.offset <= MAX_CACHED_BLOB_BYTES) {
      this.retained.push(chunk)
    } else {
      this.retained = undefined
    }
    this.queued.push(chunk)
    this.queuedBytes += chunk.byteLength
    this.flushing ??= this.flush()

    if (this.queuedBytes > MAX_PENDING_WRITE_BYTES) {
      await this.flushing
      this.throwIfFailed()
    }
  }

  /**
   * Verifies and stores the blob under its digest, atomically. On a mismatch
   * the partial file is removed and DigestMismatchError is thrown, so nothing
   * unverified ever becomes visible.
   */
  async commit (options?: AbortOptions): Promise<OciDigest> {
    return (await this.commitBlob(options)).digest
  }

  /**
   * As `commit`, and also returns the stored blob's size and modification
   * time. `onVerified` gets the bytes of a blob small enough for the cache
   * once they match the digest, before the fsync.
   */
  async commitBlob (options?: AbortOptions & { onVerified?: (bytes: Uint8Array) => void }): Promise<CommittedBlob> {
    options?.signal?.throwIfAborted()
    this.closed = true

    try {
      await this.settle()
      const digest: OciDigest = this.hashedBy === 'caller' && this.expectedDigest != null ? this.expectedDigest : `sha256:${this.hash.digest('hex')}`
      if (this.expectedSizeBytes != null && this.offset !== this.expectedSizeBytes) {
        throw new DigestMismatchError(`blob ${this.expectedDigest ?? digest} has ${this.offset} bytes but ${this.expectedSizeBytes} were expected`)
      }

      if (this.expectedDigest != null && digest !== this.expectedDigest) {
        throw new DigestMismatchError(`bytes received for ${this.expectedDigest} hash to ${digest}`)
      }

      const bytes = this.retained == null ? undefined : Buffer.concat(this.retained)
      if (bytes != null) {
        options?.onVerified?.(bytes)
      }

      // The fsync must finish before the rename, so that a crash never leaves
      // a partial file under the final name. The store trusts a larger blob
      // again later only at the size and mtime recorded now, and reading the
      // mtime alongside the fsync saves a stat after the rename. A blob kept
      // in the cache is trusted through its cached bytes and needs no mtime.
      let mtimeMs: number | undefined
      if (bytes == null) {
        const [, info] = await Promise.all([this.handle.sync(), this.handle.stat()])
        mtimeMs = info.mtimeMs
      } else {
        await this.handle.sync()
      }
      await Promise.all([this.handle.close(), this.adopt(this.temporaryPath, digest, this.offset, mtimeMs, bytes)])
      return { digest, sizeBytes: this.offset, mtimeMs: mtimeMs ?? Date.now() }
    } catch (err) {
      await this.abort()
      throw err
    }
  }

  /** Drops the partial write. Safe to call more than once. */
  async abort (): Promise<void> {
    this.closed = true
    this.queued = []
    this.queuedBytes = 0
    this.retained = undefined
    // FileHandle.close waits for the write in progress.
    await this.handle.close().catch(() => {})
    await rm(this.temporaryPath, { force: true })
  }

  /** Waits until every queued chunk is written, then throws the first disk error if any. */
  private async settle (): Promise<void> {
    // flush() clears `flushing` when it ends, but when it ends before its
    // first await, the caller's `??=` stores its settled promise afterwards.
    // Clearing a settled promise here keeps this loop from spinning on it.
    while (this.flushing != null) {
      const current = this.flushing
      await current
      if (this.flushing === current) {
        this.flushing = undefined
      }
    }
    this.throwIfFailed()
  }

  private throwIfFailed (): void {
    if (this.failure != null) {
      throw this.failure
    }
  }

  /** Writes queued chunks until none are left, in batches of one writev each. Never rejects. */
  private async flush (): Promise<void> {
    try {
      while (this.queued.length > 0 && this.failure == null) {
        const batch = this.queued.splice(0, MAX_BUFFERS_PER_WRITE)
        const batchBytes = batch.reduce((sum, chunk) => sum + chunk.byteLength, 0)
        this.queuedBytes -= batchBytes
        await writeAll(this.handle, batch, batchBytes)
      }
    } catch (err: any) {
      this.failure ??= err instanceof Error ? err : new Error(String(err))
    } finally {
      this.flushing = undefined
    }
  }
}

/** Writes all of `buffers` at the file's current position, continuing after short writes. */
async function writeAll (handle: FileHandle, buffers: Uint8Array[], totalBytes: number): Promise<void> {
  let { bytesWritten } = await handle.writev(buffers)
  while (bytesWritten < totalBytes) {
    // Skip what was written and cut the first buffer that was written in part.
    let skipped = 0
    let index = 0
    while (skipped + (buffers[index]?.byteLength ?? 0) <= bytesWritten) {
      skipped += buffers[index]?.byteLength ?? 0
      index++
    }
    const rest = buffers.slice(index)
    rest[0] = (rest[0] as Uint8Array).subarray(bytesWritten - skipped)
    const result = await handle.writev(rest)
    bytesWritten += result.bytesWritten
  }
}
