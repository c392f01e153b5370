import { randomBytes } from 'node:crypto'
import { expect } from 'chai'
import { BlobProviders } from '../../../node/net/providers.js'
import { addressOf, startLocalAgent, stopLocalAgents, waitUntil } from '../../utils/in-process.js'
import type { Agent } from '../../../node/agent/agent.js'
import { digestOf, type OciDigest } from '../../../protocol/digest.js'

describe('BlobProviders', function () {
  this.timeout(60_000)
  let agent: Agent
  let peer: Agent
  let providers: BlobProviders
  /** Digests the test declares fetched from a peer. */
  let fetched: Set<string>

  beforeEach(async () => {
    // A provide needs a DHT peer to store the record on.
    agent = await startLocalAgent()
    peer = await startLocalAgent({ bootstrap: [addressOf(agent)] })
    await waitUntil(() => agent.node.getPeers().length > 0, 'the agents to connect')
    fetched = new Set()
    providers = new BlobProviders(agent.node, agent.context.store, {
      isFetched: digest => fetched.has(digest),
      fetchedDelayMinMs: 1_000,
      fetchedDelayMaxMs: 1_000
    })
    await providers.start()
  })

  afterEach(async () => {
    providers.stop()
    await stopLocalAgents([agent, peer])
  })

  async function store (options: { fetched: boolean }): Promise<OciDigest> {
    const bytes = randomBytes(1024)
    if (options.fetched) {
      fetched.add(digestOf(bytes))
    }
    return agent.context.store.put(bytes)
  }

  it('provides a local blob without delay', async () => {
    const slow = new BlobProviders(agent.node, agent.context.store, {
      isFetched: digest => fetched.has(digest),
      fetchedDelayMinMs: 60_000,
      fetchedDelayMaxMs: 60_000
    })
    await slow.start()

    try {
      await store({ fetched: true })
      await store({ fetched: false })

      await waitUntil(() => slow.stats.provided === 1, 'the local blob to be provided', 20_000)
      expect(slow.pending).to.equal(1)
    } finally {
      slow.stop()
    }
  })

  it('delays a fetched blob', async () => {
    await store({ fetched: true })
    await new Promise(resolve => setTimeout(resolve, 500))

    expect(providers.stats.provided).to.equal(0)
    expect(providers.pending).to.equal(1)
    await waitUntil(() => providers.stats.provided === 1, 'the fetched blob to be provided', 5_000)
  })

  it('skips a fetched blob deleted during the delay', async () => {
    const digest = await store({ fetched: true })
    await agent.context.store.delete(digest)

    await waitUntil(() => providers.pending === 0, 'the delayed provide to run', 5_000)
    expect(providers.stats.provided).to.equal(0)
  })
})
