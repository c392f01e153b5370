/**
 * Fetches blobs from peers into the store. Sources are tried one after the
 * other; a source that fails or stalls hands over to the next, which resumes
 * from the offset already received. The whole blob is hashed before it is
 * stored, and when it does not match, the source that sent it is penalised.
 * Concurrent requests for one digest share a single transfer.
 */
import { logger } from '@libp2p/logger'
import { DigestMismatchError } from '../../protocol/errors.js'
import { BlobResponse } from '../../protocol/messages/blob.js'
import { requestBlob } from '../net/blob-client.js'
import { RESOLVE_TIMEOUT_MS, STALL_TIMEOUT_MS } from '../net/constants.js'
import { NoSourceError, StallError } from './errors.js'
import type { OciDigest } from '../../protocol/digest.js'
import type { KilomeshLibp2p } from '../net/libp2p.js'
import type { BlobInfo, BlobStore, BlobWriter } from '../store/blob-store.js'
import type { PeerPenalties } from './penalties.js'
import type { AbortOptions, PeerId } from '@libp2p/interface'

const log = logger('kilomesh:fetch')

/** Progress of one blob transfer. */
export interface FetchProgress {
  digest: OciDigest
  receivedBytes: number
  totalBytes: number
}

export interface FetchOptions extends AbortOptions {
  /** Size from the descriptor; a source that states another size is not used. */
  sizeBytes?: number
  /** Peers to try first, such as the peer that served the manifest. */
  preferredPeers?: PeerId[]
  onProgress?: (progress: FetchProgress) => void
}

/** Counters of what the fetcher received, for status output and metrics. */
export interface FetcherStats {
  fetchedBlobs: number
  receivedBytes: number
  failedAttempts: number
}

export class BlobFetcher {
  readonly stats: FetcherStats = { fetchedBlobs: 0, receivedBytes: 0, failedAttempts: 0 }
  private readonly inFlight = new Map<OciDigest, Promise<BlobInfo>>()

  constructor (
    private readonly node: KilomeshLibp2p,
    private readonly store: BlobStore,
    private readonly penalties: PeerPenalties
  ) {}

  /** Makes the blob local, fetching it when needed; throws NoSourceError when no peer delivers it. */
  async fetch (digest: OciDigest, options: FetchOptions = {}): Promise<BlobInfo> {
    const local = await this.store.stat(digest)
    if (local != null) {
      return local
    }

    let transfer = this.inFlight.get(digest)
    if (transfer == null) {
      transfer = this.transfer(digest, options).finally(() => this.inFlight.delete(digest))
      this.inFlight.set(digest, transfer)
    }

    // Each caller may give up on its own signal without cancelling the shared transfer.
    if (options.signal == null) {
      return transfer
    }
    const { signal } = options
    signal.throwIfAborted()
    return Promise.race([transfer, new Promise<never>((_resolve, reject) => {
      signal.addEventListener('abort', () => { reject(signal.reason instanceof Error ? signal.reason : new Error('fetch aborted')) }, { once: true })
    })])
  }

  /** Lists connected peers that state they hold the blob, fastest answer first. */
  async findConnectedHolders (digest: OciDigest, options: AbortOptions = {}): Promise<PeerId[]> {
    const signal = AbortSignal.any([AbortSignal.timeout(RESOLVE_TIMEOUT_MS), ...(options.signal != null ? [options.signal] : [])])
    const holders: PeerId[] = []

    await Promise.all(this.candidatePeers().map(async peer => {
      try {
        const reply = await requestBlob(this.node, peer, digest, 0, { signal, headerOnly: true })
        if (reply.status === BlobResponse.Status.OK) {
          holders.push(peer)
        }
      } catch (err: any) {
        log.trace('%p did not answer whether it holds %s: %e', peer, digest, err)
      }
    }))
    return holders
  }

  private candidatePeers (): PeerId[] {
    return this.node.getPeers().filter(peer => !this.penalties.isPenalised(peer.toString()))
  }

  private async transfer (digest: OciDigest, options: FetchOptions): Promise<BlobInfo> {
    const tried = new Set<string>()
    const signal = options.signal
    let lastError: Error | undefined

    // Preferred peers are asked straight away; everyone else only after they
    // say they hold the blob, so a miss costs one round trip per peer at most.
    const queue: PeerId[] = (options.preferredPeers ?? []).filter(peer => !this.penalties.isPenalised(peer.toString()))
    let resumable = true
    let writer: BlobWriter | undefined
    let contributors: string[] = []

    try {
      while (true) {
        signal?.throwIfAborted()

        // Ask the connected peers again whenever the queue runs dry: a peer may
        // have connected while an earlier source stalled. Every round must
        // bring an untried peer, so the loop ends once no new source appears.
        if (queue.length === 0) {
          const holders = await this.findConnectedHolders(digest, { signal })
          queue.push(...holders.filter(peer => !tried.has(peer.toString())))
        }

        const peer = queue.shift()
        if (peer == null) {
          break
        }
        const peerName = peer.toString()
        if (tried.has(peerName) || this.penalties.isPenalised(peerName)) {
          continue
        }
        tried.add(peerName)

        writer ??= await this.store.createWriter(digest, options.sizeBytes)
        if (!resumable && writer.offset > 0) {
          await writer.abort()
          writer = await this.store.createWriter(digest, options.sizeBytes)
          contributors = []
        }

        try {
          const done = await this.receiveFrom(peer, digest, writer, options)
          if (writer.offset > 0 && !contributors.includes(peerName)) {
            contributors.push(peerName)
          }
          if (!done) {
            continue
          }
        } catch (err: any) {
          if (writer.offset > 0 && !contributors.includes(peerName)) {
            contributors.push(peerName)
          }
          this.stats.failedAttempts++
          lastError = err
          log('fetching %s from %p stopped at offset %d, trying the next source: %e', digest, peer, writer.offset, err)
          continue
        }

        try {
          const committed = writer
          writer = undefined
          await committed.commit({ signal })
          this.stats.fetchedBlobs++
          log('fetched %s (%d bytes) from %s', digest, committed.offset, contributors.join(', '))
          const info = await this.store.stat(digest)
          if (info == null) {
            throw new Error(`blob ${digest} vanished right after it was stored`)
          }
          return info
        } catch (err: any) {
          if (!(err instanceof DigestMismatchError)) {
            throw err
          }

          lastError = err
          if (contributors.length === 1) {
            this.penalties.penalise(contributors[0] ?? '', `sent bytes for ${digest} that do not match it: ${err.message}`)
          } else {
            // Several peers contributed, so the bad one is unknown: try each
            // remaining source alone from the start, and let a mismatch name it.
            resumable = false
            log.error('bytes for %s from %s do not match it; refetching from single sources', digest, contributors.join(', '))
            for (const name of contributors) {
              tried.delete(name)
            }
            queue.unshift(...this.candidatePeers().filter(candidate => contributors.includes(candidate.toString())))
          }
          contributors = []
        }
      }
    } finally {
      await writer?.abort()
    }

    const reason = lastError == null ? 'no connected peer has it' : `last error: ${lastError.message}`
    throw new NoSourceError(`could not fetch blob ${digest} from ${tried.size} peer(s): ${reason}`)
  }

  /**
   * Appends what `peer` sends from the writer's offset. Returns true when the
   * blob is complete, false when the peer does not have it.
   */
  private async receiveFrom (peer: PeerId, digest: OciDigest, writer: BlobWriter, options: FetchOptions): Promise<boolean> {
    const stall = new AbortController()
    const signal = AbortSignal.any([stall.signal, ...(options.signal != null ? [options.signal] : [])])
    let timer = setTimeout(() => { stall.abort(new StallError(`${peer.toString()} sent nothing for ${STALL_TIMEOUT_MS} ms`)) }, STALL_TIMEOUT_MS)
    const cleanups: Array<() => void> = []

    try {
      const reply = await requestBlob(this.node, peer, digest, writer.offset, { signal })
      if (reply.status === BlobResponse.Status.NOT_FOUND) {
        return false
      }
      if (reply.status !== BlobResponse.Status.OK) {
        throw new Error(`peer answered ${BlobResponse.Status[reply.status] ?? reply.status}: ${reply.message}`)
      }

      if (options.sizeBytes != null && reply.sizeBytes !== options.sizeBytes) {
        this.penalties.penalise(peer.toString(), `stated size ${reply.sizeBytes} for ${digest}, whose descriptor says ${options.sizeBytes}`)
        reply.stream.abort(new Error('size mismatch'))
        return false
      }

      // The body is read from the stream itself, which no signal reaches:
      // abort it when the stall timer or the caller gives up.
      const abortStream = (): void => { reply.stream.abort(signal.reason instanceof Error ? signal.reason : new Error('aborted')) }
      signal.addEventListener('abort', abortStream, { once: true })
      cleanups.push(() => { signal.removeEventListener('abort', abortStream) })

      // The body length is known from the header, so reading stops at the last
      // byte instead of waiting for the peer to close its side of the stream.
      if (writer.offset < reply.sizeBytes) {
        for await (const chunk of reply.body) {
          clearTimeout(timer)
          timer = setTimeout(() => { stall.abort(new StallError(`${peer.toString()} sent nothing for ${STALL_TIMEOUT_MS} ms`)) }, STALL_TIMEOUT_MS)
          await writer.write(chunk)
          this.stats.receivedBytes += chunk.byteLength
          options.onProgress?.({ digest, receivedBytes: writer.offset, totalBytes: reply.sizeBytes })
          if (writer.offset >= reply.sizeBytes) {
            break
          }
        }
      }
      await reply.stream.close({ signal }).catch(() => {})

      if (writer.offset !== reply.sizeBytes) {
        throw new Error(`stream ended after ${writer.offset} of ${reply.sizeBytes} bytes`)
      }
      return true
    } catch (err) {
      if (stall.signal.aborted) {
        throw stall.signal.reason
      }
      throw err
    } finally {
      clearTimeout(timer)
      cleanups.forEach(cleanup => { cleanup() })
    }
  }
}
