/**
 * Builds the agent's libp2p node: TCP (or in-memory links for the
 * simulator), noise, yamux, identify, ping and gossipsub, with the settings a
 * mesh of many peers behind one IP address (loopback, a simulator) needs.
 */
import { gossipsub, type GossipSub } from '@libp2p/gossipsub'
import { identify, type Identify } from '@libp2p/identify'
import { kadDHT, passthroughMapper, type KadDHT } from '@libp2p/kad-dht'
import { FaultTolerance } from '@libp2p/interface'
import { noise } from '@libp2p/noise'
import { ping, type Ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { coalesceSocketWrites } from './coalesce-writes.js'
import { connectionLiveness, type ConnectionLiveness, type ConnectionLivenessInit } from './liveness.js'
import { withDiscoveryFilter } from './discovery-filter.js'
import { createLibp2p, type Libp2p, type Libp2pOptions } from 'libp2p'
import type { ConnectionGater, PrivateKey } from '@libp2p/interface'
import type { Datastore } from 'interface-datastore'

/** Services every kilomesh node runs. */
export interface KilomeshServices {
  identify: Identify
  ping: Ping
  pubsub: GossipSub
  liveness: ConnectionLiveness
  /** Present unless the node was created with `dht: false`. */
  dht?: KadDHT
  [name: string]: unknown
}

/** Ping streams allowed at once per connection, each way. */
const MAX_PING_STREAMS = 4

/** Time a liveness ping may take before it counts as failed. */
const PING_TIMEOUT_MS = 10_000

/**
 * Time between two liveness checks of one connection, in ms. Each ping
 * costs a stream, a protocol negotiation and a peer store update, on both
 * sides. With libp2p's default of 10 s, pings took a sixth of the CPU of an
 * idle 50-agent mesh with about 30 connections per agent. A dead connection
 * is still noticed within a minute, and a reset one at once.
 */
const PING_INTERVAL_MS = 30_000

/**
 * Parallel requests of one DHT query, and disjoint paths it follows. kad-dht
 * defaults to 10 of each, for the public IPFS network with its high
 * latencies and unreliable peers. A device fleet is small and on a LAN, so
 * 3 (Kademlia's usual concurrency) is enough. With 10 x 10, a rollout's
 * provides and lookups dialled most of a 50-agent mesh.
 */
const DHT_QUERY_CONCURRENCY = 3

/** Protocol of kilomesh's private Kademlia DHT, kept apart from the public IPFS DHT. */
export const DHT_PROTOCOL = '/kilomesh/kad/1.0.0'

/** mDNS service name kilomesh agents announce themselves under on a LAN. */
export const MDNS_SERVICE_TAG = '_kilomesh._udp.local'

export type KilomeshLibp2p = Libp2p<KilomeshServices>

export interface NodeInit {
  privateKey: PrivateKey
  listen: string[]
  datastore?: Datastore
  /** Transports to use; defaults to TCP. The simulator passes in-memory links. */
  transports?: Libp2pOptions['transports']
  connectionGater?: ConnectionGater
  connectionProtector?: Libp2pOptions['connectionProtector']
  /** Run the Kademlia DHT in server mode. @default true */
  dht?: boolean
  /** Discover peers on the LAN with mDNS. @default false */
  mdns?: boolean
  /** Liveness check timing, for tests; the defaults suit a device fleet. */
  liveness?: Partial<ConnectionLivenessInit>
  /** Extra libp2p services, such as catalog sync. */
  services?: Record<string, (components: any) => unknown>
}

/**
 * Creates and starts a node. Listening uses no-fatal fault tolerance, so a
 * host without IPv6 still starts on IPv4; the caller checks that at least one
 * address is bound.
 */
export async function createKilomeshNode (init: NodeInit): Promise<KilomeshLibp2p> {
  // mDNS and its DNS packet code load only when a LAN address needs them,
  // which keeps them out of the start of an agent on loopback.
  const peerDiscovery: Libp2pOptions['peerDiscovery'] = []
  if (init.mdns === true) {
    const { mdns } = await import('@libp2p/mdns')
    peerDiscovery.push(mdns({ serviceTag: MDNS_SERVICE_TAG }))
  }

  const node = await createLibp2p({
    privateKey: init.privateKey,
    datastore: init.datastore,
    addresses: { listen: init.listen },
    transports: init.transports ?? [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionGater: {
      // Loopback and private addresses are where a test mesh or a LAN fleet lives.
      denyDialMultiaddr: () => false,
      ...init.connectionGater
    },
    connectionProtector: init.connectionProtector,
    transportManager: { faultTolerance: FaultTolerance.NO_FATAL },
    // libp2p's monitor aborts a connection whose ping times out, even one
    // busy with a large blob on a slow link. ConnectionLiveness replaces it.
    connectionMonitor: { enabled: false },
    connectionManager: {
      // Many agents share one address on loopback and in simulations; without
      // this, libp2p's per-host inbound rate limit rejects their connections.
      allow: ['/ip4/127.0.0.0/ipcidr/8', '/ip6/::1/ipcidr/128']
    },
    services: {
      identify: identify(),
      // A ping stream still open from the last round made the next one fail
      // with a stream limit of 1. Under load the failed ping then aborted a
      // healthy connection, and connections churned in a loop.
      ping: ping({ maxInboundStreams: MAX_PING_STREAMS, maxOutboundStreams: MAX_PING_STREAMS }),
      liveness: connectionLiveness({
        intervalMs: init.liveness?.intervalMs ?? PING_INTERVAL_MS,
        pingTimeoutMs: init.liveness?.pingTimeoutMs ?? PING_TIMEOUT_MS
      }),
      pubsub: gossipsub({
        allowPublishToZeroTopicPeers: true,
        emitSelf: false,
        // The IP co-location penalty silently drops peers that share an IP,
        // which is every peer on loopback or in the simulator.
        scoreParams: { IPColocationFactorWeight: 0 }
      }),
      ...(init.dht === false
        ? {}
        : {
            dht: withDiscoveryFilter(kadDHT({
              protocol: DHT_PROTOCOL,
              alpha: DHT_QUERY_CONCURRENCY,
              disjointPaths: DHT_QUERY_CONCURRENCY,
              // Devices are dialable on their LAN, so every agent serves the DHT.
              clientMode: false,
              // The default mappers drop loopback, LAN and /memory addresses,
              // which is where a device fleet, a test mesh and the simulator live.
              peerInfoMapper: passthroughMapper
            }))
          }),
      ...init.services
    },
    peerDiscovery
  })

  // One writev per tick instead of one write per noise frame and length prefix.
  node.addEventListener('connection:open', event => { coalesceSocketWrites(event.detail) })
  for (const connection of node.getConnections()) {
    coalesceSocketWrites(connection)
  }

  return node
}
