/**
 * Server side of `/kilomesh/blob/1.0.0`: reads one BlobRequest, sends a
 * BlobResponse header, then streams the verified blob bytes from the
 * requested offset and closes the stream.
 */
import { logger } from '@libp2p/logger'
import { pbStream } from '@libp2p/utils'
import { BLOB_PROTOCOL, MAX_MESSAGE_BYTES } from '../../protocol/constants.js'
import { isDigest, type OciDigest } from '../../protocol/digest.js'
import { BlobRequest, BlobResponse } from '../../protocol/messages/blob.js'
import { CorruptBlobError } from '../store/errors.js'
import { MAX_INBOUND_BLOB_STREAMS, MAX_TRANSFER_TIME_MS, REQUEST_TIMEOUT_MS } from './constants.js'
import { UploadBudget } from './upload-budget.js'
import type { BlobStore } from '../store/blob-store.js'
import type { KilomeshLibp2p } from './libp2p.js'
import type { Connection, Stream } from '@libp2p/interface'

const log = logger('kilomesh:blob-server')

/** Counters of what the server sent, for status output and metrics. */
export interface BlobServerStats {
  requests: number
  servedBlobs: number
  sentBytes: number
  /** Requests that got BUSY because of the upload budget. */
  busyAnswers: number
}

export class BlobServer {
  readonly stats: BlobServerStats = { requests: 0, servedBlobs: 0, sentBytes: 0, busyAnswers: 0 }
  private readonly shutdown = new AbortController()

  constructor (
    private readonly node: KilomeshLibp2p,
    private readonly store: BlobStore,
    private readonly budget: UploadBudget = new UploadBudget()
  ) {}

  async start (): Promise<void> {
    await this.node.handle(BLOB_PROTOCOL, async (stream, connection) => {
      await this.serve(stream, connection)
    }, { maxInboundStreams: MAX_INBOUND_BLOB_STREAMS })
  }

  async stop (): Promise<void> {
    this.shutdown.abort()
    await this.node.unhandle(BLOB_PROTOCOL)
  }

  private async serve (stream: Stream, connection: Connection): Promise<void> {
    const peer = connection.remotePeer
    const signal = AbortSignal.any([this.shutdown.signal, AbortSignal.timeout(MAX_TRANSFER_TIME_MS)])
    this.stats.requests++

    try {
      const messages = pbStream(stream, { maxDataLength: MAX_MESSAGE_BYTES })
      const request = await messages.read(BlobRequest, { signal: AbortSignal.any([signal, AbortSignal.timeout(REQUEST_TIMEOUT_MS)]) })
      let answer = await this.check(request)
      if (answer.status === BlobResponse.Status.OK) {
        const connected = new Set(this.node.getPeers().map(remote => remote.toString()))
        const busy = this.budget.check(request.digest, peer.toString(), Number(request.offset), recipient => connected.has(recipient))
        if (busy != null) {
          this.stats.busyAnswers++
          answer = { status: BlobResponse.Status.BUSY, size: answer.size, message: busy }
        }
      }

      if (answer.status !== BlobResponse.Status.OK || request.headerOnly) {
        await messages.write(answer, BlobResponse, { signal })
        await stream.close({ signal })
        return
      }

      // The upload counts against the budget from the moment it passed the
      // check, before any await: requests arriving together must not all
      // pass the check before the first one is counted.
      const digest = request.digest as OciDigest
      const endUpload = this.budget.begin(digest, peer.toString())
      let sentBytes = 0
      try {
        let body
        try {
          body = await this.store.readStream(digest, { offset: Number(request.offset), signal })
        } catch (err: any) {
          // A blob that failed verification was removed; report it as missing instead of serving it.
          const status = err instanceof CorruptBlobError ? BlobResponse.Status.NOT_FOUND : BlobResponse.Status.ERROR
          await messages.write({ status, size: 0n, message: err.message }, BlobResponse, { signal })
          await stream.close({ signal })
          return
        }

        await messages.write(answer, BlobResponse, { signal })
        const raw = messages.unwrap()
        for await (const chunk of body.stream) {
          if (!raw.send(chunk)) {
            await raw.onDrain({ signal })
          }
          sentBytes += chunk.byteLength
        }
        await raw.close({ signal })
      } finally {
        endUpload()
      }

      this.stats.servedBlobs++
      this.stats.sentBytes += sentBytes
      log.trace('sent %s from offset %d (%d bytes) to %p', digest, request.offset, sentBytes, peer)
    } catch (err: any) {
      log('blob request from %p failed: %e', peer, err)
      stream.abort(err)
    }
  }

  /** Builds the response header for a request, checking the digest, presence and offset. */
  private async check (request: BlobRequest): Promise<BlobResponse> {
    if (!isDigest(request.digest)) {
      return { status: BlobResponse.Status.BAD_REQUEST, size: 0n, message: `invalid digest ${JSON.stringify(request.digest.slice(0, 80))}` }
    }

    const info = await this.store.stat(request.digest)
    if (info == null) {
      return { status: BlobResponse.Status.NOT_FOUND, size: 0n, message: `blob ${request.digest} is not here` }
    }

    if (request.offset > BigInt(info.sizeBytes)) {
      return { status: BlobResponse.Status.BAD_REQUEST, size: BigInt(info.sizeBytes), message: `offset ${request.offset} is past the end of ${request.digest} (${info.sizeBytes} bytes)` }
    }

    return { status: BlobResponse.Status.OK, size: BigInt(info.sizeBytes), message: '' }
  }
}
