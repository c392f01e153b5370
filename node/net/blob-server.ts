/**
 * Server side of `/kilomesh/blob/1.0.0`: reads one BlobRequest, sends a
 * BlobResponse header, then streams the verified blob bytes from the
 * requested offset and closes the stream.
 */
import { logger } from '@libp2p/logger'
import { pbStream } from '@libp2p/utils'
import { encode as lengthPrefixed } from 'it-length-prefixed'
import { Uint8ArrayList } from 'uint8arraylist'
import { BLOB_PROTOCOL, MAX_MESSAGE_BYTES } from '../../protocol/constants.js'
import { isDigest, type OciDigest } from '../../protocol/digest.js'
import { BlobRequest, BlobResponse } from '../../protocol/messages/blob.js'
import { CorruptBlobError } from '../store/errors.js'
import { ARRIVAL_WAIT_MS, BLOB_CHUNK_BYTES, MAX_HOLDER_HINTS, MAX_INBOUND_BLOB_STREAMS, MAX_TRANSFER_TIME_MS, REQUEST_TIMEOUT_MS } from './constants.js'
import { connectedPeerNames, connectedPeers } from './peers.js'
import { anySignal, raceAbort, timeoutSignal } from './signals.js'
import { UploadBudget } from './upload-budget.js'
import type { BlobStore, OpenBlob } from '../store/blob-store.js'
import type { KilomeshLibp2p } from './libp2p.js'
import type { AbortOptions, Connection, PeerId, Stream } from '@libp2p/interface'

const log = logger('kilomesh:blob-server')

/** Counters of what the server sent, for status output and metrics. */
export interface BlobServerStats {
  requests: number
  servedBlobs: number
  sentBytes: number
  /** Requests that got BUSY because of the upload budget. */
  busyAnswers: number
  /** Requests for a blob this agent was receiving, which got BUSY with its source. */
  receivingAnswers: number
  /** Requests that waited for a blob in transit to this agent until it was stored. */
  awaitedArrivals: number
}

/**
 * The blobs arriving at this agent, as its fetcher tracks them. A server
 * without this view responds NOT_FOUND for every blob it does not have.
 */
export interface IncomingBlobs {
  /** Returns the peer that is sending `digest` to this agent at the moment, if any. */
  receivingFrom: (digest: OciDigest) => PeerId | undefined
  /** Resolves when the transfer of `digest` in progress ends, stored or not. */
  settled: (digest: OciDigest, options?: AbortOptions) => Promise<void>
  /** Returns the write of a blob kept in memory until its delayed write, started now. It resolves to true once the blob is stored. */
  pendingWriteOf?: (digest: OciDigest) => Promise<boolean> | undefined
}

const NO_INCOMING_BLOBS: IncomingBlobs = {
  receivingFrom: () => undefined,
  settled: async () => {}
}

export class BlobServer {
  readonly stats: BlobServerStats = { requests: 0, servedBlobs: 0, sentBytes: 0, busyAnswers: 0, receivingAnswers: 0, awaitedArrivals: 0 }
  private readonly shutdown = new AbortController()

  constructor (
    private readonly node: KilomeshLibp2p,
    private readonly store: BlobStore,
    private readonly budget: UploadBudget = new UploadBudget(),
    private readonly incoming: IncomingBlobs = NO_INCOMING_BLOBS
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
    const signal = anySignal([this.shutdown.signal, AbortSignal.timeout(MAX_TRANSFER_TIME_MS)])
    this.stats.requests++
    let blob: OpenBlob | undefined

    try {
      const messages = pbStream(stream, { maxDataLength: MAX_MESSAGE_BYTES })
      const request = await messages.read(BlobRequest, { signal: anySignal([signal, AbortSignal.timeout(REQUEST_TIMEOUT_MS)]) })
      const checked = await this.check(request, peer.toString(), { signal })
      blob = checked.blob
      const raw = messages.unwrap()

      if (blob == null || request.headerOnly) {
        raw.send(encodeHeader(checked.answer))
        await raw.close({ signal })
        return
      }

      const digest = blob.digest
      const endUpload = checked.endUpload ?? (() => {})
      let sentBytes = 0
      try {
        // The header travels with the first chunk in one frame. While one
        // chunk goes out, the next is read from the disk.
        let position = Number(request.offset)
        let next = position < blob.sizeBytes ? blob.read(position, Math.min(BLOB_CHUNK_BYTES, blob.sizeBytes - position)) : undefined
        let pending: Uint8Array | Uint8ArrayList = encodeHeader(checked.answer)
        while (next != null) {
          const chunk = await next
          if (chunk.byteLength === 0) {
            throw new Error(`stored blob ${digest} ended at byte ${position} of ${blob.sizeBytes} while it was being sent; it changed on disk`)
          }
          position += chunk.byteLength
          next = position < blob.sizeBytes ? blob.read(position, Math.min(BLOB_CHUNK_BYTES, blob.sizeBytes - position)) : undefined
          // A read that fails while the stream waits for drain is reported by its await.
          next?.catch(() => {})

          const frame: Uint8Array | Uint8ArrayList = pending.byteLength > 0 ? new Uint8ArrayList(pending, chunk) : chunk
          pending = new Uint8Array(0)
          if (!raw.send(frame)) {
            await raw.onDrain({ signal })
          }
          sentBytes += chunk.byteLength
        }
        if (pending.byteLength > 0) {
          raw.send(pending)
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
    } finally {
      await blob?.close().catch(() => {})
    }
  }

  /**
   * Builds the response header for a request, checking the digest, presence,
   * offset and upload budget. For a full request that can be served it also
   * returns the blob, opened and verified. A header-only request reads only the size.
   */
  private async check (request: BlobRequest, peer: string, options: AbortOptions): Promise<{ answer: BlobResponse, blob?: OpenBlob, endUpload?: () => void }> {
    if (!isDigest(request.digest)) {
      return { answer: { status: BlobResponse.Status.BAD_REQUEST, size: 0n, message: `invalid digest ${JSON.stringify(request.digest.slice(0, 80))}`, holders: [] } }
    }

    let sizeBytes: number
    let blob: OpenBlob | undefined
    // The store is asked twice only for a blob in transit to this agent.
    if (this.incoming.receivingFrom(request.digest) != null && await this.store.stat(request.digest) == null) {
      await this.awaitArrival(request.digest, peer, options)
    }
    // A blob the registry sent its client from memory reaches the store a
    // moment later, so the request starts that write and waits for it
    // (ARRIVAL_WAIT_MS at most) instead of returning NOT_FOUND. Only blobs
    // whose bytes have all arrived have such a write.
    const writing = this.incoming.pendingWriteOf?.(request.digest)
    if (writing != null) {
      await raceAbort(writing, timeoutSignal(ARRIVAL_WAIT_MS, options.signal)).catch(() => false)
    }

    if (request.headerOnly) {
      const info = await this.store.stat(request.digest)
      if (info == null) {
        return { answer: await this.absent(request.digest, peer, options) }
      }
      sizeBytes = info.sizeBytes
    } else {
      try {
        blob = await this.store.open(request.digest, options)
      } catch (err: any) {
        // A blob that failed verification was removed; report it as missing instead of serving it.
        const status = err instanceof CorruptBlobError ? BlobResponse.Status.NOT_FOUND : BlobResponse.Status.ERROR
        return { answer: { status, size: 0n, message: err.message, holders: [] } }
      }
      if (blob == null) {
        return { answer: await this.absent(request.digest, peer, options) }
      }
      sizeBytes = blob.sizeBytes
    }

    const { answer, endUpload } = this.admit(request, peer, sizeBytes, blob != null)
    if (answer.status !== BlobResponse.Status.OK && blob != null) {
      await blob.close().catch(() => {})
    }
    if (answer.status === BlobResponse.Status.BUSY) {
      answer.holders = await this.holderAddresses(request.digest, peer, options)
    }
    return answer.status === BlobResponse.Status.OK ? { answer, blob, endUpload } : { answer }
  }

  /**
   * Checks the offset against the size, then the upload budget. An upload
   * that passes is counted in the same step (`willSend`), so requests that
   * arrive together cannot all pass before the first is counted.
   */
  private admit (request: BlobRequest, peer: string, sizeBytes: number, willSend: boolean): { answer: BlobResponse, endUpload?: () => void } {
    if (request.offset > BigInt(sizeBytes)) {
      return { answer: { status: BlobResponse.Status.BAD_REQUEST, size: BigInt(sizeBytes), message: `offset ${request.offset} is past the end of ${request.digest} (${sizeBytes} bytes)`, holders: [] } }
    }

    const connected = connectedPeerNames(this.node)
    const busy = this.budget.check(request.digest, peer, Number(request.offset), recipient => connected.has(recipient), sizeBytes)
    if (busy != null) {
      this.stats.busyAnswers++
      return { answer: { status: BlobResponse.Status.BUSY, size: BigInt(sizeBytes), message: busy, holders: [] } }
    }

    const endUpload = willSend ? this.budget.begin(request.digest, peer) : undefined
    return { answer: { status: BlobResponse.Status.OK, size: BigInt(sizeBytes), message: '', holders: [] }, endUpload }
  }

  /**
   * Waits up to ARRIVAL_WAIT_MS for a blob that another peer is sending to
   * this agent. A neighbour that requests the blob during that transfer then
   * gets the blob as soon as it is stored, instead of BUSY and a retry after
   * a backoff, which in a rollout adds up at every hop.
   */
  private async awaitArrival (digest: OciDigest, requester: string, options: AbortOptions): Promise<void> {
    const source = this.incoming.receivingFrom(digest)
    if (source == null || source.toString() === requester) {
      return
    }

    const signal = timeoutSignal(ARRIVAL_WAIT_MS, options.signal)
    try {
      await this.incoming.settled(digest, { signal })
      this.stats.awaitedArrivals++
    } catch (err: any) {
      log.trace('%s did not arrive within %d ms for %s: %e', digest, ARRIVAL_WAIT_MS, requester, err)
    }
  }

  /**
   * Builds the response for a blob this agent does not have. While the blob
   * is arriving here, the response is BUSY and names the peer it comes from.
   * In a rollout, neighbours that got the announcement at the same moment
   * then wait for this copy or go to its source, instead of each querying
   * the DHT for a blob that no peer near them has provided yet.
   */
  private async absent (digest: OciDigest, requester: string, options: AbortOptions): Promise<BlobResponse> {
    const source = this.incoming.receivingFrom(digest)
    if (source == null || source.toString() === requester) {
      return notHere(digest)
    }

    this.stats.receivingAnswers++
    const address = await this.addressOf(source, options)
    return {
      status: BlobResponse.Status.BUSY,
      size: 0n,
      message: `blob ${digest} is arriving here from another peer; ask again shortly`,
      holders: address == null ? [] : [address]
    }
  }

  /**
   * Returns dialable addresses of the peers that recently received `digest`
   * from this server, for a BUSY response. They come from the peer store,
   * which contains the addresses each peer announced through identify. The
   * address of an inbound connection is usually an ephemeral port.
   */
  private async holderAddresses (digest: string, requester: string, options: AbortOptions): Promise<string[]> {
    const connected = connectedPeers(this.node)
    const addresses: string[] = []
    for (const recipient of this.budget.recipients(digest, peer => connected.has(peer) && peer !== requester, MAX_HOLDER_HINTS)) {
      const peerId = connected.get(recipient)
      const address = peerId == null ? undefined : await this.addressOf(peerId, options)
      if (address != null) {
        addresses.push(address)
      }
    }
    return addresses
  }

  /** Returns an address of `peer` ending in /p2p/PEER_ID, or undefined when none is known. */
  private async addressOf (peer: PeerId, options: AbortOptions): Promise<string | undefined> {
    try {
      const info = await this.node.peerStore.get(peer, options)
      const address = info.addresses.map(entry => entry.multiaddr).find(multiaddr => !multiaddr.toString().includes('/p2p-circuit'))
      return address == null ? undefined : `${address.toString()}/p2p/${peer.toString()}`
    } catch (err: any) {
      log.trace('failed to read the addresses of %p: %e', peer, err)
      return undefined
    }
  }
}

function notHere (digest: string): BlobResponse {
  return { status: BlobResponse.Status.NOT_FOUND, size: 0n, message: `blob ${digest} is not here`, holders: [] }
}

/** Encodes a response header as pbStream writes it: a varint length, then the protobuf. */
function encodeHeader (answer: BlobResponse): Uint8ArrayList {
  return lengthPrefixed.single(BlobResponse.encode(answer))
}
