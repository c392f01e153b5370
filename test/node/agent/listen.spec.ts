import { createServer, type AddressInfo } from 'node:net'
import { expect } from 'chai'
import { splitListenAddresses } from '../../../node/agent/listen.js'
import { InvalidConfigError } from '../../../node/config/errors.js'
import { startLocalAgent, stopLocalAgents } from '../../utils/in-process.js'
import type { Agent } from '../../../node/agent/agent.js'

const PEER = '12D3KooWKcHgmgyTuWsMPpnBAUqcrv3ib6MW5KkUGD5sywm2Jb8A'
const OTHER = '12D3KooWBrSb9Vqcmnoxi2dvjM46iTYsjURrgo9zvopE9YeMh3H8'
const originOf = (index: number): string => `listen address ${index + 1}`

describe('splitListenAddresses', () => {
  it('keeps TCP forms', () => {
    const addresses = ['/ip4/0.0.0.0/tcp/4001', '/ip6/::/tcp/0', '/dns4/localhost/tcp/0', '/ip6zone/lo/ip6/::1/tcp/0', `/ip4/127.0.0.1/tcp/0/p2p/${PEER}`, '/unix/%2Ftmp%2Fagent.sock']

    const result = splitListenAddresses(addresses, PEER, originOf)

    expect(result.usable).to.deep.equal(addresses)
    expect(result.skipped).to.deep.equal([])
  })

  it('leaves out other transports', () => {
    const result = splitListenAddresses(['/ip4/127.0.0.1/tcp/0', '/ip4/127.0.0.1/udp/0/quic-v1'], PEER, originOf)

    expect(result.usable).to.deep.equal(['/ip4/127.0.0.1/tcp/0'])
    expect(result.skipped).to.have.length(1)
    expect(result.skipped[0]).to.contain('listen address 2 "/ip4/127.0.0.1/udp/0/quic-v1" is not a TCP address')
  })

  it('leaves out a zone before IPv4', () => {
    const result = splitListenAddresses(['/ip4/127.0.0.1/tcp/0', '/ip6zone/lo/ip4/127.0.0.1/tcp/0'], PEER, originOf)

    expect(result.usable).to.deep.equal(['/ip4/127.0.0.1/tcp/0'])
    expect(result.skipped).to.have.length(1)
  })

  it('rejects only other transports', () => {
    expect(() => splitListenAddresses(['/ip4/127.0.0.1/tcp/0/ws'], PEER, originOf)).to.throw(InvalidConfigError, /listen address 1 "\/ip4\/127.0.0.1\/tcp\/0\/ws" is not a TCP address/)
  })

  it('rejects another peer ID', () => {
    expect(() => splitListenAddresses([`/ip4/127.0.0.1/tcp/0/p2p/${OTHER}`], PEER, originOf)).to.throw(InvalidConfigError, new RegExp(`names peer ${OTHER}, but this agent is ${PEER}: drop the /p2p/ part`))
  })
})

describe('agent listen addresses', function () {
  this.timeout(60_000)
  const agents: Agent[] = []

  afterEach(async () => {
    await stopLocalAgents(agents.splice(0))
  })

  it('start names a port that did not bind', async () => {
    const holder = createServer()
    await new Promise<void>(resolve => holder.listen(0, '127.0.0.1', resolve))
    const port = (holder.address() as AddressInfo).port
    try {
      const agent = await startLocalAgent({ listen: [`/ip4/127.0.0.1/tcp/${port}`, '/ip4/127.0.0.1/tcp/0'] })
      agents.push(agent)

      expect(agent.multiaddrs()).to.have.length(1)
      expect(agent.skippedListen).to.deep.equal([`listen address /ip4/127.0.0.1/tcp/${port} did not bind: the port is in use, maybe by another agent`])
    } finally {
      holder.close()
    }
  })

  it('start skips a WebSocket address', async () => {
    const agent = await startLocalAgent({ listen: ['/ip4/127.0.0.1/tcp/0', '/ip4/127.0.0.1/tcp/0/ws'] })
    agents.push(agent)

    expect(agent.multiaddrs()).to.have.length(1)
    expect(agent.skippedListen).to.have.length(1)
    expect(agent.skippedListen[0]).to.contain('listen address 2 "/ip4/127.0.0.1/tcp/0/ws" is not a TCP address')
  })
})
