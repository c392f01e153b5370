/**
 * Client side of `/kilomesh/blob/1.0.0`: asks one peer for a blob from an
 * offset and exposes the header and the body. The caller hashes and stores.
 */
import { encode as lengthPrefixed } from 'it-length-prefixed'
import { BLOB_PROTOCOL, MAX_MESSAGE_BYTES } from '../../protocol/constants.js'
import { InvalidMessageError } from '../../protocol/errors.js'
import { BlobRequest, BlobResponse } from '../../protocol/messages/blob.js'
import { MAX_OUTBOUND_BLOB_STREAMS } from './constants.js'
import { openWithRequest } from './optimistic-stream.js'
import type { OciDigest } from '../../protocol/digest.js'
import type { KilomeshLibp2p } from './libp2p.js'
import type { AbortOptions, PeerId, Stream } from '@libp2p/interface'

export interface BlobReply {
  status: BlobResponse.Status
  /** Total size of the blob, as the peer states it. */
  sizeBytes: number
  message: string
  /** Body bytes from the requested offset to the stated size; empty unless status is OK and the request was not header-only. */
  body: AsyncIterable<Uint8Array>
  stream: Stream
}

/**
 * Opens a blob stream to `peer` and reads the response header. The request
 * goes out with the protocol proposal, so a request takes one round trip.
 */
export async function requestBlob (node: KilomeshLibp2p, peer: PeerId, digest: OciDigest, offset: number, options: AbortOptions & { headerOnly?: boolean } = {}): Promise<BlobReply> {
  const request = lengthPrefixed.single(BlobRequest.encode({ digest, offset: BigInt(offset), headerOnly: options.headerOnly ?? false }))
  const { stream, messages, confirm } = await openWithRequest(node, peer, BLOB_PROTOCOL, request, {
    signal: options.signal,
    maxOutboundStreams: MAX_OUTBOUND_BLOB_STREAMS,
    maxDataLength: MAX_MESSAGE_BYTES
  })

  try {
    await confirm(options)
    const header = BlobResponse.decode(await messages.read(options))

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
      body: hasBody ? toBytes(raw, Number(header.size) - offset) : (async function * () {})(),
      stream
    }
  } catch (err: any) {
    stream.abort(err)
    throw err
  }
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
