import { expect } from 'chai'
import { createServer, connect, type Server, type Socket } from 'node:net'
import { once } from 'node:events'
import { coalesceSocketWrites, coalescesWrites } from '../../../node/net/coalesce-writes.js'
import { addressOf, startLocalAgent, stopLocalAgents, waitUntil } from '../../utils/in-process.js'
import type { Agent } from '../../../node/agent/agent.js'
import type { Connection } from '@libp2p/interface'

/** A stand-in for libp2p's Connection class: the wrapper only looks at `maConn.socket`. */
function connectionWith (socket: unknown): Connection {
  return { id: 'test', remoteAddr: undefined, maConn: { socket } } as unknown as Connection
}

describe('net/coalesce-writes', () => {
  let server: Server | undefined
  let client: Socket | undefined
  let agents: Agent[] = []

  afterEach(async () => {
    client?.destroy()
    server?.close()
    await stopLocalAgents(agents)
    agents = []
  })

  /** Opens a loopback TCP connection; resolves with the client socket and everything the server receives. */
  async function socketPair (): Promise<{ socket: Socket, received: () => Buffer }> {
    const chunks: Buffer[] = []
    server = createServer(incoming => { incoming.on('data', chunk => chunks.push(chunk)) })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const address = server.address()
    if (address == null || typeof address === 'string') {
      throw new Error('the test server has no TCP address')
    }
    client = connect(address.port, '127.0.0.1')
    await once(client, 'connect')
    return { socket: client, received: () => Buffer.concat(chunks) }
  }

  it('coalesceSocketWrites holds the writes of one tick and sends them when it ends', async () => {
    const { socket, received } = await socketPair()
    expect(coalesceSocketWrites(connectionWith(socket))).to.equal(true)

    const parts = Array.from({ length: 20 }, (_, i) => Buffer.from(`part ${i};`))
    for (const part of parts) {
      socket.write(part)
    }
    // Still corked: nothing has gone to the kernel yet.
    expect(socket.writableCorked).to.equal(1)
    expect(socket.writableLength).to.equal(Buffer.concat(parts).byteLength)

    await new Promise(resolve => process.nextTick(resolve))
    expect(socket.writableCorked).to.equal(0)

    await waitUntil(() => received().byteLength === Buffer.concat(parts).byteLength, 'the server to receive every part', 5_000)
    expect(received().toString()).to.equal(Buffer.concat(parts).toString())
  })

  it('coalesceSocketWrites wraps a socket once however often it is called', async () => {
    const { socket, received } = await socketPair()
    coalesceSocketWrites(connectionWith(socket))
    coalesceSocketWrites(connectionWith(socket))

    // A second wrapper would cork the socket twice per tick.
    socket.write('once')
    expect(socket.writableCorked).to.equal(1)
    await waitUntil(() => received().toString() === 'once', 'the server to receive the write', 5_000)
  })

  it('coalesceSocketWrites leaves a connection without a TCP socket alone', () => {
    expect(coalesceSocketWrites(connectionWith(undefined))).to.equal(false)
    expect(coalesceSocketWrites(connectionWith({ write: () => true }))).to.equal(false)
  })

  it('agents over TCP coalesce the writes of both ends of their connection', async () => {
    // This fails when a libp2p update moves the socket out of reach, which
    // would silently bring back one system call per noise frame.
    const first = await startLocalAgent({ dht: false })
    agents.push(first)
    const second = await startLocalAgent({ dht: false, bootstrap: [addressOf(first)] })
    agents.push(second)
    await waitUntil(() => first.node.getConnections().length > 0 && second.node.getConnections().length > 0, 'the agents to connect')

    for (const agent of agents) {
      const connection = agent.node.getConnections()[0]
      expect(connection).to.not.equal(undefined)
      expect(coalescesWrites(connection as Connection)).to.equal(true)
    }
  })
})
