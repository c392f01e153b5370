/**
 * A bare libp2p stream baseline: a benchmark-only protocol whose handler
 * writes a fixed payload and closes, with no request, header, store or
 * hashing. The gap between it and `/kilomesh/blob/1.0.0` over the same
 * connection is the blob protocol's own overhead.
 */
import type { KilomeshLibp2p } from '../../../node/net/libp2p.js'
import type { AbortOptions, PeerId } from '@libp2p/interface'

export const BARE_PROTOCOL = '/kilomesh-bench/bare/1.0.0'

/** Chunk size of the bare writer: 64 KiB, the default read size of a Node file stream. */
const CHUNK_BYTES = 64 * 1024

/** Registers the bare protocol on `node`: every stream opened to it receives `payload`, then the end. */
export async function handleBareStream (node: KilomeshLibp2p, payload: Uint8Array): Promise<void> {
  await node.handle(BARE_PROTOCOL, async stream => {
    try {
      for (let offset = 0; offset < payload.byteLength; offset += CHUNK_BYTES) {
        if (!stream.send(payload.subarray(offset, offset + CHUNK_BYTES))) {
          await stream.onDrain()
        }
      }
      await stream.close()
    } catch (err: any) {
      stream.abort(err)
    }
  })
}

/**
 * Opens a bare stream to `peer` and yields its chunks until `sizeBytes`
 * bytes arrived. Reading stops at the last byte, as the blob fetcher does.
 */
export async function * bareStreamChunks (node: KilomeshLibp2p, peer: PeerId, sizeBytes: number, options?: AbortOptions): AsyncGenerator<Uint8Array> {
  const stream = await node.dialProtocol(peer, BARE_PROTOCOL, options)
  let receivedBytes = 0

  try {
    for await (const chunk of stream) {
      const bytes = chunk instanceof Uint8Array ? chunk : chunk.subarray()
      receivedBytes += bytes.byteLength
      yield bytes
      if (receivedBytes >= sizeBytes) {
        break
      }
    }
    await stream.close(options)
  } catch (err: any) {
    stream.abort(err)
    throw err
  }

  if (receivedBytes !== sizeBytes) {
    throw new Error(`bare stream delivered ${receivedBytes} of ${sizeBytes} bytes`)
  }
}

/** Reads a bare stream of `sizeBytes` bytes from `peer`, dropping them; returns the number received. */
export async function readBareStream (node: KilomeshLibp2p, peer: PeerId, sizeBytes: number, options?: AbortOptions): Promise<number> {
  let receivedBytes = 0
  for await (const chunk of bareStreamChunks(node, peer, sizeBytes, options)) {
    receivedBytes += chunk.byteLength
  }
  return receivedBytes
}
