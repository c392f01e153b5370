import { expect } from 'chai'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { encode as lengthPrefixed } from 'it-length-prefixed'
import { pbStream } from '@libp2p/utils'
import { createKilomeshNode, type KilomeshLibp2p } from '../../../node/net/libp2p.js'
import { openWithRequest } from '../../../node/net/optimistic-stream.js'
import { growReceiveWindow, MAX_RECEIVE_WINDOW_BYTES } from '../../../node/net/receive-window.js'
import { BlobRequest } from '../../../protocol/messages/blob.js'
import type { Stream } from '@libp2p/interface'

const PROTOCOL = '/kilomesh-test/window/1.0.0'
const YAMUX_INITIAL_WINDOW_BYTES = 256 * 1024

async function startNode (): Promise<KilomeshLibp2p> {
  return createKilomeshNode({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], dht: false })
}

/** Returns the send credit @libp2p/yamux 8 keeps on a stream. The spec fails when a libp2p update renames it. */
function sendCreditOf (stream: Stream): number {
  const credit = (stream as unknown as { sendWindowCapacity?: unknown }).sendWindowCapacity
  expect(credit, 'yamux stream field sendWindowCapacity').to.be.a('number')
  return credit as number
}

/** Returns the receive window @libp2p/yamux 8 keeps on a stream. */
function receiveWindowOf (stream: Stream): number {
  const window = (stream as unknown as { recvWindow?: unknown }).recvWindow
  expect(window, 'yamux stream field recvWindow').to.be.a('number')
  return window as number
}

describe('net receive window', function () {
  this.timeout(30_000)
  let server: KilomeshLibp2p
  let client: KilomeshLibp2p
  let inbound: Array<{ stream: Stream, digest: string }>

  before(async () => {
    server = await startNode()
    client = await startNode()
    inbound = []
    await server.handle(PROTOCOL, async (stream) => {
      // The request is read before the credit is looked at, so the window
      // update that opened the stream has been applied.
      const request = await pbStream(stream).read(BlobRequest)
      inbound.push({ stream, digest: request.digest })
    })
    await client.dial(server.getMultiaddrs())
  })

  after(async () => {
    await client?.stop()
    await server?.stop()
  })

  async function open (expectedResponseBytes: number | undefined, digest: string): Promise<Stream> {
    const request = lengthPrefixed.single(BlobRequest.encode({ digest, offset: 0n, headerOnly: false }))
    const { stream } = await openWithRequest(client, server.peerId, PROTOCOL, request, { maxOutboundStreams: 8, maxDataLength: 1024, expectedResponseBytes })
    return stream
  }

  async function served (digest: string): Promise<Stream> {
    const started = Date.now()
    while (!inbound.some(entry => entry.digest === digest) && Date.now() - started < 5_000) {
      await new Promise(resolve => setTimeout(resolve, 10))
    }
    const entry = inbound.find(candidate => candidate.digest === digest)
    expect(entry, `the server read the request ${digest}`).to.not.equal(undefined)
    return (entry as { stream: Stream }).stream
  }

  it('openWithRequest grants the expected bytes', async () => {
    const stream = await open(MAX_RECEIVE_WINDOW_BYTES, 'granted')

    // Without the grant, the client's window grows only with frames it
    // received, here at most the two multistream-select replies: 1 MiB.
    expect(sendCreditOf(await served('granted'))).to.be.at.least(MAX_RECEIVE_WINDOW_BYTES)
    stream.abort(new Error('test done'))
  })

  it('openWithRequest caps the granted window', async () => {
    const stream = await open(64 * 1024 * 1024, 'capped')

    // Yamux may double a young stream's window. Uncapped, this one would
    // reach yamux's limit of 16 MiB.
    expect(receiveWindowOf(stream)).to.be.within(MAX_RECEIVE_WINDOW_BYTES, 2 * MAX_RECEIVE_WINDOW_BYTES)
    stream.abort(new Error('test done'))
  })

  it('openWithRequest keeps a small window', async () => {
    const stream = await open(100 * 1024, 'small')

    expect(receiveWindowOf(stream)).to.equal(YAMUX_INITIAL_WINDOW_BYTES)
    stream.abort(new Error('test done'))
  })

  it('growReceiveWindow skips non-yamux streams', () => {
    const stream = { id: 'not-yamux' } as unknown as Stream

    expect(growReceiveWindow(stream, 1024 * 1024)).to.equal(false)
  })
})
