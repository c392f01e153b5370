/**
 * Content store for OCI blobs, laid out as the `blobs/sha256/<hex>` folder of
 * an OCI image layout. A blob appears under its final name only after its
 * bytes were hashed and matched the digest. It is hashed again before this
 * process first serves it, so the store never returns bytes it has not
 * verified.
 */
import { createHash, randomBytes, type Hash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { mkdir, open, readdir, rename, rm, stat, utimes, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { logger } from '@libp2p/logger'
import { digestHex, parseDigest, type OciDigest } from '../../protocol/digest.js'
import { DigestMismatchError } from '../../protocol/errors.js'
import { fsyncDirectory } from './atomic-file.js'
import { BlobNotFoundError, BlobTooLargeError, CorruptBlobError } from './errors.js'
import type { AbortOptions } from '@libp2p/interface'

const log = logger('kilomesh:store')

/** Name of the folder, inside the data directory, that contains partial writes. */
export const TEMPORARY_FOLDER = 'tmp'

/** Size and last use of a stored blob. */
export interface BlobInfo {
  digest: OciDigest
  sizeBytes: number
  /** Last time the blob was written or read, in milliseconds since the Unix epoch; drives LRU eviction. */
  lastUsedMs: number
}

/**
 * An in-progress write of one blob. Bytes are hashed as they arrive; `commit`
 * stores the blob only if the hash matches the expected digest.
 */
export class BlobWriter {
  /** Number of bytes received so far; a resumed download requests the rest from its next source starting here. */
  offset = 0
  private readonly hash: Hash = createHash('sha256')
  private closed = false

  constructor (
    private readonly store: BlobStore,
    private readonly handle: FileHandle,
    readonly temporaryPath: string,
    readonly expectedDigest: OciDigest | undefined,
    readonly expectedSizeBytes: number | undefined
  ) {}

  /** Appends a chunk; throws BlobTooLargeError when it goes past the expected size. */
  async write (chunk: Uint8Array): Promise<void> {
    if (this.closed) {
      throw new Error('blob writer is already closed')
    }

    if (this.expectedSizeBytes != null && this.offset + chunk.byteLength > this.expectedSizeBytes) {
      throw new BlobTooLargeError(`blob ${this.expectedDigest ?? ''} received ${this.offset + chunk.byteLength} bytes, more than its size of ${this.expectedSizeBytes} bytes`)
    }

    this.hash.update(chunk)
    let written = 0
    while (written < chunk.byteLength) {
      const { bytesWritten } = await this.handle.write(chunk, written, chunk.byteLength - written)
      written += bytesWritten
    }
    this.offset += chunk.byteLength
  }

  /**
   * Verifies and stores the blob under its digest, atomically. On a mismatch
   * the partial file is removed and DigestMismatchError is thrown, so nothing
   * unverified ever becomes visible.
   */
  async commit (options?: AbortOptions): Promise<OciDigest> {
    options?.signal?.throwIfAborted()
    this.closed = true

    const digest: OciDigest = `sha256:${this.hash.digest('hex')}`
    try {
      if (this.expectedSizeBytes != null && this.offset !== this.expectedSizeBytes) {
        throw new DigestMismatchError(`blob ${this.expectedDigest ?? digest} has ${this.offset} bytes but ${this.expectedSizeBytes} were expected`)
      }

      if (this.expectedDigest != null && digest !== this.expectedDigest) {
        throw new DigestMismatchError(`bytes received for ${this.expectedDigest} hash to ${digest}`)
      }

      await this.handle.sync()
      await this.handle.close()
      await this.store.adopt(this.temporaryPath, digest, this.offset)
      return digest
    } catch (err) {
      await this.abort()
      throw err
    }
  }

  /** Drops the partial write. Safe to call more than once. */
  async abort (): Promise<void> {
    this.closed = true
    await this.handle.close().catch(() => {})
    await rm(this.temporaryPath, { force: true })
  }
}

/** The blob folder of a data directory, with verified atomic writes and verified reads. */
export class BlobStore {
  readonly blobFolder: string
  readonly temporaryFolder: string

  /** Blobs hashed by this process, keyed by digest, with the size and mtime they were checked at. */
  private readonly verified = new Map<OciDigest, { sizeBytes: number, mtimeMs: number }>()
  private readonly storedListeners = new Set<(digest: OciDigest) => void>()
  private readonly deletedListeners = new Set<(digest: OciDigest) => void>()

  constructor (readonly root: string) {
    this.blobFolder = join(root, 'blobs', 'sha256')
    this.temporaryFolder = join(root, TEMPORARY_FOLDER)
  }

  /** Creates the folders and removes partial writes left by a crash. */
  async init (): Promise<void> {
    await mkdir(this.blobFolder, { recursive: true })
    await rm(this.temporaryFolder, { recursive: true, force: true })
    await mkdir(this.temporaryFolder, { recursive: true })
  }

  /** Returns the file path of a blob; the digest is checked first, so the path stays in the blob folder. */
  pathOf (digest: OciDigest): string {
    return join(this.blobFolder, digestHex(parseDigest(digest)))
  }

  /** Returns true when the blob is stored. */
  async has (digest: OciDigest): Promise<boolean> {
    return (await this.stat(digest)) != null
  }

  /** Returns the blob's size and last use, or undefined when it is not stored. */
  async stat (digest: OciDigest): Promise<BlobInfo | undefined> {
    try {
      const info = await stat(this.pathOf(digest))
      return { digest, sizeBytes: info.size, lastUsedMs: info.mtimeMs }
    } catch (err: any) {
      if (err.code === 'ENOENT') {
        return undefined
      }
      throw err
    }
  }

  /** Starts a write; `expectedDigest` may be omitted when the digest is only known at the end. */
  async createWriter (expectedDigest?: OciDigest, expectedSizeBytes?: number): Promise<BlobWriter> {
    const temporaryPath = join(this.temporaryFolder, `${randomBytes(8).toString('hex')}.partial`)
    const handle = await open(temporaryPath, 'wx', 0o644)
    return new BlobWriter(this, handle, temporaryPath, expectedDigest == null ? undefined : parseDigest(expectedDigest), expectedSizeBytes)
  }

  /** Stores bytes held in memory, verified against `expectedDigest` when given. */
  async put (bytes: Uint8Array, expectedDigest?: OciDigest, options?: AbortOptions): Promise<OciDigest> {
    const writer = await this.createWriter(expectedDigest, expectedDigest == null ? undefined : bytes.byteLength)
    try {
      await writer.write(bytes)
    } catch (err) {
      await writer.abort()
      throw err
    }
    return writer.commit(options)
  }

  /** Stores a stream of bytes, verified against `expectedDigest` when given. */
  async putStream (source: AsyncIterable<Uint8Array>, expectedDigest?: OciDigest, options: AbortOptions & { expectedSizeBytes?: number } = {}): Promise<{ digest: OciDigest, sizeBytes: number }> {
    const writer = await this.createWriter(expectedDigest, options.expectedSizeBytes)
    try {
      for await (const chunk of source) {
        options.signal?.throwIfAborted()
        await writer.write(chunk)
      }
    } catch (err) {
      await writer.abort()
      throw err
    }

    const sizeBytes = writer.offset
    const digest = await writer.commit(options)
    return { digest, sizeBytes }
  }

  /** Moves a verified temporary file to its final name. Only BlobWriter calls this. */
  async adopt (temporaryPath: string, digest: OciDigest, sizeBytes: number): Promise<void> {
    const path = this.pathOf(digest)
    await rename(temporaryPath, path)
    await fsyncDirectory(this.blobFolder)

    const info = await stat(path)
    this.verified.set(digest, { sizeBytes, mtimeMs: info.mtimeMs })
    log('stored blob %s (%d bytes)', digest, sizeBytes)
    this.notify(this.storedListeners, digest)
  }

  /** Calls `listener` after each blob is stored; returns a function that unsubscribes. */
  onStored (listener: (digest: OciDigest) => void): () => void {
    this.storedListeners.add(listener)
    return () => { this.storedListeners.delete(listener) }
  }

  /** Calls `listener` after each blob is deleted; returns a function that unsubscribes. */
  onDeleted (listener: (digest: OciDigest) => void): () => void {
    this.deletedListeners.add(listener)
    return () => { this.deletedListeners.delete(listener) }
  }

  private notify (listeners: Set<(digest: OciDigest) => void>, digest: OciDigest): void {
    for (const listener of listeners) {
      try {
        listener(digest)
      } catch (err: any) {
        log.error('blob listener failed for %s: %e', digest, err)
      }
    }
  }

  /**
   * Hashes the stored file unless this process already did at its current
   * size and mtime. A file that no longer matches its digest (disk corruption,
   * an outside edit) is removed and CorruptBlobError is thrown.
   */
  async verify (digest: OciDigest, options?: AbortOptions): Promise<BlobInfo> {
    const info = await this.stat(digest)
    if (info == null) {
      throw new BlobNotFoundError(`blob ${digest} is not in the store`)
    }

    const known = this.verified.get(digest)
    if (known?.sizeBytes === info.sizeBytes && known.mtimeMs === info.lastUsedMs) {
      return info
    }

    const hash = createHash('sha256')
    for await (const chunk of createReadStream(this.pathOf(digest), { signal: options?.signal })) {
      hash.update(chunk as Buffer)
    }

    const actual = `sha256:${hash.digest('hex')}`
    if (actual !== digest) {
      log.error('blob %s on disk hashes to %s; removing it', digest, actual)
      await rm(this.pathOf(digest), { force: true })
      this.verified.delete(digest)
      throw new CorruptBlobError(`stored blob ${digest} was corrupt (it hashed to ${actual}) and has been removed; fetch it again`)
    }

    this.verified.set(digest, { sizeBytes: info.sizeBytes, mtimeMs: info.lastUsedMs })
    return info
  }

  /** Reads a whole blob into memory after verifying it. Meant for manifests and configs. */
  async read (digest: OciDigest, options?: AbortOptions): Promise<Uint8Array> {
    await this.verify(digest, options)
    const handle = await open(this.pathOf(digest), 'r')
    try {
      return await handle.readFile({ signal: options?.signal })
    } finally {
      await handle.close()
    }
  }

  /** Streams a verified blob from `offset` (inclusive) to its end. */
  async readStream (digest: OciDigest, options: AbortOptions & { offset?: number, end?: number } = {}): Promise<{ sizeBytes: number, stream: AsyncIterable<Uint8Array> }> {
    const info = await this.verify(digest, options)
    const start = options.offset ?? 0
    if (!Number.isSafeInteger(start) || start < 0 || start > info.sizeBytes) {
      throw new RangeError(`offset ${start} is outside blob ${digest} of ${info.sizeBytes} bytes`)
    }

    // An empty blob, or a read starting at the end, has nothing to stream.
    if (start >= info.sizeBytes || info.sizeBytes === 0) {
      return { sizeBytes: info.sizeBytes, stream: (async function * () {})() }
    }

    const stream = createReadStream(this.pathOf(digest), { start, end: options.end, signal: options.signal, highWaterMark: 256 * 1024 })
    // A reader that stops before iterating, then aborts the signal, would
    // otherwise leave an 'error' event with no listener, which ends the process.
    // A reader that iterates still gets the error from the iterator.
    stream.on('error', err => { log.trace('read stream of %s ended: %e', digest, err) })

    return { sizeBytes: info.sizeBytes, stream }
  }

  /**
   * Marks a blob as used now, for least-recently-used eviction. The record of
   * a past verification moves to the new mtime only if the file had not
   * changed since it was verified; otherwise the next read hashes it again.
   */
  async touch (digest: OciDigest): Promise<void> {
    const path = this.pathOf(digest)
    const before = await stat(path)
    const known = this.verified.get(digest)
    const unchanged = known?.sizeBytes === before.size && known.mtimeMs === before.mtimeMs

    const now = new Date()
    await utimes(path, now, now)

    if (known == null) {
      return
    }
    if (unchanged) {
      const after = await stat(path)
      this.verified.set(digest, { sizeBytes: known.sizeBytes, mtimeMs: after.mtimeMs })
    } else {
      this.verified.delete(digest)
    }
  }

  /** Removes a blob; returns false when it was not stored. */
  async delete (digest: OciDigest): Promise<boolean> {
    const existed = await this.has(digest)
    await rm(this.pathOf(digest), { force: true })
    this.verified.delete(digest)
    if (existed) {
      await fsyncDirectory(this.blobFolder)
      log('deleted blob %s', digest)
      this.notify(this.deletedListeners, digest)
    }
    return existed
  }

  /** Lists every stored blob. Files whose names are not sha256 hex are skipped. */
  async list (): Promise<BlobInfo[]> {
    const blobs: BlobInfo[] = []
    for (const name of await readdir(this.blobFolder)) {
      if (!/^[0-9a-f]{64}$/.test(name)) {
        continue
      }

      const info = await this.stat(`sha256:${name}`)
      if (info != null) {
        blobs.push(info)
      }
    }
    return blobs
  }
}
