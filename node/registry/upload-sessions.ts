/**
 * Blob uploads in progress. Each upload is a partial file in the upload
 * folder of the data directory plus a record in memory. A finished upload is
 * copied into the content store through BlobStore.putStream, which hashes the
 * bytes again, so nothing reaches the store unverified. Uploads expire after
 * a time without requests, and their total size and number are bounded.
 */
import { randomUUID } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { mkdir, open, readdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { logger } from '@libp2p/logger'
import { DigestMismatchError } from '../../protocol/errors.js'
import { RegistryError } from './errors.js'
import type { OciDigest } from '../../protocol/digest.js'
import type { BlobStore } from '../store/blob-store.js'
import type { AbortOptions } from '@libp2p/interface'

const log = logger('kilomesh:registry:uploads')

/** Maximum time between two expiry sweeps. */
const MAX_SWEEP_INTERVAL_MS = 60_000

/**
 * Idle time after which an upload that never received a byte is dropped.
 * Clients send their first chunk right after starting an upload, so an
 * empty one this old was abandoned. Without a shorter limit, a client that
 * only starts uploads holds every upload slot for the whole idle time.
 */
export const EMPTY_UPLOAD_TTL_MS = 5 * 60_000

const UPLOAD_ID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

/** One upload in progress. */
export interface UploadSession {
  readonly id: string
  /** Repository the upload was started in; requests through another repository do not see it. */
  readonly repository: string
  readonly path: string
  /** Bytes received so far, which is also where the next chunk must start. */
  sizeBytes: number
  lastUsedMs: number
  /** True while a request streams into the file; a second writer is rejected. */
  busy: boolean
}

export interface UploadSessionsInit {
  folder: string
  maxUploadBytes: number
  uploadTtlMs: number
  maxUploads: number
}

/** The set of uploads in progress, with their partial files. */
export class UploadSessions {
  private readonly sessions = new Map<string, UploadSession>()
  private sweepTimer?: NodeJS.Timeout

  constructor (private readonly store: BlobStore, private readonly init: UploadSessionsInit) {}

  /**
   * Creates the upload folder and removes the partial files of a previous
   * run, whose records were only in memory and cannot be resumed.
   */
  async start (): Promise<void> {
    await mkdir(this.init.folder, { recursive: true })
    for (const name of await readdir(this.init.folder)) {
      await rm(join(this.init.folder, name), { force: true, recursive: true })
    }

    const intervalMs = Math.max(1, Math.min(this.init.uploadTtlMs / 2, MAX_SWEEP_INTERVAL_MS))
    this.sweepTimer = setInterval(() => { void this.sweep() }, intervalMs)
    this.sweepTimer.unref()
  }

  /** Drops every upload and its partial file. */
  async stop (): Promise<void> {
    clearInterval(this.sweepTimer)
    this.sweepTimer = undefined
    for (const session of [...this.sessions.values()]) {
      await this.remove(session)
    }
  }

  /** Number of uploads in progress. */
  get size (): number {
    return this.sessions.size
  }

  /** Number of uploads a request is writing to right now. */
  get busyCount (): number {
    return [...this.sessions.values()].filter(session => session.busy).length
  }

  /** Starts an empty upload in a repository. */
  async create (repository: string): Promise<UploadSession> {
    if (this.sessions.size >= this.init.maxUploads) {
      const emptyTtlSeconds = Math.ceil(this.emptyTtlMs / 1000)
      throw new RegistryError('TOO_MANY_UPLOADS', `${this.sessions.size} uploads are already in progress, the limit is ${this.init.maxUploads}: finish or cancel one, or wait for idle ones to expire (after ${emptyTtlSeconds} s when empty, ${Math.ceil(this.init.uploadTtlMs / 1000)} s otherwise)`, { 'Retry-After': String(this.secondsUntilFirstExpiry(Date.now())) })
    }

    const id = randomUUID()
    const path = join(this.init.folder, id)
    const handle = await open(path, 'wx', 0o644)
    await handle.close()

    const session: UploadSession = { id, repository, path, sizeBytes: 0, lastUsedMs: Date.now(), busy: false }
    this.sessions.set(id, session)
    log('started upload %s in %s', id, repository)
    return session
  }

  /** Returns an upload of a repository, or throws BLOB_UPLOAD_UNKNOWN naming the ID. */
  get (id: string, repository: string): UploadSession {
    const session = UPLOAD_ID_PATTERN.test(id) ? this.sessions.get(id) : undefined
    if (session?.repository !== repository) {
      throw new RegistryError('BLOB_UPLOAD_UNKNOWN', `upload ${JSON.stringify(id.slice(0, 100))} is unknown in repository ${repository}: it finished, expired or was cancelled, so start a new one with POST /v2/${repository}/blobs/uploads/`)
    }

    session.lastUsedMs = Date.now()
    return session
  }

  /**
   * Appends a stream of bytes at the end of an upload and returns how many
   * arrived. When the stream fails, passes the size limit or differs from
   * `expectedBytes`, the file is cut back to where this call started, so the
   * client may send the same chunk again.
   */
  async append (session: UploadSession, source: AsyncIterable<Uint8Array>, options: AbortOptions & { expectedBytes?: number } = {}): Promise<number> {
    if (session.busy) {
      throw new RegistryError('BLOB_UPLOAD_BUSY', `upload ${session.id} is already receiving a chunk: send chunks one after the other`)
    }

    session.busy = true
    const startBytes = session.sizeBytes
    const handle = await open(session.path, 'r+')
    let positionBytes = startBytes

    try {
      for await (const chunk of source) {
        options.signal?.throwIfAborted()
        this.requireActive(session)

        if (positionBytes + chunk.byteLength > this.init.maxUploadBytes) {
          throw new RegistryError('BLOB_TOO_LARGE', `upload ${session.id} would grow past the limit of ${this.init.maxUploadBytes} bytes`)
        }

        let written = 0
        while (written < chunk.byteLength) {
          const { bytesWritten } = await handle.write(chunk, written, chunk.byteLength - written, positionBytes + written)
          written += bytesWritten
        }
        positionBytes += chunk.byteLength
      }

      this.requireActive(session)
      const receivedBytes = positionBytes - startBytes
      if (options.expectedBytes != null && receivedBytes !== options.expectedBytes) {
        throw new RegistryError('SIZE_INVALID', `chunk for upload ${session.id} has ${receivedBytes} bytes, but its Content-Range announced ${options.expectedBytes}`)
      }

      session.sizeBytes = positionBytes
      return receivedBytes
    } catch (err) {
      await handle.truncate(startBytes)
      throw err
    } finally {
      await handle.close()
      session.busy = false
      session.lastUsedMs = Date.now()
    }
  }

  /**
   * Throws BLOB_UPLOAD_UNKNOWN when a DELETE cancelled the upload while a
   * chunk arrived, so that the chunk's request stops writing and the client
   * gets no Location for an upload that no longer exists.
   */
  private requireActive (session: UploadSession): void {
    if (this.sessions.get(session.id) !== session) {
      throw new RegistryError('BLOB_UPLOAD_UNKNOWN', `upload ${session.id} was cancelled while this chunk arrived, so start a new one with POST /v2/${session.repository}/blobs/uploads/`)
    }
  }

  /**
   * Moves a finished upload into the content store under `digest`. The
   * upload ends either way: on a mismatch the client has to start over, as
   * the reference registry also does.
   */
  async complete (session: UploadSession, digest: OciDigest, options?: AbortOptions): Promise<{ digest: OciDigest, sizeBytes: number }> {
    if (session.busy) {
      throw new RegistryError('BLOB_UPLOAD_BUSY', `upload ${session.id} is still receiving a chunk: wait for it before completing the upload`)
    }

    session.busy = true
    try {
      const stored = await this.store.putStream(createReadStream(session.path, { signal: options?.signal }), digest, { expectedSizeBytes: session.sizeBytes, signal: options?.signal })
      log('completed upload %s as %s (%d bytes)', session.id, stored.digest, stored.sizeBytes)
      return stored
    } catch (err: any) {
      if (err instanceof DigestMismatchError) {
        throw new RegistryError('DIGEST_INVALID', `${err.message}; upload ${session.id} is closed, so start a new one with POST /v2/${session.repository}/blobs/uploads/`)
      }
      throw err
    } finally {
      await this.remove(session)
    }
  }

  /** Cancels an upload and deletes its partial file. */
  async cancel (session: UploadSession): Promise<void> {
    await this.remove(session)
    log('cancelled upload %s', session.id)
  }

  private async remove (session: UploadSession): Promise<void> {
    this.sessions.delete(session.id)
    await rm(session.path, { force: true })
  }

  /** Drops uploads idle for longer than the time to live. Exported for tests through {@link expireIdle}. */
  private async sweep (): Promise<void> {
    try {
      await this.expireIdle(Date.now())
    } catch (err) {
      log.error('failed to expire idle uploads - %e', err)
    }
  }

  /** Returns the seconds until the first upload that is not being written to expires, at least 1. */
  private secondsUntilFirstExpiry (nowMs: number): number {
    let firstMs = Infinity
    for (const session of this.sessions.values()) {
      if (!session.busy) {
        firstMs = Math.min(firstMs, session.lastUsedMs + this.ttlOf(session) - nowMs)
      }
    }
    return Number.isFinite(firstMs) ? Math.max(1, Math.ceil(firstMs / 1000)) : Math.ceil(this.init.uploadTtlMs / 1000)
  }

  /** Idle time after which an upload with no bytes yet expires, in ms. */
  private get emptyTtlMs (): number {
    return Math.min(this.init.uploadTtlMs, EMPTY_UPLOAD_TTL_MS)
  }

  /** Returns the idle time after which `session` expires, in ms. */
  private ttlOf (session: UploadSession): number {
    return session.sizeBytes === 0 ? this.emptyTtlMs : this.init.uploadTtlMs
  }

  /**
   * Drops every upload idle since before `nowMs - uploadTtlMs`, and every
   * empty one idle for EMPTY_UPLOAD_TTL_MS; returns how many were dropped.
   */
  async expireIdle (nowMs: number): Promise<number> {
    let expired = 0
    for (const session of [...this.sessions.values()]) {
      if (!session.busy && nowMs - session.lastUsedMs > this.ttlOf(session)) {
        await this.remove(session)
        expired++
        log('expired upload %s of %s after %d ms idle', session.id, session.repository, nowMs - session.lastUsedMs)
      }
    }
    return expired
  }
}
