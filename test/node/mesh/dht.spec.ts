import { expect } from 'chai'
import { publishImage } from '../../../node/agent/publish.js'
import { SourceFinder } from '../../../node/fetch/sources.js'
import { pullImage } from '../../../node/agent/pull.js'
import { digestToCid } from '../../../protocol/digest.js'
import { fixture } from '../../utils/paths.js'
import { addressOf, startLocalAgent, stopLocalAgents, waitUntil } from '../../utils/in-process.js'
import type { Agent } from '../../../node/agent/agent.js'

describe('mesh discovery through the DHT', function () {
  this.timeout(120_000)
  const agents: Agent[] = []

  afterEach(async () => {
    await stopLocalAgents(agents.splice(0))
  })

  async function line (length: number): Promise<Agent[]> {
    const nodes: Agent[] = []
    for (let i = 0; i < length; i++) {
      const previous = nodes[i - 1]
      const agent = await startLocalAgent({ bootstrap: previous == null ? [] : [addressOf(previous)] })
      nodes.push(agent)
      agents.push(agent)
    }
    for (let i = 1; i < length; i++) {
      const agent = nodes[i] as Agent
      await waitUntil(() => agent.node.getPeers().length > 0, `agent ${i} to connect to its neighbour`)
    }
    return nodes
  }

  it('pulls across six agents in a line', async () => {
    const nodes = await line(6)
    const first = nodes[0] as Agent
    const last = nodes[5] as Agent

    const published = await publishImage(first.context, 'demo/httpd:v1', `${fixture('micro-httpd')}:v1`)
    // The last agent is five hops from the publisher. The tag reaches it by
    // gossip, and the blobs through the publisher's provider records.
    await waitUntil(() => last.context.catalog.get('demo/httpd', 'v1') != null, 'the tag to reach the last agent')
    await waitUntil(() => first.context.providers.pending === 0, 'the publisher to provide its blobs')

    const result = await pullImage(last.context, 'demo/httpd:v1', { signal: AbortSignal.timeout(60_000) })

    expect(result.digest).to.equal(published.digest)
    expect(result.fetchedBlobs).to.equal(3)
    expect(last.node.getPeers().map(peer => peer.toString())).to.include(first.peerId)
  })

  it('finds a provider that is not connected', async () => {
    const hub = await startLocalAgent()
    agents.push(hub)
    const holder = await startLocalAgent({ bootstrap: [addressOf(hub)] })
    agents.push(holder)
    const seeker = await startLocalAgent({ bootstrap: [addressOf(hub)] })
    agents.push(seeker)
    await waitUntil(() => seeker.node.getPeers().length > 0 && holder.node.getPeers().length > 0, 'both to reach the hub')

    const published = await publishImage(holder.context, 'demo/httpd:v1', `${fixture('micro-httpd')}:v1`)
    await waitUntil(() => holder.context.providers.pending === 0, 'the holder to provide its blobs')
    const providers = []
    for await (const provider of seeker.node.contentRouting.findProviders(digestToCid(published.digest as `sha256:${string}`), { signal: AbortSignal.timeout(10_000) })) {
      providers.push(provider.id.toString())
    }

    expect(providers).to.include(holder.peerId)
  })

  it('tries a provider that left at most once', async () => {
    const hub = await startLocalAgent()
    agents.push(hub)
    const publisher = await startLocalAgent({ bootstrap: [addressOf(hub)] })
    agents.push(publisher)
    const leaver = await startLocalAgent({ bootstrap: [addressOf(hub)] })
    const seeker = await startLocalAgent({ bootstrap: [addressOf(hub)] })
    agents.push(seeker)
    await waitUntil(() => [publisher, leaver, seeker].every(agent => agent.node.getPeers().length > 0), 'all to reach the hub')

    const published = await publishImage(publisher.context, 'demo/httpd:v1', `${fixture('micro-httpd')}:v1`)
    await waitUntil(() => leaver.context.catalog.get('demo/httpd', 'v1') != null, 'the tag to reach the leaver')
    await pullImage(leaver.context, 'demo/httpd:v1')
    // The leaver would provide its fetched blobs after a random delay of
    // several seconds; provide them now, as it would have before leaving.
    for (const blob of await leaver.context.store.list()) {
      await leaver.node.contentRouting.provide(digestToCid(blob.digest), { signal: AbortSignal.timeout(20_000) })
    }
    await waitUntil(() => publisher.context.providers.pending === 0, 'the publisher\'s provider records')
    await stopLocalAgents([leaver])

    // Leave out the live peers, so that only the DHT's records are asked:
    // the leaver's stale record is tried once, then skipped. This finder
    // looks up at once instead of first waiting for the neighbours.
    const sources = new SourceFinder(seeker.node, seeker.context.penalties, { firstLookupDelayMaxMs: 0 })
    const exclude = new Set([hub.peerId, publisher.peerId])
    const digest = published.digest as `sha256:${string}`
    try {
      await sources.find(digest, exclude, { signal: AbortSignal.timeout(20_000) })
      const afterFirst = sources.stats.deadProviders
      await sources.find(digest, exclude, { signal: AbortSignal.timeout(20_000) })
      const afterSecond = sources.stats.deadProviders

      expect(sources.stats.providerLookups).to.equal(2)
      expect(afterFirst).to.equal(1)
      expect(afterSecond).to.equal(1)
      expect(sources.isDead(leaver.peerId)).to.equal(true)
    } finally {
      sources.stop()
    }

    const result = await pullImage(seeker.context, 'demo/httpd:v1', { signal: AbortSignal.timeout(60_000) })
    expect(result.digest).to.equal(published.digest)
  })

  it('keeps DHT provider records across a restart', async () => {
    const hub = await startLocalAgent()
    const holder = await startLocalAgent({ bootstrap: [addressOf(hub)] })
    agents.push(holder)
    await waitUntil(() => holder.node.getPeers().length > 0, 'the holder to reach the hub')
    const published = await publishImage(holder.context, 'demo/httpd:v1', `${fixture('micro-httpd')}:v1`)
    await waitUntil(() => holder.context.providers.pending === 0, 'the holder to provide its blobs')

    // With the holder gone, the only copy of its provider record is in the hub's datastore.
    await holder.stop()
    const dir = hub.context.dir
    await hub.stop()
    const restarted = await startLocalAgent({ dir })
    agents.push(restarted)
    const seeker = await startLocalAgent({ bootstrap: [addressOf(restarted)] })
    agents.push(seeker)
    await waitUntil(() => seeker.node.getPeers().length > 0, 'the seeker to reach the restarted hub')

    const providers = []
    for await (const provider of seeker.node.contentRouting.findProviders(digestToCid(published.digest as `sha256:${string}`), { signal: AbortSignal.timeout(10_000) })) {
      providers.push(provider.id.toString())
    }

    expect(providers).to.include(holder.peerId)
  })
})
