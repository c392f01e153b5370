/**
 * Drops repeated peer discovery events of a libp2p service. kad-dht reports
 * every peer in every query response as discovered, and libp2p rewrites that
 * peer's record in the peer store for each report. A DHT provide queries
 * about 20 peers that each return about 20 peers, so one provide caused about
 * 400 peer store writes, nearly all for peers already stored with the same
 * addresses (41,000 in a profiled rollout to 25 agents). This filter passes a
 * peer on when it is new, when its addresses changed, or when it was last
 * passed on more than a minute ago, so the peer store still refreshes the age
 * of addresses that keep being reported.
 */
import { peerDiscoverySymbol, type PeerDiscoveryEvents, type PeerInfo } from '@libp2p/interface'
import { TypedEventEmitter } from 'main-event'
import { setMostRecent } from '../util/bounded-map.js'

/** Time after which a peer reported again with the same addresses is passed on again, in ms. */
export const REPEAT_DISCOVERY_INTERVAL_MS = 60_000

/** Max peers remembered; the least recent entry is dropped beyond it. */
export const MAX_REMEMBERED_PEERS = 4_096

interface Seen {
  addresses: string
  atMs: number
}

/** Decides which discovery reports reach the peer store. */
export class DiscoveryFilter {
  private readonly seen = new Map<string, Seen>()
  /** Counters for tests and metrics. */
  readonly stats = { passed: 0, dropped: 0 }

  constructor (private readonly now: () => number = Date.now) {}

  /** Returns true when `peer` should be passed on, and remembers it. */
  accept (peer: PeerInfo): boolean {
    const id = peer.id.toString()
    const addresses = peer.multiaddrs.map(address => address.toString()).sort().join(' ')
    const nowMs = this.now()
    const previous = this.seen.get(id)
    if (previous != null && previous.addresses === addresses && nowMs - previous.atMs < REPEAT_DISCOVERY_INTERVAL_MS) {
      this.stats.dropped++
      return false
    }

    setMostRecent(this.seen, id, { addresses, atMs: nowMs }, MAX_REMEMBERED_PEERS)
    this.stats.passed++
    return true
  }
}

/**
 * Wraps a libp2p service factory so that libp2p receives the service's peer
 * discovery events through a DiscoveryFilter. Everything else reaches the
 * service unchanged.
 */
export function withDiscoveryFilter<Service extends object> (factory: (components: any) => Service, filter = new DiscoveryFilter()): (components: any) => Service {
  return (components: any) => {
    const service = factory(components)
    const source = (service as any)[peerDiscoverySymbol] as EventTarget | undefined
    if (source == null) {
      return service
    }

    const filtered = new TypedEventEmitter<PeerDiscoveryEvents>()
    source.addEventListener('peer', (event) => {
      const peer = (event as CustomEvent<PeerInfo>).detail
      if (filter.accept(peer)) {
        filtered.safeDispatchEvent('peer', { detail: peer })
      }
    })

    // Methods are bound to the service itself, because kad-dht keeps its
    // state in private class fields, which a proxy as `this` cannot reach.
    return new Proxy(service, {
      get (target, property) {
        if (property === peerDiscoverySymbol) {
          return filtered
        }
        const value = Reflect.get(target, property, target)
        return typeof value === 'function' ? value.bind(target) : value
      }
    })
  }
}
