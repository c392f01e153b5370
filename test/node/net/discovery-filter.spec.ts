import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { expect } from 'chai'
import { DiscoveryFilter, MAX_REMEMBERED_PEERS, REPEAT_DISCOVERY_INTERVAL_MS } from '../../../node/net/discovery-filter.js'
import type { PeerId, PeerInfo } from '@libp2p/interface'

async function newPeerId (): Promise<PeerId> {
  return peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
}

function info (id: PeerId, ...addresses: string[]): PeerInfo {
  return { id, multiaddrs: addresses.map(address => multiaddr(address)) }
}

describe('DiscoveryFilter', () => {
  let nowMs: number
  let filter: DiscoveryFilter
  let peer: PeerId

  beforeEach(async () => {
    nowMs = 1_000_000
    filter = new DiscoveryFilter(() => nowMs)
    peer = await newPeerId()
  })

  it('passes a new peer', () => {
    expect(filter.accept(info(peer, '/ip4/127.0.0.1/tcp/4001'))).to.equal(true)
  })

  it('drops a repeat with the same addresses', () => {
    filter.accept(info(peer, '/ip4/127.0.0.1/tcp/4001', '/ip4/127.0.0.1/tcp/4002'))

    expect(filter.accept(info(peer, '/ip4/127.0.0.1/tcp/4002', '/ip4/127.0.0.1/tcp/4001'))).to.equal(false)
    expect(filter.stats.dropped).to.equal(1)
  })

  it('passes a repeat with changed addresses', () => {
    filter.accept(info(peer, '/ip4/127.0.0.1/tcp/4001'))

    expect(filter.accept(info(peer, '/ip4/127.0.0.1/tcp/4003'))).to.equal(true)
  })

  it('passes a repeat after the interval', () => {
    filter.accept(info(peer, '/ip4/127.0.0.1/tcp/4001'))
    nowMs += REPEAT_DISCOVERY_INTERVAL_MS

    expect(filter.accept(info(peer, '/ip4/127.0.0.1/tcp/4001'))).to.equal(true)
  })

  it('forgets the least recent peer beyond the limit', async () => {
    filter.accept(info(peer, '/ip4/127.0.0.1/tcp/4001'))
    for (let i = 0; i < MAX_REMEMBERED_PEERS; i++) {
      filter.accept(info(await newPeerId(), `/ip4/127.0.0.1/tcp/${5000 + i}`))
    }

    expect(filter.accept(info(peer, '/ip4/127.0.0.1/tcp/4001'))).to.equal(true)
  })
})
