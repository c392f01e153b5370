import { createHash, randomBytes } from 'node:crypto'
import { expect } from 'chai'
import { SimNetwork } from '../../../simulations/network/network.js'
import { NodeTraffic } from '../../../simulations/network/traffic.js'
import { sendToSink, SINK_PROTOCOL, startNodes, waitFor, type SinkResult, type TestNode } from './nodes.js'
import type { LinkParams } from '../../../simulations/scenario/types.js'
import type { Stream } from '@libp2p/interface'

function sha256 (bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex')
}

describe('fault layer', function () {
  this.timeout(30_000)
  let nodes: TestNode[] = []
  let received: SinkResult[] = []

  async function setUp (link: LinkParams, count = 2): Promise<SimNetwork> {
    const network = new SimNetwork(link, [], 1)
    received = []
    nodes = await startNodes(network, count, received)
    return network
  }

  afterEach(async () => {
    await Promise.all(nodes.map(async node => { await node.stop() }))
    nodes = []
  })

  it('adds latency in each direction', async () => {
    await setUp({ latencyMs: 60, jitterMs: 0, bandwidthKbps: 0 })
    const [a, b] = nodes as [TestNode, TestNode]
    await a.dial(b.getMultiaddrs())

    // One ping is one round trip: 60 ms out and 60 ms back.
    const rttMs = await a.services.ping.ping(b.getMultiaddrs())

    expect(rttMs).to.be.at.least(115)
    expect(rttMs).to.be.below(400)
  })

  it('passes ideal links almost undelayed', async () => {
    await setUp({ latencyMs: 0, jitterMs: 0, bandwidthKbps: 0 })
    const [a, b] = nodes as [TestNode, TestNode]
    await a.dial(b.getMultiaddrs())

    const rttMs = await a.services.ping.ping(b.getMultiaddrs())

    expect(rttMs).to.be.below(50)
  })

  it('limits throughput to the bandwidth', async () => {
    // 4,000 kbit/s is 500,000 bytes per second, so 250 kB take at least 0.5 s.
    await setUp({ latencyMs: 0, jitterMs: 0, bandwidthKbps: 4000 })
    const [a, b] = nodes as [TestNode, TestNode]
    await a.dial(b.getMultiaddrs())
    const payload = randomBytes(250_000)

    const startedMs = performance.now()
    await sendToSink(a, b, payload)
    await waitFor(() => received.length === 1, 10_000, 'the sink to read the payload')
    const elapsedMs = (received[0] as SinkResult).finishedAtMs - startedMs

    expect(elapsedMs).to.be.at.least(450)
    expect(elapsedMs).to.be.below(3_000)
    expect(sha256((received[0] as SinkResult).bytes)).to.equal(sha256(payload))
  })

  it('keeps byte order under jitter', async () => {
    await setUp({ latencyMs: 5, jitterMs: 5, bandwidthKbps: 0 })
    const [a, b] = nodes as [TestNode, TestNode]
    const payload = randomBytes(200 * 1024)

    await sendToSink(a, b, payload, 1024)
    await waitFor(() => received.length === 1, 10_000, 'the sink to read the payload')

    expect((received[0] as SinkResult).bytes.byteLength).to.equal(payload.byteLength)
    expect(sha256((received[0] as SinkResult).bytes)).to.equal(sha256(payload))
  })

  it('cut resets and refuses until healed', async () => {
    const network = await setUp({ latencyMs: 0, jitterMs: 0, bandwidthKbps: 0 })
    const [a, b] = nodes as [TestNode, TestNode]
    await a.dial(b.getMultiaddrs())
    expect(a.getConnections(b.peerId)).to.have.length(1)

    const reset = network.cut([0], [1], false)
    await waitFor(() => a.getConnections(b.peerId).length === 0 && b.getConnections(a.peerId).length === 0, 5_000, 'both ends to drop the connection')

    expect(reset).to.equal(2)
    await expectDialToFail(a, b)
    await expectDialToFail(b, a)

    network.heal()
    await a.dial(b.getMultiaddrs())
    expect(a.getConnections(b.peerId)).to.have.length(1)
  })

  it('one-way cut blocks dials one way', async () => {
    const network = await setUp({ latencyMs: 0, jitterMs: 0, bandwidthKbps: 0 })
    const [a, b] = nodes as [TestNode, TestNode]
    network.cut([0], [1], true)

    await expectDialToFail(a, b)
    await b.dial(a.getMultiaddrs())
    // Traffic on a connection the other side opened flows both ways.
    await sendToSink(a, b, randomBytes(1000))
    await waitFor(() => received.length === 1, 5_000, 'the sink to read the payload')

    expect(network.allows(0, 1)).to.equal(false)
    expect(network.allows(1, 0)).to.equal(true)
  })

  it('down node loses its connections', async () => {
    const network = await setUp({ latencyMs: 0, jitterMs: 0, bandwidthKbps: 0 }, 3)
    const [a, b, c] = nodes as [TestNode, TestNode, TestNode]
    await b.dial(a.getMultiaddrs())
    await c.dial(a.getMultiaddrs())
    await c.dial(b.getMultiaddrs())

    network.setDown(0, true)
    await waitFor(() => a.getConnections().length === 0, 5_000, 'node 0 to lose its connections')

    expect(c.getConnections(b.peerId)).to.have.length(1)
    await expectDialToFail(c, a)
  })

  it('new link rule applies at once', async () => {
    const network = await setUp({ latencyMs: 0, jitterMs: 0, bandwidthKbps: 0 })
    const [a, b] = nodes as [TestNode, TestNode]
    await a.dial(b.getMultiaddrs())
    const beforeMs = await a.services.ping.ping(b.getMultiaddrs())

    network.addRule({ from: { kind: 'list', indices: [0] }, to: { kind: 'all' }, params: { latencyMs: 80 } })
    const afterMs = await a.services.ping.ping(b.getMultiaddrs())

    expect(beforeMs).to.be.below(50)
    expect(afterMs).to.be.at.least(155)
    expect(network.params(1, 0).latencyMs).to.equal(80)
  })

  it('counts wire and protocol bytes', async () => {
    const network = await setUp({ latencyMs: 1, jitterMs: 0, bandwidthKbps: 0 })
    const [a, b] = nodes as [TestNode, TestNode]
    const trafficA = new NodeTraffic()
    const trafficB = new NodeTraffic()
    trafficA.attach(a)
    trafficB.attach(b)
    const payload = randomBytes(100_000)

    await sendToSink(a, b, payload)
    await waitFor(() => received.length === 1, 5_000, 'the sink to read the payload')
    // The receiver counts negotiation bytes under the protocol once the stream learns it.
    await waitFor(() => (trafficB.byProtocol.get(SINK_PROTOCOL)?.receivedBytes ?? 0) === trafficA.byProtocol.get(SINK_PROTOCOL)?.sentBytes, 15_000, 'the receiver to count what the sender sent')

    const sent = trafficA.byProtocol.get(SINK_PROTOCOL)
    const got = trafficB.byProtocol.get(SINK_PROTOCOL)
    expect(sent?.streams).to.equal(1)
    expect(got?.streams).to.equal(1)
    // Negotiation bytes count under the agreed protocol, so both ends see slightly more than the payload.
    expect(sent?.sentBytes).to.be.within(payload.byteLength, payload.byteLength + 200)
    expect(got?.receivedBytes).to.equal(sent?.sentBytes)
    expect(trafficA.connections.opened).to.equal(1)
    // Noise and yamux add overhead on the wire.
    expect(network.wireCounters(0).sentBytes).to.be.greaterThan(payload.byteLength)
    expect(network.wireCounters(1).receivedBytes).to.equal(network.wireCounters(0).sentBytes)
  })
  it('counts bytes buffered before attach', async () => {
    // Reproduces libp2p's window between creating a muxer and announcing the
    // connection: a stream contains received bytes that nothing has read yet.
    await setUp({ latencyMs: 0, jitterMs: 0, bandwidthKbps: 0 })
    const [a, b] = nodes as [TestNode, TestNode]
    const lateProtocol = '/kilomesh-test/late-reader/1.0.0'
    let inbound: Stream | undefined
    let startReading = (): void => {}
    const reading = new Promise<void>(resolve => { startReading = resolve })
    let readBytes = 0
    await b.handle(lateProtocol, async (stream: Stream) => {
      inbound = stream
      await reading
      for await (const chunk of stream) {
        readBytes += chunk.byteLength
      }
    })
    const payload = randomBytes(20_000)

    const outbound = await a.dialProtocol(b.getMultiaddrs(), lateProtocol)
    outbound.send(payload)
    await waitFor(() => (inbound?.readBufferLength ?? 0) === payload.byteLength, 5_000, 'the payload to wait in the read buffer')
    const trafficB = new NodeTraffic()
    trafficB.attach(b)
    startReading()
    await outbound.close()
    await waitFor(() => readBytes === payload.byteLength, 5_000, 'the handler to read the payload')

    expect(trafficB.byProtocol.get(lateProtocol)?.receivedBytes).to.equal(payload.byteLength)
  })
})

async function expectDialToFail (from: TestNode, to: TestNode): Promise<void> {
  try {
    await from.dial(to.getMultiaddrs(), { signal: AbortSignal.timeout(5_000) })
  } catch {
    return
  }
  expect.fail('the dial succeeded across a cut')
}
