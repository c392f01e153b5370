import { expect } from 'chai'
import { connectedPeerNames, connectedPeers } from '../../../node/net/peers.js'
import { addressOf, startLocalAgent, stopLocalAgents, waitUntil } from '../../utils/in-process.js'
import type { Agent } from '../../../node/agent/agent.js'

describe('net/peers', () => {
  let agents: Agent[] = []

  afterEach(async () => {
    await stopLocalAgents(agents)
    agents = []
  })

  it('connectedPeerNames and connectedPeers list the same peers as getPeers', async () => {
    const hub = await startLocalAgent({ dht: false })
    agents.push(hub)
    for (let i = 0; i < 2; i++) {
      agents.push(await startLocalAgent({ dht: false, bootstrap: [addressOf(hub)] }))
    }
    await waitUntil(() => hub.node.getPeers().length === 2, 'both agents to connect to the hub')

    const expected = hub.node.getPeers().map(peer => peer.toString()).sort()
    expect([...connectedPeerNames(hub.node)].sort()).to.deep.equal(expected)

    const peers = connectedPeers(hub.node)
    expect([...peers.keys()].sort()).to.deep.equal(expected)
    for (const [name, peer] of peers) {
      expect(peer.toString()).to.equal(name)
    }
  })

  it('connectedPeerNames of an agent with no connections is empty', async () => {
    const lone = await startLocalAgent({ dht: false })
    agents.push(lone)

    expect(connectedPeerNames(lone.node).size).to.equal(0)
    expect(connectedPeers(lone.node).size).to.equal(0)
  })
})
