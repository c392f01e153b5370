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
import { BUSY_RETRY_INITIAL_MS, BUSY_RETRY_MAX_MS } from '../net/constants.js'
import { connectedPeerNames, connectedPeers } from '../net/peers.js'
import { anySignal, raceAbort, SharedWorkSignal, sleep } from '../net/signals.js'
import { BlobTooLargeError, NoSourceError, StallError } from './errors.js'
import { shuffle } from './random.js'
import { SourceFinder } from './sources.js'
import { StallCount, StallWatch } from './stall-watch.js'
import type { OciDigest } from '../../protocol/digest.js'
import type { KilomeshLibp2p } from '../net/libp2p.js'
import type { BlobInfo, BlobStore, BlobWriter, CommittedBlob } from '../store/blob-store.js'
import type { PeerPenalties } from './penalties.js'
import type { AbortOptions, PeerId, PeerInfo } from '@libp2p/interface'

const log = logger('kilomesh:fetch')

/** How long a fetch keeps looking for a holder when none is known, unless the caller says otherwise. */
export const DEFAULT_WAIT_FOR_SOURCES_MS = 1_500

/** Recent sources remembered and tried first. */
const MAX_RECENT_SOURCES = 2

/** Rounds of source discovery one transfer may run, whatever the waits allow. */
const MAX_SOURCE_ROUNDS = 1_000


/** Progress of one blob transfer. */
export interface FetchProgress {
  digest: OciDigest
  receivedBytes: number
  totalBytes: number
}

/** A blob that `fetch` made local. */
export interface FetchedBlobInfo extends BlobInfo {
  /** True when this call, or a transfer it joined, stored the blob. False when it was already stored. */
  fetched: boolean
}

export interface FetchOptions extends AbortOptions {
  /** Size from the descriptor; a source that states another size is not used. */
  sizeBytes?: number
  /**
   * Largest size the caller accepts, when no descriptor gives the size. A
   * source that states a larger size is not used, and nothing is written.
   */
  maxSizeBytes?: number
  /** Peers to try first, such as the peer that served the manifest. */
  preferredPeers?: PeerId[]
  onProgress?: (progress: FetchProgress) => void
  /**
   * How long to keep looking when no peer has the blob yet, in ms. A
   * rollout's pulls pass a long wait, because holders appear as others finish.
   * @default DEFAULT_WAIT_FOR_SOURCES_MS
   */
  waitForSourcesMs?: number
  /**
   * Maximum random wait before the first DHT lookup when no connected peer
   * has or receives the blob, in ms. A subscription's pull passes
   * ROLLOUT_FIRST_LOOKUP_DELAY_MAX_MS.
   * @default FIRST_LOOKUP_DELAY_MAX_MS
   */
  firstLookupDelayMaxMs?: number
  /**
   * Receives the bytes of a blob small enough for the store's cache once
   * they match the digest, before the store makes them durable. A pull
   * parses a manifest from them and requests its children while the
   * manifest's fsyncs run. Only the call that starts the transfer gets it.
   */
  onVerified?: (bytes: Uint8Array) => void
}

/** Counters of what the fetcher received, for status output and metrics. */
export interface FetcherStats {
  fetchedBlobs: number
  receivedBytes: number
  failedAttempts: number
}

export class BlobFetcher {
  readonly stats: FetcherStats = { fetchedBlobs: 0, receivedBytes: 0, failedAttempts: 0 }
  /**
   * Transfers in progress, each shared by every caller that waits for the
   * blob. `lookupDelay.maxMs` is the lowest first-lookup
   * wait among the callers, undefined for the source finder's own, so an
   * interactive pull that joins a subscription's transfer does not wait the
   * longer time of the subscription.
   */
  private readonly inFlight = new Map<OciDigest, { done: Promise<BlobInfo>, shared: SharedWorkSignal, lookupDelay: { maxMs?: number } }>()
  /** The peer each transfer in progress receives bytes from. */
  private readonly receiving = new Map<OciDigest, PeerId>()
  /** Peers that recently delivered a blob, newest first: the blobs of one image usually sit together. */
  private recentSources: PeerId[] = []
  /** See watchPendingWrites. */
  private pendingWrite: (digest: OciDigest) => Promise<boolean> | undefined = () => undefined
  /** Transfers from peers that run outside the fetcher, such as the registry's fetches into memory, counted per digest. */
  private readonly outsideTransfers = new Map<OciDigest, number>()

  constructor (
    private readonly node: KilomeshLibp2p,
    private readonly store: BlobStore,
    private readonly penalties: PeerPenalties,
    readonly sources: SourceFinder = new SourceFinder(node, penalties)
  ) {}

  /**
   * Lets another part of the agent report blobs that it keeps in memory and
   * stores soon, such as the registry's fetches into memory: the lookup
   * returns that write, started at once, or undefined. Returns a function
   * that removes the lookup.
   */
  watchPendingWrites (lookup: (digest: OciDigest) => Promise<boolean> | undefined): () => void {
    this.pendingWrite = lookup
    return () => {
      if (this.pendingWrite === lookup) {
        this.pendingWrite = () => undefined
      }
    }
  }

  /** Returns the write of `digest` that another part of the agent keeps in memory, started now, or undefined. */
  pendingWriteOf (digest: OciDigest): Promise<boolean> | undefined {
    return this.pendingWrite(digest)
  }

  /** Returns true while a transfer of `digest` from peers is running, here or one recorded with trackTransfer. */
  isFetching (digest: OciDigest): boolean {
    return this.inFlight.has(digest) || this.outsideTransfers.has(digest)
  }

  /**
   * Records a transfer of `digest` from a peer that runs outside the
   * fetcher, until the returned function is called. isFetching then counts
   * it, so a blob that such a transfer stores is treated as fetched, not as
   * added on this device: the agent provides it after the random delay for
   * fetched blobs, not in the middle of the pull.
   */
  trackTransfer (digest: OciDigest): () => void {
    this.outsideTransfers.set(digest, (this.outsideTransfers.get(digest) ?? 0) + 1)
    let ended = false
    return () => {
      if (ended) {
        return
      }
      ended = true
      const remaining = (this.outsideTransfers.get(digest) ?? 1) - 1
      if (remaining > 0) {
        this.outsideTransfers.set(digest, remaining)
      } else {
        this.outsideTransfers.delete(digest)
      }
    }
  }

  /**
   * Returns the peer that is sending `digest` to this agent at the moment,
   * from its OK response until the blob is stored or the peer
   * fails. The blob server names it to peers that ask for the blob meanwhile.
   */
  receivingFrom (digest: OciDigest): PeerId | undefined {
    return this.receiving.get(digest)
  }

  /** Resolves when the transfer of `digest` in progress ends, stored or not, or at once when none runs. */
  async settled (digest: OciDigest, options: AbortOptions = {}): Promise<void> {
    const transfer = this.inFlight.get(digest)
    if (transfer == null) {
      return
    }
    await raceAbort(transfer.done.then(() => {}, () => {}), options.signal)
  }

  /**
   * Makes the blob local, fetching it when needed. Throws NoSourceError when
   * no peer delivers it. `fetched` is false when the blob was already
   * stored, so a caller knows whether its last use needs recording.
   */
  async fetch (digest: OciDigest, options: FetchOptions = {}): Promise<FetchedBlobInfo> {
    options.signal?.throwIfAborted()
    const local = await this.store.stat(digest)
    if (local != null) {
      return { ...local, fetched: false }
    }

    // The registry may hold the blob in memory until its delayed write.
    // Waiting for that write costs less than downloading the blob again.
    const writing = this.pendingWriteOf(digest)
    if (writing != null && await raceAbort(writing, options.signal)) {
      const stored = await this.store.stat(digest)
      if (stored != null) {
        return { ...stored, fetched: false }
      }
    }

    // A transfer that every earlier caller gave up on is being cancelled, so
    // a new caller starts one of its own.
    options.signal?.throwIfAborted()
    let transfer = this.inFlight.get(digest)
    if (transfer == null || transfer.shared.aborted) {
      const shared = new SharedWorkSignal()
      const lookupDelay = { maxMs: options.firstLookupDelayMaxMs }
      const started = {
        shared,
        lookupDelay,
        done: this.transfer(digest, { ...options, signal: shared.signal }, lookupDelay).finally(() => {
          if (this.inFlight.get(digest) === started) {
            this.inFlight.delete(digest)
            this.receiving.delete(digest)
          }
        })
      }
      transfer = started
      this.inFlight.set(digest, transfer)
    } else if (transfer.lookupDelay.maxMs != null) {
      transfer.lookupDelay.maxMs = options.firstLookupDelayMaxMs == null ? undefined : Math.min(transfer.lookupDelay.maxMs, options.firstLookupDelayMaxMs)
    }

    // Each caller may give up on its own signal. The transfer stops only
    // when every caller waiting for it has given up.
    const leave = transfer.shared.join(options.signal)
    try {
      return { ...await raceAbort(transfer.done, options.signal), fetched: true }
    } catch (err) {
      // The transfer ran with the size limit of the caller that started it,
      // such as a manifest request. A caller whose own limit allows the blob
      // starts a transfer of its own; the failed one is gone by now.
      if (err instanceof BlobTooLargeError && (options.maxSizeBytes == null || err.statedBytes <= options.maxSizeBytes)) {
        return this.fetch(digest, options)
      }
      throw err
    } finally {
      leave()
    }
  }

  private async transfer (digest: OciDigest, options: FetchOptions, lookupDelay: { maxMs?: number }): Promise<BlobInfo> {
    const signal = options.signal
    // Peers that failed or sent bad bytes during this transfer.
    const tried = new Set<string>()
    // Peers that responded NOT_FOUND. Later probes still ask them.
    const lacking = new Set<string>()
    // Preferred and recent sources are sent a full request straight away. A
    // miss costs one round trip before the connected peers and the DHT are probed.
    const connected = connectedPeerNames(this.node)
    const queue: PeerId[] = []
    for (const peer of [...(options.preferredPeers ?? []), ...this.recentSources.filter(recent => connected.has(recent.toString()))]) {
      if (!this.penalties.isPenalised(peer.toString()) && !queue.some(queued => queued.equals(peer))) {
        queue.push(peer)
      }
    }
    // Peers that busy sources named as holders during this transfer.
    const hinted = new Set<string>()
    const stallsBySource = new Map<string, StallCount>()
    let busyDelayMs = BUSY_RETRY_INITIAL_MS
    let rounds = 0
    const waitUntilMs = Date.now() + (options.waitForSourcesMs ?? DEFAULT_WAIT_FOR_SOURCES_MS)
    let resumable = true
    let writer: BlobWriter | undefined
    let contributors: string[] = []
    let lastError: Error | undefined

    try {
      while (true) {
        signal?.throwIfAborted()

        // Look for sources whenever the queue runs dry: a peer may have
        // connected, or fetched the blob, while an earlier source was tried.
        if (queue.length === 0) {
          if (++rounds > MAX_SOURCE_ROUNDS) {
            break
          }
          const found = await this.sources.find(digest, tried, { signal, firstLookupDelayMaxMs: lookupDelay.maxMs })
          queue.push(...shuffle(found.ready))
          if (queue.length === 0) {
            // During a rollout a blob may not be provided anywhere yet, so an
            // empty result is retried until the wait for sources runs out.
            // A deferred DHT lookup still runs before the fetch gives up.
            if (found.busy.length === 0 && !found.lookupDeferred && Date.now() >= waitUntilMs) {
              break
            }
            // Every holder is busy or none is known yet; new holders appear as fetches finish.
            if (found.busy.length > 0) {
              log('%d holders of %s are busy, asking again in %d ms', found.busy.length, digest, busyDelayMs)
            } else {
              log('no peer has %s yet, asking again in %d ms', digest, busyDelayMs)
            }
            await sleep(busyDelayMs * (0.5 + Math.random()), signal)
            busyDelayMs = Math.min(busyDelayMs * 2, BUSY_RETRY_MAX_MS)
            continue
          }
        }

        const peer = queue.shift() as PeerId
        const peerName = peer.toString()
        if (tried.has(peerName) || this.penalties.isPenalised(peerName)) {
          continue
        }

        if (writer != null && !resumable && writer.offset > 0) {
          await writer.abort()
          writer = undefined
          contributors = []
        }

        // A new temporary file is created while the request is in flight,
        // because neither needs the other.
        const offsetBefore = writer?.offset ?? 0
        const opening: Promise<BlobWriter> = writer != null ? Promise.resolve(writer) : this.store.createWriter(digest, options.sizeBytes)
        opening.catch(() => {})
        let outcome: 'done' | 'missing' | 'absent' | 'busy'
        let failure: Error | undefined
        try {
          outcome = await this.receiveFrom(peer, digest, opening, offsetBefore, options, holders => {
            // A busy source names the peers it sent copies to: try them next,
            // connected ones first (see preferConnected). Each is taken once
            // per transfer, so two busy peers that name each other do not
            // send requests back and forth without a pause.
            const untried = holders.filter(holder => {
              const name = holder.id.toString()
              return !tried.has(name) && !lacking.has(name) && !hinted.has(name)
            })
            for (const holder of this.sources.preferConnected(untried)) {
              hinted.add(holder.id.toString())
              queue.unshift(holder.id)
            }
          })
        } catch (err: any) {
          failure = err
          outcome = 'missing'
        }

        // A file that could not be created, or a disk error while writing it,
        // ends the transfer, because another source would not help.
        writer = await opening
        if (writer.error != null) {
          throw writer.error
        }
        // Every honest source states the same size for a digest, so other
        // sources would only state it again.
        if (failure instanceof BlobTooLargeError) {
          throw failure
        }
        if (failure != null) {
          this.stats.failedAttempts++
          lastError = failure
          log('fetching %s from %p stopped at offset %d, trying the next source: %e', digest, peer, writer.offset, failure)
        }
        if (writer.offset > offsetBefore && !contributors.includes(peerName)) {
          contributors.push(peerName)
        }

        if (outcome === 'missing') {
          // A source whose link went quiet for a while is asked again from the
          // new offset while its connection stays open: the liveness check
          // closes a dead one within 40 s. Other sources go first.
          if (failure instanceof StallError && this.node.getConnections(peer).length > 0) {
            const stalls = stallsBySource.get(peerName) ?? new StallCount()
            stallsBySource.set(peerName, stalls)
            if (stalls.record(writer.offset > offsetBefore)) {
              // Peers that connected since the queue was filled go first too.
              if (queue.length === 0) {
                const found = await this.sources.find(digest, new Set([...tried, peerName]), { signal, firstLookupDelayMaxMs: lookupDelay.maxMs })
                queue.push(...shuffle(found.ready))
              }
              queue.push(peer)
              continue
            }
          }
          tried.add(peerName)
          continue
        }
        if (outcome === 'absent') {
          // A peer that lacks the blob now may hold it in a moment, because
          // in a rollout it fetches the same blob. Later probes ask it again.
          lacking.add(peerName)
          continue
        }
        if (outcome === 'busy') {
          continue
        }

        const committed = writer
        writer = undefined
        let stored: CommittedBlob
        try {
          stored = await committed.commitBlob({ signal, onVerified: options.onVerified })
        } catch (err: any) {
          if (!(err instanceof DigestMismatchError)) {
            throw err
          }
          this.receiving.delete(digest)
          lastError = err
          this.handleMismatch(digest, contributors, tried, queue, err)
          if (contributors.length > 1) {
            resumable = false
          }
          contributors = []
          continue
        }

        this.stats.fetchedBlobs++
        this.recentSources = [peer, ...this.recentSources.filter(recent => !recent.equals(peer))].slice(0, MAX_RECENT_SOURCES)
        log('fetched %s (%d bytes) from %s', digest, stored.sizeBytes, contributors.join(', '))
        return { digest, sizeBytes: stored.sizeBytes, lastUsedMs: stored.mtimeMs }
      }
    } finally {
      await writer?.abort()
    }

    const reason = lastError == null ? 'no reachable peer has it, or it is still spreading through the mesh' : `last error: ${lastError.message}`
    throw new NoSourceError(`could not fetch blob ${digest} after asking ${new Set([...tried, ...lacking]).size} peer(s), with ${this.node.getConnections().length} connection(s) open: ${reason}`)
  }

  /**
   * Blames a blob that did not match its digest. A single contributor is
   * penalised. With several, each is retried alone from the start, so that a
   * further mismatch names the bad one.
   */
  private handleMismatch (digest: OciDigest, contributors: string[], tried: Set<string>, queue: PeerId[], err: Error): void {
    if (contributors.length === 1) {
      this.penalties.penalise(contributors[0] ?? '', `sent bytes for ${digest} that do not match it: ${err.message}`)
      return
    }

    log.error('bytes for %s from %s do not match it; refetching from single sources', digest, contributors.join(', '))
    for (const name of contributors) {
      tried.delete(name)
    }
    queue.unshift(...[...connectedPeers(this.node)].filter(([name]) => contributors.includes(name)).map(([, peer]) => peer))
  }

  /**
   * Appends what `peer` sends from the writer's offset. Returns "done" when
   * the blob is complete, "absent" when the peer does not have it, "missing"
   * when it states a wrong size, and "busy" when it is at its upload budget.
   */
  private async receiveFrom (peer: PeerId, digest: OciDigest, opening: Promise<BlobWriter>, offset: number, options: FetchOptions, onHolders: (holders: PeerInfo[]) => void = () => {}): Promise<'done' | 'missing' | 'absent' | 'busy'> {
    const stall = new AbortController()
    const signal = anySignal([stall.signal, ...(options.signal != null ? [options.signal] : [])])
    const watch = new StallWatch(this.node, peer, err => { stall.abort(err) })
    const cleanups: Array<() => void> = []

    let reply: Awaited<ReturnType<typeof requestBlob>> | undefined
    try {
      reply = await requestBlob(this.node, peer, digest, offset, { signal, sizeBytes: options.sizeBytes })
      if (reply.status === BlobResponse.Status.NOT_FOUND) {
        return 'absent'
      }
      if (reply.status === BlobResponse.Status.BUSY) {
        onHolders(await this.sources.rememberHolders(reply.holders, options))
        return 'busy'
      }
      if (reply.status !== BlobResponse.Status.OK) {
        throw new Error(`peer responded ${BlobResponse.Status[reply.status] ?? reply.status}: ${reply.message}`)
      }

      if (options.sizeBytes != null && reply.sizeBytes !== options.sizeBytes) {
        this.penalties.penalise(peer.toString(), `stated size ${reply.sizeBytes} for ${digest}, whose descriptor says ${options.sizeBytes}`)
        reply.stream.abort(new Error('size mismatch'))
        return 'missing'
      }
      // The blob may simply be that large, so the source is not penalised.
      if (options.maxSizeBytes != null && reply.sizeBytes > options.maxSizeBytes) {
        const tooLarge = new BlobTooLargeError(`${peer.toString()} stated size ${reply.sizeBytes} for ${digest}, above the limit of ${options.maxSizeBytes} bytes for this fetch`, reply.sizeBytes)
        reply.stream.abort(tooLarge)
        throw tooLarge
      }

      this.receiving.set(digest, peer)

      // The body is read from the stream itself, which no signal reaches:
      // abort it when the stall timer or the caller gives up.
      const stream = reply.stream
      const abortStream = (): void => { stream.abort(signal.reason instanceof Error ? signal.reason : new Error('aborted')) }
      signal.addEventListener('abort', abortStream, { once: true })
      cleanups.push(() => { signal.removeEventListener('abort', abortStream) })

      // The body length is known from the header, so reading stops at the last
      // byte instead of waiting for the peer to close its side of the stream.
      const writer = await opening
      if (writer.offset < reply.sizeBytes) {
        // The writer hashes each chunk at once and keeps it until it is
        // written. That is safe because noise decrypts each frame in place into
        // the buffer read from the socket, and yamux passes slices of it on.
        for await (const chunk of reply.body) {
          watch.progress()
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
      return 'done'
    } catch (err: any) {
      // An unfinished stream would keep counting against the per-connection stream limit.
      reply?.stream.abort(err instanceof Error ? err : new Error(String(err)))
      if (this.receiving.get(digest)?.equals(peer) === true) {
        this.receiving.delete(digest)
      }
      if (stall.signal.aborted) {
        throw stall.signal.reason
      }
      throw err
    } finally {
      watch.stop()
      cleanups.forEach(cleanup => { cleanup() })
    }
  }
}
