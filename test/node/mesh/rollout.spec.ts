import { expect } from 'chai'
import { publishImage } from '../../../node/agent/publish.js'
import { MAX_UPLOADS_PER_BLOB } from '../../../node/net/constants.js'
import { fixture } from '../../utils/paths.js'
import { addressOf, startLocalAgent, stopLocalAgents, waitUntil } from '../../utils/in-process.js'
import type { Agent } from '../../../node/agent/agent.js'

const AGENT_COUNT = 20

describe('mesh rollout to subscribed agents', function () {
  this.timeout(180_000)
  const agents: Agent[] = []

  after(async () => {
    await stopLocalAgents(agents.splice(0))
  })

  async function holdCount (digest: string): Promise<number> {
    let count = 0
    for (const agent of agents) {
      const ref = (await agent.context.layout.refs()).get('demo/httpd:stable')
      if (ref?.digest === digest) {
        count++
      }
    }
    return count
  }

  it('brings every new version to twenty subscribed agents', async () => {
    // A binary tree of bootstrap links; the connectivity keeper adds more.
    for (let i = 0; i < AGENT_COUNT; i++) {
      const parent = i === 0 ? undefined : agents[Math.floor((i - 1) / 2)]
      const agent = await startLocalAgent({ bootstrap: parent == null ? [] : [addressOf(parent)] })
      agents.push(agent)
    }
    const publisher = agents[0] as Agent
    await waitUntil(() => agents.every(agent => agent.node.getPeers().length > 0), 'every agent to connect')
    for (const agent of agents.slice(1)) {
      await agent.context.subscriptions.subscribe('demo/httpd:stable')
    }

    const v1 = await publishImage(publisher.context, 'demo/httpd:stable', `${fixture('micro-httpd')}:v1`)
    await waitUntil(async () => await holdCount(v1.digest) === AGENT_COUNT, 'all agents to hold v1', 60_000)
    const sentAfterV1 = publisher.context.blobServer.stats.sentBytes

    // v2 is busybox, whose 1 MB layer is over the small-blob size, so the
    // upload limit for layers applies to it.
    const v2 = await publishImage(publisher.context, 'demo/httpd:stable', `${fixture('busybox')}:1.35-amd64`)
    await waitUntil(async () => await holdCount(v2.digest) === AGENT_COUNT, 'all agents to hold v2', 60_000)

    for (const agent of agents) {
      expect(await agent.context.store.has(v2.digest as `sha256:${string}`), agent.peerId).to.equal(true)
    }
    // v2 shares no blob with v1, so it was uploaded afresh. The publisher
    // sent at most MAX_UPLOADS_PER_BLOB copies of the layer, and the other
    // subscribers got it from agents that already had it. The manifest and
    // config may go to every subscriber.
    const smallBytes = 349 + 408
    const layerBytes = 1_084_099
    const sentForV2 = publisher.context.blobServer.stats.sentBytes - sentAfterV1
    expect(sentForV2).to.be.at.most(MAX_UPLOADS_PER_BLOB * layerBytes + (AGENT_COUNT - 1) * smallBytes)
    expect(sentForV2).to.be.at.least(layerBytes)
  })
})
