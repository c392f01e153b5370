/**
 * Finds peers that hold a blob: first the connected peers, asked directly in
 * one round trip, then providers found in the DHT. A provider that cannot be
 * dialled is skipped until it connects again or its mark expires, so a peer
 * that left costs one failed attempt, not one per stale record.
 */
import { setMaxListeners } from 'node:events'
import { logger } from '@libp2p/logger'
import { digestToCid, type OciDigest } from '../../protocol/digest.js'
import { BlobResponse } from '../../protocol/messages/blob.js'
import { requestBlob } from '../net/blob-client.js'
import { connectedPeerNames, connectedPeers } from '../net/peers.js'
import { anySignal, timeoutSignal } from '../net/signals.js'
import { sample } from './random.js'
import { setMostRecent } from '../util/bounded-map.js'
import { DEAD_PROVIDER_MS, FIND_PROVIDERS_TIMEOUT_MS, MAX_PROVIDERS_PER_LOOKUP, RESOLVE_TIMEOUT_MS } from '../net/constants.js'
import type { KilomeshLibp2p } from '../net/libp2p.js'
import type { PeerPenalties } from './penalties.js'
import type { AbortOptions, PeerId, PeerInfo } from '@libp2p/interface'

const log = logger('kilomesh:sources')

/** Connected peers asked per discovery round whether they hold a blob. */
const MAX_PROBED_PEERS = 8

/**
 * Time a fetch waits for busy holders before it looks the blob up in the
 * DHT, and then between two lookups while they stay busy, in ms. A busy
 * holder serves within its copy window, and its BUSY response names the
 * peers it sent copies to, which can serve at once. In a rollout nearly
 * every device gets BUSY from the publisher. When each of them also queried
 * the DHT, those queries took most of the CPU of a 50-agent mesh.
 */
export const BUSY_LOOKUP_INTERVAL_MS = 10_000

/**
 * Maximum random wait before the first DHT lookup for a blob that no
 * connected peer has or is receiving, in ms. In a rollout the devices learn
 * of a new version together, so the neighbours of a device usually start
 * receiving the blob within this wait and then respond BUSY with their
 * source. Each lookup dials peers, and kad-dht pings every new peer named in
 * the responses. Outside a rollout the wait only delays the lookup.
 */
export const FIRST_LOOKUP_DELAY_MAX_MS = 1_000

/**
 * Maximum random wait before the first DHT lookup in a subscription's pull,
 * in ms. Every subscribed device learns of a new version at once, and one
 * whose neighbours had not started receiving the blob within the shorter
 * wait looked it up. Each lookup dials the peers the DHT names, and kad-dht
 * pings every new one. At 50 agents on loopback, one or two lookups opened
 * 100 to 200 connections and made the rollout take 3.1 to 3.7 s instead of
 * 2.2 to 2.5 s. An automatic pull can wait, because its neighbours are
 * pulling the same version. Only a blob that no connected peer has or
 * receives waits, so a device whose neighbours are not subscribed gets it
 * up to this much later per level of the image (index, manifest, blobs).
 */
export const ROLLOUT_FIRST_LOOKUP_DELAY_MAX_MS = 5_000

/** Max blobs whose last lookup time is remembered. */
const MAX_TRACKED_LOOKUPS = 1_024

export interface SourceFinderInit {
  /** @default BUSY_LOOKUP_INTERVAL_MS */
  busyLookupIntervalMs?: number
  /** @default FIRST_LOOKUP_DELAY_MAX_MS */
  firstLookupDelayMaxMs?: number
}

export interface FindOptions extends AbortOptions {
  /** Maximum random wait before the first DHT lookup for a blob. The finder's own applies when it is omitted. */
  firstLookupDelayMaxMs?: number
}

/** Holders that can serve now, and holders that responded BUSY. */
export interface FoundSources {
  ready: PeerId[]
  busy: PeerId[]
  /** Peers that busy holders named as having received a copy. */
  hinted: PeerInfo[]
  /** True when the first DHT lookup was put off; the caller asks again soon. */
  lookupDeferred: boolean
}

export class SourceFinder {
  /** Counters for status output and metrics. */
  readonly stats = { providerLookups: 0, providersFound: 0, deadProviders: 0, skippedLookups: 0, deferredLookups: 0 }
  private readonly deadUntilMs = new Map<string, number>()
  /** Start time of the last DHT lookup per blob, or when holders were first busy. */
  private readonly lastLookupMs = new Map<OciDigest, number>()
  /** Start and random fraction of the wait before the first DHT lookup, per blob that no connected peer had. */
  private readonly firstLookupWaits = new Map<OciDigest, { sinceMs: number, fraction: number }>()
  private readonly busyLookupIntervalMs: number
  private readonly firstLookupDelayMaxMs: number
  private readonly onConnect = (event: CustomEvent<PeerId>): void => { this.deadUntilMs.delete(event.detail.toString()) }

  constructor (private readonly node: KilomeshLibp2p, private readonly penalties: PeerPenalties, init: SourceFinderInit = {}) {
    this.busyLookupIntervalMs = init.busyLookupIntervalMs ?? BUSY_LOOKUP_INTERVAL_MS
    this.firstLookupDelayMaxMs = init.firstLookupDelayMaxMs ?? FIRST_LOOKUP_DELAY_MAX_MS
    node.addEventListener('peer:connect', this.onConnect)
  }

  stop (): void {
    this.node.removeEventListener('peer:connect', this.onConnect)
  }

  /** Returns true when a provider is marked unreachable. */
  isDead (peer: string): boolean {
    const until = this.deadUntilMs.get(peer)
    if (until == null) {
      return false
    }
    if (until <= Date.now()) {
      this.deadUntilMs.delete(peer)
      return false
    }
    return true
  }

  /**
   * Adds the addresses of holders a busy peer named to the peer store, so
   * that they can be dialled, and returns the holders worth asking: not this
   * agent, not penalised, and not marked unreachable.
   */
  async rememberHolders (holders: PeerInfo[], options: AbortOptions = {}): Promise<PeerInfo[]> {
    const usable: PeerInfo[] = []
    for (const holder of holders) {
      const name = holder.id.toString()
      if (holder.id.equals(this.node.peerId) || this.penalties.isPenalised(name) || this.isDead(name)) {
        continue
      }
      try {
        await this.node.peerStore.merge(holder.id, { multiaddrs: holder.multiaddrs }, options)
        usable.push(holder)
      } catch (err: any) {
        log.trace('failed to record the addresses of holder %p: %e', holder.id, err)
      }
    }
    return usable
  }

  /**
   * Returns the holders this agent is connected to, or all of them when it
   * is connected to none. In a rollout most devices get BUSY from the same
   * few early holders, and each would dial the copies those name. At 50
   * agents on loopback that added 150 connections during the rollout, each
   * with its handshake, identify, DHT check and catalog sync. A connected
   * holder serves as well and costs no dial. The caller leaves out holders
   * that already lacked the blob, so the unconnected ones are dialled when
   * no connected one can lead to it.
   */
  preferConnected (holders: PeerInfo[]): PeerInfo[] {
    const connected = holders.filter(holder => this.isConnected(holder.id))
    return connected.length > 0 ? connected : holders
  }

  private isConnected (peer: PeerId): boolean {
    return this.node.getConnections(peer).length > 0
  }

  /** Marks a peer unreachable, after a failed dial or a broken connection. */
  markDead (peer: string): void {
    this.deadUntilMs.set(peer, Date.now() + DEAD_PROVIDER_MS)
    this.stats.deadProviders++
  }

  /**
   * Asks connected peers, then (when none can serve) DHT providers, whether
   * they hold `digest`. Peers in `exclude` are not asked.
   */
  async find (digest: OciDigest, exclude: Set<string>, options: FindOptions = {}): Promise<FoundSources> {
    const found: FoundSources = { ready: [], busy: [], hinted: [], lookupDeferred: false }
    const usable = (peer: PeerId): boolean => {
      const name = peer.toString()
      return !exclude.has(name) && !this.penalties.isPenalised(name) && !peer.equals(this.node.peerId)
    }

    // Each probe is a stream, so a well-connected agent probes a random sample
    // of its peers per round rather than all of them.
    await this.ask(sample([...connectedPeers(this.node).values()].filter(usable), MAX_PROBED_PEERS), digest, found, options)

    // Busy holders name the peers they sent copies to. Those may not be
    // connected here, and without the DHT nothing else would lead to them.
    // Connected ones are asked first. The others cost a dial each, so they
    // are asked only when none of the connected ones has the blob or
    // returns BUSY because it is receiving it.
    const hinted = found.hinted.filter(holder => usable(holder.id) && !found.busy.some(busy => busy.equals(holder.id)))
    const connectedHints = hinted.filter(holder => this.isConnected(holder.id))
    const busyBefore = found.busy.length
    if (found.ready.length === 0 && connectedHints.length > 0) {
      await this.ask(connectedHints.map(holder => holder.id), digest, found, options)
    }
    const otherHints = hinted.filter(holder => !connectedHints.includes(holder))
    if (found.ready.length === 0 && found.busy.length === busyBefore && otherHints.length > 0) {
      await this.ask(otherHints.map(holder => holder.id), digest, found, options)
    }
    if (found.ready.length > 0 || this.node.services.dht == null) {
      return found
    }
    if (found.busy.length > 0 && !this.busyLookupDue(digest)) {
      this.stats.skippedLookups++
      return found
    }
    if (found.busy.length === 0 && !this.firstLookupDue(digest, options.firstLookupDelayMaxMs ?? this.firstLookupDelayMaxMs)) {
      this.stats.deferredLookups++
      found.lookupDeferred = true
      return found
    }

    setMostRecent(this.lastLookupMs, digest, Date.now(), MAX_TRACKED_LOOKUPS)
    await this.askProviders(digest, usable, found, options)
    return found
  }

  /**
   * Returns true once the random wait before the first lookup for `digest`
   * has passed. The wait starts the first time no connected peer had it,
   * and is a random fraction of `delayMaxMs`, drawn once. A later call with
   * a lower maximum, from a caller that joined the transfer, shortens it.
   */
  private firstLookupDue (digest: OciDigest, delayMaxMs: number): boolean {
    let wait = this.firstLookupWaits.get(digest)
    if (wait == null) {
      wait = { sinceMs: Date.now(), fraction: Math.random() }
      setMostRecent(this.firstLookupWaits, digest, wait, MAX_TRACKED_LOOKUPS)
    }
    return Date.now() >= wait.sinceMs + wait.fraction * delayMaxMs
  }

  /**
   * Returns true when busy holders have been waited for long enough:
   * `busyLookupIntervalMs` since they were first seen busy, or since the
   * last DHT lookup for `digest`.
   */
  private busyLookupDue (digest: OciDigest): boolean {
    const lastMs = this.lastLookupMs.get(digest)
    if (lastMs == null) {
      setMostRecent(this.lastLookupMs, digest, Date.now(), MAX_TRACKED_LOOKUPS)
      return false
    }
    return Date.now() - lastMs >= this.busyLookupIntervalMs
  }

  /**
   * Asks each DHT provider as the lookup yields it, and stops the lookup as
   * soon as one can serve, instead of waiting for the whole query to finish.
   */
  private async askProviders (digest: OciDigest, usable: (peer: PeerId) => boolean, found: FoundSources, options: AbortOptions): Promise<void> {
    const connected = connectedPeerNames(this.node)
    const lookup = new AbortController()
    const signal = anySignal([lookup.signal, timeoutSignal(FIND_PROVIDERS_TIMEOUT_MS, options.signal)])
    setMaxListeners(Infinity, signal)
    const seen = new Set<string>()
    const asks: Array<Promise<void>> = []
    this.stats.providerLookups++

    try {
      for await (const provider of this.node.contentRouting.findProviders(digestToCid(digest), { signal })) {
        const name = provider.id.toString()
        if (seen.has(name) || !usable(provider.id) || connected.has(name) || this.isDead(name)) {
          continue
        }
        seen.add(name)
        this.stats.providersFound++
        if (provider.multiaddrs.length > 0) {
          await this.node.peerStore.merge(provider.id, { multiaddrs: provider.multiaddrs })
        }
        asks.push(this.ask([provider.id], digest, found, options).then(() => {
          if (found.ready.length > 0) {
            lookup.abort()
          }
        }))
        if (seen.size >= MAX_PROVIDERS_PER_LOOKUP) {
          break
        }
      }
    } catch (err: any) {
      if (options.signal?.aborted === true) {
        throw err
      }
      log.trace('provider lookup for %s ended: %e', digest, err)
    }

    await Promise.all(asks)
    log.trace('asked %d providers of %s: %d ready, %d busy', seen.size, digest, found.ready.length, found.busy.length)
  }

  private async ask (peers: PeerId[], digest: OciDigest, found: FoundSources, options: AbortOptions): Promise<void> {
    const signal = timeoutSignal(RESOLVE_TIMEOUT_MS, options.signal)
    await Promise.all(peers.map(async peer => {
      // Only a failed dial shows the peer is gone. A failed stream on a live
      // connection (a reset, a stream limit) shows nothing about the next try.
      if (this.node.getConnections(peer).length === 0) {
        try {
          await this.node.dial(peer, { signal })
        } catch (err: any) {
          if (options.signal?.aborted !== true) {
            log('provider %p is unreachable, skipping it for %d ms: %s', peer, DEAD_PROVIDER_MS, err.message)
            this.markDead(peer.toString())
          }
          return
        }
      }

      try {
        const reply = await requestBlob(this.node, peer, digest, 0, { signal, headerOnly: true })
        if (reply.status === BlobResponse.Status.OK) {
          found.ready.push(peer)
        } else if (reply.status === BlobResponse.Status.BUSY) {
          found.busy.push(peer)
          for (const holder of await this.rememberHolders(reply.holders, options)) {
            if (!found.hinted.some(known => known.id.equals(holder.id))) {
              found.hinted.push(holder)
            }
          }
        }
      } catch (err: any) {
        log.trace('%p did not respond whether it has %s: %e', peer, digest, err)
      }
    }))
  }
}
