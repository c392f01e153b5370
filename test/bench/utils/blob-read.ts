/** Reads a blob over `/kilomesh/blob/1.0.0` without storing it, to time the protocol alone. */
import { requestBlob } from '../../../node/net/blob-client.js'
import { BlobResponse } from '../../../protocol/messages/blob.js'
import type { AgentPair } from './agent-pair.js'
import type { OciDigest } from '../../../protocol/digest.js'

/** Requests `digest` from `pair`'s server and reads the body into memory; returns the byte count. */
export async function readBlobToMemory (pair: AgentPair, digest: OciDigest): Promise<number> {
  const reply = await requestBlob(pair.client.node, pair.serverPeer, digest, 0)
  if (reply.status !== BlobResponse.Status.OK) {
    reply.stream.abort(new Error(`unexpected status ${BlobResponse.Status[reply.status]}`))
    throw new Error(`the server returned status ${BlobResponse.Status[reply.status]} for ${digest}: ${reply.message}`)
  }

  let receivedBytes = 0
  for await (const chunk of reply.body) {
    receivedBytes += chunk.byteLength
    if (receivedBytes >= reply.sizeBytes) {
      break
    }
  }
  await reply.stream.close()

  if (receivedBytes !== reply.sizeBytes) {
    throw new Error(`blob stream delivered ${receivedBytes} of ${reply.sizeBytes} bytes of ${digest}`)
  }
  return receivedBytes
}
