import { expect } from 'chai'
import { multiaddr } from '@multiformats/multiaddr'
import { publishTag } from '../../../node/agent/publish.js'
import { digestOf } from '../../../protocol/digest.js'
import { addressOf, startLocalAgent, stopLocalAgents, waitUntil } from '../../utils/in-process.js'
import type { Agent, AgentOptions } from '../../../node/agent/agent.js'

/** Options that leave sync as the only way records can travel once gossip has passed: no DHT, no extra dials. */
const QUIET: Partial<AgentOptions> = { dht: false, mdns: false, minConnections: 0 }

describe('sync relay across a line of agents', function () {
  this.timeout(60_000)
  let agents: Agent[] = []

  afterEach(async () => {
    await stopLocalAgents(agents)
    agents = []
  })

  it('carries a synced record two hops', async () => {
    // x1 - x2 - x3 in a line; the publisher joins x1 after publishing, so gossip never carried its record.
    const x1 = await startLocalAgent(QUIET)
    const x2 = await startLocalAgent({ ...QUIET, bootstrap: [addressOf(x1)] })
    const x3 = await startLocalAgent({ ...QUIET, bootstrap: [addressOf(x2)] })
    const publisher = await startLocalAgent(QUIET)
    agents = [x1, x2, x3, publisher]
    await waitUntil(() => x2.node.getPeers().length === 2, 'x2 to connect to x1 and x3')

    const content = new TextEncoder().encode('relayed manifest')
    const { signed } = await publishTag(publisher.context, 'demo/relay', 'v1', { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: digestOf(content), size: content.byteLength })
    await publisher.node.dial(multiaddr(addressOf(x1)))

    // The periodic sync runs every 30 s or so; the relay must beat it by far.
    const startedMs = Date.now()
    await waitUntil(() => x3.context.catalog.get('demo/relay', 'v1') != null, 'x3 to learn the record', 10_000)

    expect(Date.now() - startedMs, 'ms until x3 learned the record').to.be.below(5_000)
    expect(x3.context.catalog.get('demo/relay', 'v1')?.record.digest).to.equal(signed.record.digest)
    expect(x3.node.getPeers().map(peer => peer.toString())).to.not.include(publisher.peerId)
  })
})
