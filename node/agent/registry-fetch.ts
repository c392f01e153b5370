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
import { createHash, type Hash } from 'node:crypto'
import { logger } from '@libp2p/logger'
import { type OciDigest } from '../../protocol/digest.js'
import { BlobResponse } from '../../protocol/messages/blob.js'
import { MAX_MANIFEST_BYTES } from '../../protocol/constants.js'
import { StallError } from '../fetch/errors.js'
import { StallCount, StallWatch } from '../fetch/stall-watch.js'
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

/** One request for the blob's body from a given offset, with its own stall watch. */
interface Attempt {
  reply: BlobReply
  /** Aborts on a stall or with the caller's signal. */
  signal: AbortSignal
  watch: StallWatch
}

/**
 * Requests a whole blob from `peer` and returns it as soon as the peer
 * accepted the request, arriving in the background. Its `done` resolves to
 * the bytes once they match `digest`, or to undefined when the peer stops
 * or sends other bytes. A transfer that stalls while the peer stays
 * connected is requested again from the received offset, so a link that
 * pauses for a while does not fail it. Returns undefined when the peer does
 * not have the blob, is busy or fails, or when the blob is larger than
 * `maxSizeBytes` (by default MAX_MEMORY_FETCH_BYTES). A peer that states a
 * size other than the descriptor's, or sends bytes that do not match the
 * digest, is penalised like the blob fetcher does. Throws only when the
 * caller's signal aborts before the peer accepted.
 */
export async function openIntoMemory (node: KilomeshLibp2p, penalties: PeerPenalties, peer: PeerId, digest: OciDigest, sizeBytes: number | undefined, options: AbortOptions & { maxSizeBytes?: number } = {}): Promise<ArrivingBlob | undefined> {
  let attempt: Attempt | undefined
  // Until the peer accepts, every way out stops the stall watch. After it,
  // the body reader stops it.
  let accepted = false

  try {
    attempt = await requestFrom(node, peer, digest, 0, sizeBytes, options.signal)
    const reply = attempt.reply
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
    attempt?.reply.stream.abort(err instanceof Error ? err : new Error(String(err)))
    if (options.signal?.aborted === true) {
      throw err
    }
    log('fetching %s from %p into memory failed, leaving it to the blob fetcher: %e', digest, peer, err)
    return undefined
  } finally {
    if (!accepted) {
      attempt?.watch.stop()
    }
  }

  const arriving = new ArrivingBlob(digest, attempt.reply.sizeBytes)
  void receiveBody(node, attempt, arriving, penalties, peer, options.signal)
  return arriving
}

/**
 * Sends one request for the blob from `offset`. Like the blob fetcher, the
 * attempt gives up on a peer that stops sending, however long the whole
 * transfer takes. The caller stops the returned watch.
 */
async function requestFrom (node: KilomeshLibp2p, peer: PeerId, digest: OciDigest, offset: number, sizeBytes: number | undefined, callerSignal: AbortSignal | undefined): Promise<Attempt> {
  const stall = new AbortController()
  const signal = anySignal([stall.signal, ...(callerSignal != null ? [callerSignal] : [])])
  const watch = new StallWatch(node, peer, err => { stall.abort(err) })
  try {
    const reply = await requestBlob(node, peer, digest, offset, { signal, sizeBytes })
    return { reply, signal, watch }
  } catch (err) {
    watch.stop()
    throw err
  }
}

/**
 * Reads exactly the stated size into `arriving`, hashing as it goes, then
 * verifies or fails it. After a stall, while the peer stays connected, it
 * requests the rest from the received offset. Never rejects.
 */
async function receiveBody (node: KilomeshLibp2p, first: Attempt, arriving: ArrivingBlob, penalties: PeerPenalties, peer: PeerId, callerSignal: AbortSignal | undefined): Promise<void> {
  const digest = arriving.digest
  const hash = createHash('sha256')
  let attempt: Attempt | undefined = first
  // The same limits as the blob fetcher's, for the one peer asked here.
  const stalls = new StallCount()

  try {
    while (attempt != null) {
      const offsetBefore = arriving.receivedBytes
      const failure = await readAttempt(attempt, arriving, hash)
      if (failure == null) {
        break
      }

      const canResume = failure instanceof StallError && callerSignal?.aborted !== true && node.getConnections(peer).length > 0
      if (!canResume || !stalls.record(arriving.receivedBytes > offsetBefore)) {
        throw failure
      }

      log('%p stalled at byte %d of %s, requesting the rest: %e', peer, arriving.receivedBytes, digest, failure)
      attempt = await requestFrom(node, peer, digest, arriving.receivedBytes, arriving.sizeBytes, callerSignal)
      if (attempt.reply.status !== BlobResponse.Status.OK || attempt.reply.sizeBytes !== arriving.sizeBytes) {
        attempt.watch.stop()
        attempt.reply.stream.abort(new Error('the peer no longer sends the blob'))
        throw new Error(`${peer.toString()} responded ${BlobResponse.Status[attempt.reply.status] ?? attempt.reply.status} with ${attempt.reply.sizeBytes} bytes to a resumed request`)
      }
    }

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
    log('fetching %s from %p into memory failed, leaving it to the blob fetcher: %e', digest, peer, err)
    arriving.fail(err instanceof Error ? err : new Error(String(err)))
  }
}

/**
 * Reads one attempt's body into `arriving` until the blob is complete or the
 * stream ends. Returns undefined when it ended without an error, else the
 * error; a stall comes back as the StallError that aborted the attempt.
 */
async function readAttempt (attempt: Attempt, arriving: ArrivingBlob, hash: Hash): Promise<Error | undefined> {
  // The body is read from the stream itself, which no signal reaches.
  const { reply, signal, watch } = attempt
  const stream = reply.stream
  const abortStream = (): void => { stream.abort(signal.reason instanceof Error ? signal.reason : new Error('aborted')) }
  signal.addEventListener('abort', abortStream, { once: true })

  try {
    if (arriving.receivedBytes < arriving.sizeBytes) {
      for await (const chunk of reply.body) {
        watch.progress()
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
    return undefined
  } catch (err: any) {
    stream.abort(err instanceof Error ? err : new Error(String(err)))
    // An aborted read throws the stream's error, so the signal's reason shows whether a stall caused it.
    const reason = signal.aborted ? signal.reason : err
    return reason instanceof Error ? reason : new Error(String(reason))
  } finally {
    watch.stop()
    signal.removeEventListener('abort', abortStream)
  }
}
