/**
 * Content store for OCI blobs, laid out as the `blobs/sha256/<hex>` folder of
 * an OCI image layout. A blob appears under its final name only after its
 * bytes were hashed and matched the digest. It is hashed again before this
 * process first serves it, so the store never returns bytes it has not
 * verified.
 */
import { createHash, randomBytes } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { mkdir, open, readdir, rename, rm, stat, utimes, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { logger } from '@libp2p/logger'
import { digestHex, parseDigest, type OciDigest } from '../../protocol/digest.js'
import { FolderSync } from './atomic-file.js'
import { BlobCache, MAX_CACHED_BLOB_BYTES } from './blob-cache.js'
import { ReadCheck } from './read-check.js'
import { BlobWriter } from './blob-writer.js'
import { BlobNotFoundError, CorruptBlobError } from './errors.js'
import type { AbortOptions } from '@libp2p/interface'

export { BlobWriter, type CommittedBlob } from './blob-writer.js'

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

/** A stored blob, verified and open for reading. */
export interface OpenBlob {
  digest: OciDigest
  sizeBytes: number
  /** Reads `lengthBytes` from `position` into a new buffer; returns fewer only at the end of the file. */
  read: (position: number, lengthBytes: number) => Promise<Uint8Array>
  close: () => Promise<void>
}

/** Read size used when hashing a stored file. */
const HASH_READ_BYTES = 1024 * 1024

async function hashOpenFile (handle: FileHandle, sizeBytes: number, options?: AbortOptions): Promise<string> {
  const hash = createHash('sha256')
  const buffer = Buffer.allocUnsafe(Math.min(HASH_READ_BYTES, Math.max(sizeBytes, 1)))
  let position = 0
  while (true) {
    options?.signal?.throwIfAborted()
    const { bytesRead } = await handle.read(buffer, 0, buffer.byteLength, position)
    if (bytesRead === 0) {
      break
    }
    hash.update(buffer.subarray(0, bytesRead))
    position += bytesRead
  }
  return `sha256:${hash.digest('hex')}`
}

function openInMemory (digest: OciDigest, bytes: Uint8Array): OpenBlob {
  return {
    digest,
    sizeBytes: bytes.byteLength,
    read: async (position, lengthBytes) => bytes.subarray(position, position + lengthBytes),
    close: async () => {}
  }
}

/** Hashes the file at `path` as it is now and returns its digest. */
async function hashFile (path: string, options?: AbortOptions): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(path, { signal: options?.signal })) {
    hash.update(chunk as Buffer)
  }
  return `sha256:${hash.digest('hex')}`
}

/** Yields the chunks of a file read from `start`, each checked before it is passed on. */
async function * checkedChunks (source: AsyncIterable<Buffer>, start: number, check: ReadCheck): AsyncGenerator<Uint8Array> {
  let position = start
  for await (const chunk of source) {
    await check.check(position, chunk)
    position += chunk.byteLength
    yield chunk
  }
}

async function readAt (handle: FileHandle, position: number, lengthBytes: number): Promise<Uint8Array> {
  const buffer = Buffer.allocUnsafe(lengthBytes)
  let filled = 0
  while (filled < lengthBytes) {
    const { bytesRead } = await handle.read(buffer, filled, lengthBytes - filled, position + filled)
    if (bytesRead === 0) {
      break
    }
    filled += bytesRead
  }
  return filled === lengthBytes ? buffer : buffer.subarray(0, filled)
}

/** The blob folder of a data directory, with verified atomic writes and verified reads. */
export class BlobStore {
  readonly blobFolder: string
  /** Folder fsyncs shared by blobs stored or deleted together. */
  private readonly blobFolderSync: FolderSync
  readonly temporaryFolder: string

  /** Blobs hashed by this process, keyed by digest, with the size and mtime they were checked at. */
  private readonly verified = new Map<OciDigest, { sizeBytes: number, mtimeMs: number }>()
  /** Bytes of small verified blobs. Every path that deletes a blob or finds it changed removes it here too. */
  private readonly cache: BlobCache
  private readonly storedListeners = new Set<(digest: OciDigest) => void>()
  private readonly deletedListeners = new Set<(digest: OciDigest) => void>()

  /** `cacheBytes` bounds the memory of verified blobs kept to serve them (default MAX_CACHE_BYTES). */
  constructor (readonly root: string, init: { cacheBytes?: number } = {}) {
    this.cache = new BlobCache(init.cacheBytes)
    this.blobFolder = join(root, 'blobs', 'sha256')
    this.blobFolderSync = new FolderSync(this.blobFolder)
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

  /**
   * Starts a write; `expectedDigest` may be omitted when the digest is only
   * known at the end. With `hashedBy: 'caller'` the writer trusts that the
   * bytes hash to `expectedDigest` (see putVerified).
   */
  async createWriter (expectedDigest?: OciDigest, expectedSizeBytes?: number, hashedBy?: 'caller'): Promise<BlobWriter> {
    const temporaryPath = join(this.temporaryFolder, `${randomBytes(8).toString('hex')}.partial`)
    const handle = await open(temporaryPath, 'wx', 0o644)
    const adopt = async (path: string, digest: OciDigest, sizeBytes: number, mtimeMs: number | undefined, bytes?: Uint8Array): Promise<void> => { await this.adopt(path, digest, sizeBytes, mtimeMs, bytes) }
    return new BlobWriter(handle, temporaryPath, expectedDigest == null ? undefined : parseDigest(expectedDigest), expectedSizeBytes, adopt, expectedDigest == null ? undefined : hashedBy)
  }

  /** Stores bytes held in memory, verified against `expectedDigest` when given. */
  async put (bytes: Uint8Array, expectedDigest?: OciDigest, options?: AbortOptions): Promise<OciDigest> {
    return this.writeBytes(bytes, expectedDigest, undefined, options)
  }

  /**
   * Stores bytes that the caller has already hashed to `digest`, as it
   * received them from a peer, without hashing them again. The bytes must
   * not change afterwards. Everything else goes through `put`.
   */
  async putVerified (bytes: Uint8Array, digest: OciDigest, options?: AbortOptions): Promise<OciDigest> {
    return this.writeBytes(bytes, digest, 'caller', options)
  }

  private async writeBytes (bytes: Uint8Array, expectedDigest: OciDigest | undefined, hashedBy: 'caller' | undefined, options?: AbortOptions): Promise<OciDigest> {
    const writer = await this.createWriter(expectedDigest, expectedDigest == null ? undefined : bytes.byteLength, hashedBy)
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

  /**
   * Moves a verified temporary file, whose mtime is `mtimeMs`, to its final
   * name. `bytes`, the verified content of a small blob, goes to the cache,
   * and such a blob may come without an mtime. Only BlobWriter calls this.
   */
  private async adopt (temporaryPath: string, digest: OciDigest, sizeBytes: number, mtimeMs: number | undefined, bytes?: Uint8Array): Promise<void> {
    await rename(temporaryPath, this.pathOf(digest))
    await this.blobFolderSync.sync()

    if (mtimeMs != null) {
      this.verified.set(digest, { sizeBytes, mtimeMs })
    }
    if (bytes != null) {
      this.cache.set(digest, bytes)
    }
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

    await this.checkHash(digest, await hashFile(this.pathOf(digest), options))
    this.verified.set(digest, { sizeBytes: info.sizeBytes, mtimeMs: info.lastUsedMs })
    return info
  }

  /**
   * Returns the verified bytes of a blob in the memory cache (see `open`),
   * or undefined. The caller must not change them.
   */
  cachedBytes (digest: OciDigest): Uint8Array | undefined {
    return this.cache.get(digest)
  }

  /**
   * Opens a stored blob for reading, or returns undefined when it is not
   * stored. The open file is hashed first unless this process already
   * verified it at its current size and mtime, so the bytes read are the ones
   * that were checked. A blob that no longer matches is removed and
   * CorruptBlobError is thrown. The caller must close what it opened.
   *
   * A blob of at most MAX_CACHED_BLOB_BYTES is read whole, hashed and cached.
   * Later opens and reads return it from memory without looking at the disk,
   * until the store deletes it or `touch` finds the file changed. A file
   * removed by another program is still served from memory until then.
   */
  async open (digest: OciDigest, options?: AbortOptions): Promise<OpenBlob | undefined> {
    const cached = this.cache.get(digest)
    if (cached != null) {
      return openInMemory(digest, cached)
    }

    let handle: FileHandle
    try {
      handle = await open(this.pathOf(digest), 'r')
    } catch (err: any) {
      if (err.code === 'ENOENT') {
        return undefined
      }
      throw err
    }

    try {
      const info = await handle.stat()

      // A small blob is read whole and hashed every time it enters the
      // cache, so the cache holds only bytes that matched the digest.
      if (info.size <= MAX_CACHED_BLOB_BYTES) {
        const bytes = await readAt(handle, 0, info.size)
        await handle.close()
        await this.checkHash(digest, `sha256:${createHash('sha256').update(bytes).digest('hex')}`)
        this.verified.set(digest, { sizeBytes: bytes.byteLength, mtimeMs: info.mtimeMs })
        this.cache.set(digest, bytes)
        return openInMemory(digest, bytes)
      }

      const known = this.verified.get(digest)
      if (known?.sizeBytes !== info.size || known.mtimeMs !== info.mtimeMs) {
        await this.checkHash(digest, await hashOpenFile(handle, info.size, options))
        this.verified.set(digest, { sizeBytes: info.size, mtimeMs: info.mtimeMs })
      }

      // A change to the file while it is read is caught before its last chunk.
      const check = new ReadCheck({
        digest,
        sizeBytes: info.size,
        mtimeMs: info.mtimeMs,
        endBytes: info.size,
        statNow: async () => handle.stat(),
        // The read goes to the end of the file, whatever its size is now.
        hashNow: async () => hashOpenFile(handle, info.size),
        discardCorrupt: async reason => this.discardCorrupt(digest, reason)
      })
      return {
        digest,
        sizeBytes: info.size,
        read: async (position, lengthBytes) => {
          const bytes = await readAt(handle, position, lengthBytes)
          await check.check(position, bytes)
          return bytes
        },
        close: async () => { await handle.close() }
      }
    } catch (err) {
      await handle.close().catch(() => {})
      throw err
    }
  }

  /** Removes a stored blob whose bytes hash to `actual` instead of `digest`, and throws CorruptBlobError. */
  private async checkHash (digest: OciDigest, actual: string): Promise<void> {
    if (actual === digest) {
      return
    }
    await this.discardCorrupt(digest, `it hashed to ${actual}`)
  }

  /** Removes a blob found corrupt, logs it, and throws CorruptBlobError naming `reason`. */
  private async discardCorrupt (digest: OciDigest, reason: string): Promise<never> {
    log.error('blob %s on disk is corrupt (%s); removing it', digest, reason)
    await rm(this.pathOf(digest), { force: true })
    this.verified.delete(digest)
    this.cache.delete(digest)
    throw new CorruptBlobError(`stored blob ${digest} was corrupt (${reason}) and has been removed; fetch it again`)
  }

  /** Reads a whole blob into memory after verifying it. Meant for manifests and configs. */
  async read (digest: OciDigest, options?: AbortOptions): Promise<Uint8Array> {
    // A copy, so that a caller that changes the bytes does not change the cache.
    const cached = this.cache.get(digest)
    if (cached != null) {
      return Buffer.from(cached)
    }

    await this.verify(digest, options)
    const handle = await open(this.pathOf(digest), 'r')
    let bytes: Uint8Array
    try {
      bytes = await handle.readFile({ signal: options?.signal })
    } finally {
      await handle.close()
    }

    // Only bytes that hash to the digest enter the cache, whatever happened to the file since verify.
    if (bytes.byteLength <= MAX_CACHED_BLOB_BYTES && `sha256:${createHash('sha256').update(bytes).digest('hex')}` === digest) {
      this.cache.set(digest, Buffer.from(bytes))
    }
    return bytes
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

    const path = this.pathOf(digest)
    const stream = createReadStream(path, { start, end: options.end, signal: options.signal, highWaterMark: 256 * 1024 })
    // A reader that stops before iterating, then aborts the signal, would
    // otherwise leave an 'error' event with no listener, which ends the process.
    // A reader that iterates still gets the error from the iterator.
    stream.on('error', err => { log.trace('read stream of %s ended: %e', digest, err) })

    // `end` is inclusive, as in an HTTP range.
    const check = new ReadCheck({
      digest,
      sizeBytes: info.sizeBytes,
      mtimeMs: info.lastUsedMs,
      endBytes: Math.min(options.end ?? info.sizeBytes - 1, info.sizeBytes - 1) + 1,
      statNow: async () => stat(path),
      hashNow: async () => hashFile(path),
      discardCorrupt: async reason => this.discardCorrupt(digest, reason)
    })
    return { sizeBytes: info.sizeBytes, stream: checkedChunks(stream, start, check) }
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
      // A small blob is stored without reading its mtime, so nothing shows
      // whether the file changed since its bytes were cached. The next read
      // goes back to the disk and verifies it.
      this.cache.delete(digest)
      return
    }
    if (unchanged) {
      const after = await stat(path)
      this.verified.set(digest, { sizeBytes: known.sizeBytes, mtimeMs: after.mtimeMs })
    } else {
      this.verified.delete(digest)
      this.cache.delete(digest)
    }
  }

  /** Removes a blob; returns false when it was not stored. */
  async delete (digest: OciDigest): Promise<boolean> {
    const existed = await this.has(digest)
    await rm(this.pathOf(digest), { force: true })
    this.verified.delete(digest)
    this.cache.delete(digest)
    if (existed) {
      await this.blobFolderSync.sync()
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
