import { randomBytes } from 'node:crypto'
import { expect } from 'chai'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { memory } from '@libp2p/memory'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { createKilomeshNode, type KilomeshLibp2p } from '../../../node/net/libp2p.js'
import { SimNetwork } from '../../../simulations/network/network.js'
import { waitUntil } from '../../utils/in-process.js'
import type { LinkParams } from '../../../simulations/scenario/types.js'
import type { Connection, Stream } from '@libp2p/interface'

const SINK_PROTOCOL = '/kilomesh-test/liveness-sink/1.0.0'

/**
 * Checks far more often than an agent does, so a test runs several checks
 * in a few seconds. The simulated link delivers data in pieces of up to
 * 16 KiB once each is serialised, so the interval must exceed one piece's
 * time on the link.
 */
const LIVENESS = { intervalMs: 1_000, pingTimeoutMs: 500 }

/** Size of each write to the sink: 80 ms on the slow link. */
const CHUNK_BYTES = 4 * 1024

let run = 0

describe('net connection liveness', function () {
  this.timeout(60_000)
  let nodes: KilomeshLibp2p[] = []
  let receivedBytes = 0

  /** Starts two nodes on a simulated link, with a sink protocol on the second. */
  async function setUp (link: LinkParams): Promise<{ network: SimNetwork, a: KilomeshLibp2p, b: KilomeshLibp2p }> {
    run++
    const network = new SimNetwork(link, [], 1)
    for (let index = 0; index < 2; index++) {
      const privateKey = await generateKeyPair('Ed25519')
      network.register(index, peerIdFromPrivateKey(privateKey).toString())
      nodes.push(await createKilomeshNode({
        privateKey,
        listen: [`/memory/liveness-${process.pid}-${run}-${index}`],
        transports: [memory()],
        connectionGater: network.gaterFor(index),
        connectionProtector: network.protectorFor(index),
        dht: false,
        liveness: LIVENESS
      }))
    }
    const [a, b] = nodes as [KilomeshLibp2p, KilomeshLibp2p]
    receivedBytes = 0
    await b.handle(SINK_PROTOCOL, async (stream: Stream) => {
      for await (const chunk of stream) {
        receivedBytes += chunk.byteLength
      }
      await stream.close()
    })
    return { network, a, b }
  }

  afterEach(async () => {
    await Promise.all(nodes.map(async node => { await node.stop() }))
    nodes = []
  })

  it('keeps a connection busy with a slow transfer', async () => {
    // 50 kB/s: the link queues about 1.3 s of data ahead of every ping from a.
    const { a, b } = await setUp({ latencyMs: 0, jitterMs: 0, bandwidthKbps: 400 })
    const connection = await a.dial(b.getMultiaddrs())
    const aborted: Connection[] = []
    a.addEventListener('connection:close', event => { aborted.push(event.detail) })
    const payload = randomBytes(200_000)

    const stream = await a.dialProtocol(b.peerId, SINK_PROTOCOL)
    for (let offset = 0; offset < payload.byteLength; offset += CHUNK_BYTES) {
      if (!stream.send(payload.subarray(offset, offset + CHUNK_BYTES))) {
        await stream.onDrain()
      }
    }
    await stream.close()
    await waitUntil(() => receivedBytes === payload.byteLength, 'the sink to receive the payload', 30_000)

    expect(aborted).to.deep.equal([])
    expect(connection.status).to.equal('open')
  })

  it('aborts a connection that receives nothing', async () => {
    const { network, a, b } = await setUp({ latencyMs: 0, jitterMs: 0, bandwidthKbps: 0 })
    const connection = await a.dial(b.getMultiaddrs())
    await waitUntil(() => connection.rtt != null, 'a first ping to succeed', 5_000)

    // Bytes still arrive after a minute, so for the test's span the link is silent both ways.
    network.addRule({ from: { kind: 'all' }, to: { kind: 'all' }, params: { latencyMs: 60_000 } })
    await waitUntil(() => connection.status !== 'open', 'the silent connection to be aborted', 5_000)

    expect(a.getConnections(b.peerId)).to.have.length(0)
  })
})
