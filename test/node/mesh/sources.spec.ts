import { randomBytes } from 'node:crypto'
import { expect } from 'chai'
import { digestOf } from '../../../protocol/digest.js'
import { SourceFinder } from '../../../node/fetch/sources.js'
import { MAX_UPLOADS_PER_BLOB } from '../../../node/net/constants.js'
import { addressOf, startLocalAgent, stopLocalAgents, waitUntil } from '../../utils/in-process.js'
import type { Agent } from '../../../node/agent/agent.js'

describe('SourceFinder', function () {
  this.timeout(120_000)
  const agents: Agent[] = []

  afterEach(async () => {
    await stopLocalAgents(agents.splice(0))
  })

  it('defers DHT lookups while holders are busy', async () => {
    const holder = await startLocalAgent()
    agents.push(holder)
    const receivers: Agent[] = []
    for (let i = 0; i < MAX_UPLOADS_PER_BLOB + 1; i++) {
      const receiver = await startLocalAgent({ bootstrap: [addressOf(holder)] })
      agents.push(receiver)
      receivers.push(receiver)
    }
    await waitUntil(() => receivers.every(receiver => receiver.node.getConnections(holder.node.peerId).length > 0), 'every agent to connect to the holder')
    const digest = await holder.context.store.put(randomBytes(256 * 1024))

    // The first receivers use up the holder's upload budget for the blob.
    const [seeker, ...others] = receivers as [Agent, ...Agent[]]
    for (const receiver of others) {
      await receiver.context.fetcher.fetch(digest, { preferredPeers: [holder.node.peerId] })
    }

    // The receivers are excluded, so that only the busy holder is asked.
    const intervalMs = 1_000
    const sources = new SourceFinder(seeker.node, seeker.context.penalties, { busyLookupIntervalMs: intervalMs })
    const exclude = new Set(others.map(receiver => receiver.peerId))
    try {
      const first = await sources.find(digest, exclude)
      const second = await sources.find(digest, exclude)
      expect(first.busy.map(peer => peer.toString())).to.deep.equal([holder.peerId])
      expect(second.busy.map(peer => peer.toString())).to.deep.equal([holder.peerId])
      expect(sources.stats).to.include({ providerLookups: 0, skippedLookups: 2 })

      await new Promise(resolve => setTimeout(resolve, intervalMs))
      await sources.find(digest, exclude)
      await sources.find(digest, exclude)
      expect(sources.stats).to.include({ providerLookups: 1, skippedLookups: 3 })
    } finally {
      sources.stop()
    }
  })

  it('find waits longer before a rollout lookup', async () => {
    // The DHT is on, and no connected peer has the blob.
    const holder = await startLocalAgent()
    const seeker = await startLocalAgent({ bootstrap: [addressOf(holder)] })
    agents.push(holder, seeker)
    await waitUntil(() => seeker.node.getConnections(holder.node.peerId).length > 0, 'the seeker to connect')
    const digest = await holder.context.store.put(randomBytes(1024))
    const exclude = new Set([holder.peerId])

    // A finder that looks up at once by default still waits when the caller passes a wait no test reaches.
    const sources = new SourceFinder(seeker.node, seeker.context.penalties, { firstLookupDelayMaxMs: 0 })
    try {
      const waiting = await sources.find(digest, exclude, { firstLookupDelayMaxMs: 600_000 })
      const statsAfterWait = { ...sources.stats }
      // A caller that joins with no wait of its own shortens the wait already started.
      await sources.find(digest, exclude, { firstLookupDelayMaxMs: 0, signal: AbortSignal.timeout(20_000) })

      expect(waiting.lookupDeferred).to.equal(true)
      expect(statsAfterWait).to.include({ providerLookups: 0, deferredLookups: 1 })
      expect(sources.stats).to.include({ providerLookups: 1, deferredLookups: 1 })
    } finally {
      sources.stop()
    }
  })

  it('joined fetch shortens the lookup wait', async () => {
    // The DHT is on, and no peer has the blob, so every round ends in the wait before a lookup.
    const holder = await startLocalAgent()
    const seeker = await startLocalAgent({ bootstrap: [addressOf(holder)] })
    agents.push(holder, seeker)
    await waitUntil(() => seeker.node.getConnections(holder.node.peerId).length > 0, 'the seeker to connect')
    const digest = digestOf(randomBytes(64))
    const stats = seeker.context.fetcher.sources.stats
    const stop = new AbortController()

    // A subscription-like fetch with a wait no test reaches, then a pull with the default wait.
    const rollout = seeker.context.fetcher.fetch(digest, { firstLookupDelayMaxMs: 600_000, waitForSourcesMs: 60_000, signal: stop.signal }).catch(() => {})
    await waitUntil(() => stats.deferredLookups > 0, 'the first deferred lookup')
    const lookupsBefore = stats.providerLookups
    const pull = seeker.context.fetcher.fetch(digest, { waitForSourcesMs: 60_000, signal: stop.signal }).catch(() => {})
    try {
      await waitUntil(() => stats.providerLookups > lookupsBefore, 'a DHT lookup after the pull joined', 15_000)
    } finally {
      stop.abort()
      await Promise.all([rollout, pull])
    }

    expect(lookupsBefore).to.equal(0)
  })

  it('asks again a peer that lacked the blob', async () => {
    // A line without the DHT: the holder, a middle agent, and the fetcher.
    const holder = await startLocalAgent({ dht: false })
    const middle = await startLocalAgent({ dht: false, bootstrap: [addressOf(holder)] })
    const fetcher = await startLocalAgent({ dht: false, bootstrap: [addressOf(middle)] })
    agents.push(holder, middle, fetcher)
    await waitUntil(() => fetcher.node.getPeers().length > 0 && middle.node.getPeers().length > 1, 'the line to connect')
    const digest = await holder.context.store.put(randomBytes(64 * 1024))

    // The middle agent lacks the blob when first asked, and fetches it a moment later.
    const fetching = fetcher.context.fetcher.fetch(digest, { preferredPeers: [middle.node.peerId], waitForSourcesMs: 20_000 })
    await new Promise(resolve => setTimeout(resolve, 500))
    await middle.context.fetcher.fetch(digest, { preferredPeers: [holder.node.peerId] })

    // Without a second probe of the middle agent, the fetch fails when the wait ends.
    await fetching
    expect(await fetcher.context.store.has(digest)).to.equal(true)
  })
})
