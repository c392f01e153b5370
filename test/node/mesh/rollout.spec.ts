import { expect } from 'chai'
import { publishImage } from '../../../node/agent/publish.js'
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

    const v2 = await publishImage(publisher.context, 'demo/httpd:stable', `${fixture('micro-httpd')}:v2`)
    await waitUntil(async () => await holdCount(v2.digest) === AGENT_COUNT, 'all agents to hold v2', 60_000)

    for (const agent of agents) {
      expect(await agent.context.store.has(v2.digest as `sha256:${string}`), agent.peerId).to.equal(true)
    }
    // v2 shares no blob with v1, so it was uploaded afresh; the publisher
    // sent at most four copies of it and the rest came from other agents.
    const v2Bytes = 346 + 438 + 6074
    const sentForV2 = publisher.context.blobServer.stats.sentBytes - sentAfterV1
    expect(sentForV2).to.be.at.most(4 * v2Bytes)
  })
})
