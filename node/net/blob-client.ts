/**
 * Client side of `/kilomesh/blob/1.0.0`: asks one peer for a blob from an
 * offset and exposes the header and the body. The caller hashes and stores.
 */
import { pbStream } from '@libp2p/utils'
import { BLOB_PROTOCOL, MAX_MESSAGE_BYTES } from '../../protocol/constants.js'
import { InvalidMessageError } from '../../protocol/errors.js'
import { BlobRequest, BlobResponse } from '../../protocol/messages/blob.js'
import { MAX_OUTBOUND_BLOB_STREAMS } from './constants.js'
import type { OciDigest } from '../../protocol/digest.js'
import type { KilomeshLibp2p } from './libp2p.js'
import type { AbortOptions, PeerId, Stream } from '@libp2p/interface'

export interface BlobReply {
  status: BlobResponse.Status
  /** Total size of the blob, as the peer states it. */
  sizeBytes: number
  message: string
  /** Body bytes from the requested offset; empty unless status is OK and the request was not header-only. */
  body: AsyncIterable<Uint8Array>
  stream: Stream
}

/** Opens a blob stream to `peer` and reads the response header. */
export async function requestBlob (node: KilomeshLibp2p, peer: PeerId, digest: OciDigest, offset: number, options: AbortOptions & { headerOnly?: boolean } = {}): Promise<BlobReply> {
  const stream = await node.dialProtocol(peer, BLOB_PROTOCOL, { signal: options.signal, maxOutboundStreams: MAX_OUTBOUND_BLOB_STREAMS })

  try {
    const messages = pbStream(stream, { maxDataLength: MAX_MESSAGE_BYTES })
    await messages.write({ digest, offset: BigInt(offset), headerOnly: options.headerOnly ?? false }, BlobRequest, options)
    const header = await messages.read(BlobResponse, options)

    if (header.size > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new InvalidMessageError(`peer ${peer.toString()} announced an impossible size ${header.size} for ${digest}`)
    }

    const raw = messages.unwrap()
    const hasBody = header.status === BlobResponse.Status.OK && options.headerOnly !== true
    if (!hasBody) {
      await stream.close(options).catch(() => {})
    }

    return {
      status: header.status,
      sizeBytes: Number(header.size),
      message: header.message,
      body: hasBody ? toBytes(raw) : (async function * () {})(),
      stream
    }
  } catch (err: any) {
    stream.abort(err)
    throw err
  }
}

/**
 * Yields the body as the stream delivers it. A delivery made of several
 * buffers is yielded buffer by buffer, because joining them copies every byte.
 */
async function * toBytes (stream: Stream): AsyncGenerator<Uint8Array> {
  for await (const chunk of stream) {
    if (chunk instanceof Uint8Array) {
      yield chunk
      continue
    }
    for (const buffer of chunk) {
      yield buffer
    }
  }
}
