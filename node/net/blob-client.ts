/**
 * Client side of `/kilomesh/blob/1.0.0`: asks one peer for a blob from an
 * offset and exposes the header and the body. The caller hashes and stores.
 */
import { encode as lengthPrefixed } from 'it-length-prefixed'
import { BLOB_PROTOCOL, MAX_MESSAGE_BYTES } from '../../protocol/constants.js'
import { InvalidMessageError } from '../../protocol/errors.js'
import { BlobRequest, BlobResponse } from '../../protocol/messages/blob.js'
import { MAX_HOLDER_HINTS, MAX_OUTBOUND_BLOB_STREAMS } from './constants.js'
import { openWithRequest } from './optimistic-stream.js'
import type { OciDigest } from '../../protocol/digest.js'
import type { KilomeshLibp2p } from './libp2p.js'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import type { AbortOptions, PeerId, PeerInfo, Stream } from '@libp2p/interface'

export interface BlobReply {
  status: BlobResponse.Status
  /** Total size of the blob, as the peer states it. */
  sizeBytes: number
  message: string
  /** With BUSY, peers the server sent the blob to, with addresses to dial them. */
  holders: PeerInfo[]
  /** Body bytes from the requested offset to the stated size; empty unless status is OK and the request was not header-only. */
  body: AsyncIterable<Uint8Array>
  stream: Stream
}

export interface RequestBlobOptions extends AbortOptions {
  /** Asks only for the header, to learn whether the peer has the blob. */
  headerOnly?: boolean
  /**
   * Size of the whole blob from its descriptor. The peer is granted a
   * window for the body from `offset` up front, so a large blob arrives
   * without waiting for window updates.
   */
  sizeBytes?: number
}

/**
 * Opens a blob stream to `peer` and reads the response header. The request
 * goes out with the protocol proposal, so a request takes one round trip.
 */
export async function requestBlob (node: KilomeshLibp2p, peer: PeerId, digest: OciDigest, offset: number, options: RequestBlobOptions = {}): Promise<BlobReply> {
  const request = lengthPrefixed.single(BlobRequest.encode({ digest, offset: BigInt(offset), headerOnly: options.headerOnly ?? false }))
  const bodyBytes = options.headerOnly === true || options.sizeBytes == null ? 0 : options.sizeBytes - offset
  const { stream, messages, confirm } = await openWithRequest(node, peer, BLOB_PROTOCOL, request, {
    signal: options.signal,
    maxOutboundStreams: MAX_OUTBOUND_BLOB_STREAMS,
    maxDataLength: MAX_MESSAGE_BYTES,
    // The multistream-select replies and the header come before the body.
    expectedResponseBytes: bodyBytes > 0 ? bodyBytes + MAX_MESSAGE_BYTES : 0
  })

  try {
    await confirm(options)
    const header = BlobResponse.decode(await messages.read(options), { limits: { holders: MAX_HOLDER_HINTS } })

    if (header.size > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new InvalidMessageError(`peer ${peer.toString()} announced an impossible size ${header.size} for ${digest}`)
    }

    const raw = messages.unwrap()
    const hasBody = header.status === BlobResponse.Status.OK && options.headerOnly !== true && header.size > BigInt(offset)
    if (!hasBody) {
      await stream.close(options).catch(() => {})
    }

    return {
      status: header.status,
      sizeBytes: Number(header.size),
      message: header.message,
      holders: parseHolders(header.holders, peer),
      body: hasBody ? toBytes(raw, Number(header.size) - offset) : (async function * () {})(),
      stream
    }
  } catch (err: any) {
    stream.abort(err)
    throw err
  }
}

/**
 * Parses the holder addresses of a BUSY response. Each must be a multiaddr
 * that ends in /p2p/PEER_ID. Other addresses, and those naming the
 * responding peer itself, are dropped. They are hints, so a bad one only
 * costs the client a failed dial.
 */
function parseHolders (addresses: string[], from: PeerId): PeerInfo[] {
  const holders: PeerInfo[] = []
  for (const text of addresses) {
    try {
      const address = multiaddr(text)
      const id = address.getComponents().findLast(component => component.name === 'p2p')?.value
      if (id == null) {
        continue
      }
      const peerId = peerIdFromString(id)
      if (!peerId.equals(from) && !holders.some(holder => holder.id.equals(peerId))) {
        holders.push({ id: peerId, multiaddrs: [address] })
      }
    } catch {
      // An invalid hint is skipped, and the response's status still counts.
    }
  }
  return holders
}

/**
 * Yields the body as the stream delivers it, and ends after `lengthBytes`
 * bytes, the length the header stated. Ending there does not depend on the
 * remote's close, which the stream iterator of libp2p 3.3 misses when it
 * arrived before the iterator started. Bytes past the stated length are
 * dropped. A delivery made of several buffers is yielded buffer by buffer,
 * because joining them copies every byte.
 */
async function * toBytes (stream: Stream, lengthBytes: number): AsyncGenerator<Uint8Array> {
  let remainingBytes = lengthBytes
  for await (const chunk of stream) {
    const buffers = chunk instanceof Uint8Array ? [chunk] : chunk
    for (const buffer of buffers) {
      if (buffer.byteLength >= remainingBytes) {
        yield buffer.subarray(0, remainingBytes)
        return
      }
      remainingBytes -= buffer.byteLength
      yield buffer
    }
  }
}
