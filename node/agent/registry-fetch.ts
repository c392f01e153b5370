/**
 * Fetches of blobs of up to a few MB for the registry API straight into
 * memory, from a peer known to hold them: the peer that a tag record or the
 * parent manifest came from. The registry then sends its client the
 * verified bytes while the store writes them, instead of after the write,
 * its fsyncs and a read back; a large blob even as it arrives (see
 * ArrivingBlob). Anything unusual (a miss, a busy peer, a failure) is left
 * to the blob fetcher, which finds other sources and fails over between
 * them.
 */
import { createHash } from 'node:crypto'
import { logger } from '@libp2p/logger'
import { type OciDigest } from '../../protocol/digest.js'
import { BlobResponse } from '../../protocol/messages/blob.js'
import { MAX_MANIFEST_BYTES } from '../../protocol/constants.js'
import { StallWatch } from '../fetch/stall-watch.js'
import { ArrivingBlob } from '../registry/arriving-blob.js'
import { requestBlob, type BlobReply } from '../net/blob-client.js'
import { anySignal } from '../net/signals.js'
import type { PeerPenalties } from '../fetch/penalties.js'
import type { KilomeshLibp2p } from '../net/libp2p.js'
import type { AbortOptions, PeerId } from '@libp2p/interface'

const log = logger('kilomesh:registry:memory-fetch')

/**
 * Largest blob fetched into memory: the largest manifest a peer may send,
 * and above the layers of a typical micro image. Larger blobs go through the
 * blob fetcher, which writes them to disk as they arrive and resumes them
 * from another source.
 */
export const MAX_MEMORY_FETCH_BYTES = MAX_MANIFEST_BYTES

/**
 * Smallest blob that a registry client is sent as it arrives from a peer,
 * rather than once it is verified. Below it the transfer takes less than a
 * round trip, so the overlap would not pay for its bookkeeping.
 */
export const STREAM_TO_CLIENT_MIN_BYTES = 256 * 1024

/**
 * Bytes that fetches into memory may hold at once, counting blobs still
 * being written to the store. Past it, blobs go through the blob fetcher.
 */
export const MEMORY_FETCH_BUDGET_BYTES = 16 * 1024 * 1024

/**
 * Requests a whole blob from `peer` and returns it as soon as the peer
 * accepted the request, arriving in the background. Its `done` resolves to
 * the bytes once they match `digest`, or to undefined when the peer stops
 * or sends other bytes. Returns undefined when the peer does not have the
 * blob, is busy or fails, or when the blob is larger than `maxSizeBytes`
 * (by default MAX_MEMORY_FETCH_BYTES). A peer that states a size other than
 * the descriptor's, or sends bytes that do not match the digest, is
 * penalised like the blob fetcher does. Throws only when the caller's
 * signal aborts before the peer accepted.
 */
export async function openIntoMemory (node: KilomeshLibp2p, penalties: PeerPenalties, peer: PeerId, digest: OciDigest, sizeBytes: number | undefined, options: AbortOptions & { maxSizeBytes?: number } = {}): Promise<ArrivingBlob | undefined> {
  // Like the blob fetcher, give up on a peer that stops sending, however
  // long the whole transfer takes.
  const stall = new AbortController()
  const signal = anySignal([stall.signal, ...(options.signal != null ? [options.signal] : [])])
  const watch = new StallWatch(node, peer, err => { stall.abort(err) })
  let reply: BlobReply | undefined
  // Until the peer accepts, every way out stops the stall watch. After it,
  // the body reader stops it.
  let accepted = false

  try {
    reply = await requestBlob(node, peer, digest, 0, { signal, sizeBytes })
    if (reply.status !== BlobResponse.Status.OK) {
      log.trace('%p responded %s for %s', peer, BlobResponse.Status[reply.status] ?? reply.status, digest)
      return undefined
    }

    if (sizeBytes != null && reply.sizeBytes !== sizeBytes) {
      penalties.penalise(peer.toString(), `stated size ${reply.sizeBytes} for ${digest}, whose descriptor says ${sizeBytes}`)
      reply.stream.abort(new Error('size mismatch'))
      return undefined
    }
    if (reply.sizeBytes > (options.maxSizeBytes ?? MAX_MEMORY_FETCH_BYTES)) {
      reply.stream.abort(new Error('blob too large to fetch into memory'))
      return undefined
    }
    accepted = true
  } catch (err: any) {
    reply?.stream.abort(err instanceof Error ? err : new Error(String(err)))
    if (options.signal?.aborted === true) {
      throw err
    }
    log('fetching %s from %p into memory failed, leaving it to the blob fetcher: %e', digest, peer, err)
    return undefined
  } finally {
    if (!accepted) {
      watch.stop()
    }
  }

  const arriving = new ArrivingBlob(digest, reply.sizeBytes)
  void receiveBody(reply, arriving, penalties, peer, signal, () => { watch.progress() }).finally(() => { watch.stop() })
  return arriving
}

/**
 * Reads exactly the stated size from the reply's body into `arriving`,
 * hashing as it goes, then verifies or fails it. Never rejects.
 */
async function receiveBody (reply: BlobReply, arriving: ArrivingBlob, penalties: PeerPenalties, peer: PeerId, signal: AbortSignal, onChunk: () => void): Promise<void> {
  const digest = arriving.digest
  const hash = createHash('sha256')

  // The body is read from the stream itself, which no signal reaches.
  const stream = reply.stream
  const abortStream = (): void => { stream.abort(signal.reason instanceof Error ? signal.reason : new Error('aborted')) }
  signal.addEventListener('abort', abortStream, { once: true })

  try {
    if (arriving.sizeBytes > 0) {
      for await (const chunk of reply.body) {
        onChunk()
        const before = arriving.receivedBytes
        arriving.append(chunk)
        hash.update(chunk.subarray(0, arriving.receivedBytes - before))
        if (arriving.receivedBytes >= arriving.sizeBytes) {
          break
        }
      }
    }
    signal.throwIfAborted()
    await stream.close({ signal }).catch(() => {})

    if (arriving.receivedBytes !== arriving.sizeBytes) {
      log('%p ended the stream of %s before its %d bytes', peer, digest, arriving.sizeBytes)
      arriving.fail(new Error(`${peer.toString()} ended the stream after ${arriving.receivedBytes} of ${arriving.sizeBytes} bytes`))
      return
    }

    const actual: OciDigest = `sha256:${hash.digest('hex')}`
    if (actual !== digest) {
      penalties.penalise(peer.toString(), `sent bytes for ${digest} that hash to ${actual}`)
      arriving.fail(new Error(`${peer.toString()} sent bytes that hash to ${actual}`))
      return
    }
    arriving.verify()
  } catch (err: any) {
    stream.abort(err instanceof Error ? err : new Error(String(err)))
    log('fetching %s from %p into memory failed, leaving it to the blob fetcher: %e', digest, peer, err)
    arriving.fail(err instanceof Error ? err : new Error(String(err)))
  } finally {
    signal.removeEventListener('abort', abortStream)
  }
}
