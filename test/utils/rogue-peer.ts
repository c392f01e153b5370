/**
 * A real libp2p peer that speaks /kilomesh/blob/1.0.0 from a fixture layout
 * but misbehaves on purpose: it flips a byte of one blob, stalls halfway
 * through one, or sends one slowly. Tests point agents at it to check verification, penalties
 * and resumption.
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { pbStream } from '@libp2p/utils'
import { BLOB_PROTOCOL, MAX_MESSAGE_BYTES } from '../../protocol/constants.js'
import { BlobRequest, BlobResponse } from '../../protocol/messages/blob.js'
import { createKilomeshNode, type KilomeshLibp2p } from '../../node/net/libp2p.js'

export interface RogueBehaviour {
  /** Digest whose bytes are altered (same length, one byte flipped). */
  corrupt?: string
  /** Digest whose transfer stops after half the bytes and never finishes. */
  stall?: string
  /** Digest sent at `bytesPerSecond`, in ten parts a second, as over a slow link. */
  slow?: { digest: string, bytesPerSecond: number }
}

export interface RoguePeer {
  node: KilomeshLibp2p
  address: string
  /** Full-body requests received per digest. */
  requests: Map<string, number>
  stop: () => Promise<void>
}

export async function startRoguePeer (layout: string, behaviour: RogueBehaviour): Promise<RoguePeer> {
  const node = await createKilomeshNode({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'] })
  const requests = new Map<string, number>()
  const stalled = new AbortController()

  await node.handle(BLOB_PROTOCOL, async (stream) => {
    const messages = pbStream(stream, { maxDataLength: MAX_MESSAGE_BYTES })
    const request = await messages.read(BlobRequest)
    let bytes: Buffer
    try {
      bytes = await readFile(join(layout, 'blobs', 'sha256', request.digest.replace('sha256:', '')))
    } catch {
      await messages.write({ status: BlobResponse.Status.NOT_FOUND, size: 0n, message: 'not here' }, BlobResponse)
      await stream.close()
      return
    }

    await messages.write({ status: BlobResponse.Status.OK, size: BigInt(bytes.byteLength), message: '' }, BlobResponse)
    if (request.headerOnly) {
      await stream.close()
      return
    }
    requests.set(request.digest, (requests.get(request.digest) ?? 0) + 1)

    let body = bytes.subarray(Number(request.offset))
    if (request.digest === behaviour.corrupt) {
      body = Buffer.from(body)
      body[body.byteLength - 1] = (body[body.byteLength - 1] ?? 0) ^ 0xff
    }
    const raw = messages.unwrap()

    if (request.digest === behaviour.stall) {
      raw.send(body.subarray(0, Math.floor(body.byteLength / 2)))
      // Hold the stream open without sending more until the peer stops.
      await new Promise(resolve => stalled.signal.addEventListener('abort', resolve, { once: true }))
      raw.abort(new Error('rogue peer stopped'))
      return
    }

    if (request.digest === behaviour.slow?.digest) {
      const partBytes = Math.max(1, Math.floor(behaviour.slow.bytesPerSecond / 10))
      for (let offset = 0; offset < body.byteLength && !stalled.signal.aborted; offset += partBytes) {
        raw.send(body.subarray(offset, offset + partBytes))
        await new Promise(resolve => setTimeout(resolve, 100))
      }
      await raw.close()
      return
    }

    raw.send(body)
    await raw.close()
  })

  return {
    node,
    address: node.getMultiaddrs()[0]?.toString() ?? '',
    requests,
    // Safe to call more than once, so tests can stop a peer early and again in cleanup.
    stop: async () => {
      stalled.abort()
      await node.stop()
    }
  }
}
