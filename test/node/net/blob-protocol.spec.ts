import { expect } from 'chai'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { UnsupportedProtocolError } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { BLOB_PROTOCOL } from '../../../protocol/constants.js'
import { digestOf, type OciDigest } from '../../../protocol/digest.js'
import { BlobResponse } from '../../../protocol/messages/blob.js'
import { requestBlob, type BlobReply } from '../../../node/net/blob-client.js'
import { BlobServer } from '../../../node/net/blob-server.js'
import { BLOB_CHUNK_BYTES } from '../../../node/net/constants.js'
import { createKilomeshNode, type KilomeshLibp2p } from '../../../node/net/libp2p.js'
import { BlobStore } from '../../../node/store/blob-store.js'
import { expectRejection } from '../../utils/assert.js'
import type { PeerId } from '@libp2p/interface'

async function startNode (): Promise<KilomeshLibp2p> {
  return createKilomeshNode({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], dht: false })
}

async function readBody (reply: BlobReply): Promise<Buffer> {
  const chunks: Uint8Array[] = []
  let receivedBytes = 0
  for await (const chunk of reply.body) {
    chunks.push(chunk)
    receivedBytes += chunk.byteLength
    if (receivedBytes >= reply.sizeBytes) {
      break
    }
  }
  await reply.stream.close()
  return Buffer.concat(chunks)
}

describe('net blob protocol', function () {
  this.timeout(30_000)
  let root: string
  let store: BlobStore
  let server: KilomeshLibp2p
  let client: KilomeshLibp2p
  let blobServer: BlobServer
  let serverPeer: PeerId
  // Several chunks and a partial last one, so the read-ahead and the header frame are both exercised.
  const bytes = randomBytes(BLOB_CHUNK_BYTES * 3 + 1234)
  let digest: OciDigest

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'km-blob-protocol-'))
    store = new BlobStore(root)
    await store.init()
    digest = await store.put(bytes)

    server = await startNode()
    client = await startNode()
    blobServer = new BlobServer(server, store)
    await blobServer.start()
    const address = server.getMultiaddrs()[0]
    if (address == null) {
      throw new Error('the server node has no address')
    }
    serverPeer = (await client.dial(multiaddr(address.toString()))).remotePeer
  })

  after(async () => {
    await blobServer?.stop()
    await client?.stop()
    await server?.stop()
    await rm(root, { recursive: true, force: true })
  })

  it('request returns the whole blob', async () => {
    const reply = await requestBlob(client, serverPeer, digest, 0)

    expect(reply.status).to.equal(BlobResponse.Status.OK)
    expect(reply.sizeBytes).to.equal(bytes.byteLength)
    expect(Buffer.compare(await readBody(reply), bytes)).to.equal(0)
  })

  it('request returns the rest from an offset', async () => {
    const offset = BLOB_CHUNK_BYTES + 7
    const reply = await requestBlob(client, serverPeer, digest, offset)

    expect(reply.sizeBytes).to.equal(bytes.byteLength)
    const body = await readBody({ ...reply, sizeBytes: reply.sizeBytes - offset })
    expect(Buffer.compare(body, bytes.subarray(offset))).to.equal(0)
  })

  it('request from the end returns no body', async () => {
    const reply = await requestBlob(client, serverPeer, digest, bytes.byteLength)

    expect(reply.status).to.equal(BlobResponse.Status.OK)
    const chunks: Uint8Array[] = []
    for await (const chunk of reply.body) {
      chunks.push(chunk)
    }
    expect(Buffer.concat(chunks).byteLength).to.equal(0)
  })

  it('header-only request returns the size', async () => {
    const reply = await requestBlob(client, serverPeer, digest, 0, { headerOnly: true })

    expect(reply.status).to.equal(BlobResponse.Status.OK)
    expect(reply.sizeBytes).to.equal(bytes.byteLength)
  })

  it('request for a missing blob returns NOT_FOUND', async () => {
    const reply = await requestBlob(client, serverPeer, digestOf(randomBytes(8)), 0)

    expect(reply.status).to.equal(BlobResponse.Status.NOT_FOUND)
  })

  it('offset past the end returns BAD_REQUEST', async () => {
    const reply = await requestBlob(client, serverPeer, digest, bytes.byteLength + 1)

    expect(reply.status).to.equal(BlobResponse.Status.BAD_REQUEST)
    expect(reply.message).to.match(/past the end/)
  })

  it('concurrent requests share one connection', async () => {
    const replies = await Promise.all([0, 1, 2, 3].map(async () => requestBlob(client, serverPeer, digest, 0)))
    const bodies = await Promise.all(replies.map(readBody))

    for (const body of bodies) {
      expect(Buffer.compare(body, bytes)).to.equal(0)
    }
    expect(client.getConnections(serverPeer)).to.have.length(1)
  })

  it('request to a peer without the protocol is rejected', async () => {
    const bare = await startNode()
    try {
      const address = bare.getMultiaddrs()[0]
      if (address == null) {
        throw new Error('the node has no address')
      }
      const peer = (await client.dial(multiaddr(address.toString()))).remotePeer

      await expectRejection(requestBlob(client, peer, digest, 0), UnsupportedProtocolError)
      const open = client.getConnections(peer).flatMap(connection => connection.streams).filter(stream => stream.protocol === BLOB_PROTOCOL && stream.status === 'open')
      expect(open).to.have.length(0)
    } finally {
      await bare.stop()
    }
  })
})

describe('net blob protocol while the server receives the blob', function () {
  this.timeout(30_000)
  const nodes: KilomeshLibp2p[] = []
  let root: string
  let blobServer: BlobServer | undefined

  afterEach(async () => {
    await blobServer?.stop()
    await Promise.all(nodes.splice(0).map(async node => node.stop()))
    await rm(root, { recursive: true, force: true })
  })

  /**
   * Starts a server whose fetcher reports `source` as sending `digest`, and
   * connects `client` and `source` to it. Waiting for the blob runs `arrive`.
   */
  async function startReceivingServer (digest: OciDigest, pickSource: (client: PeerId, source: PeerId) => PeerId, arrive: (store: BlobStore) => Promise<void> = async () => {}): Promise<{ client: KilomeshLibp2p, server: PeerId, source: PeerId }> {
    root = await mkdtemp(join(tmpdir(), 'km-blob-receiving-'))
    const store = new BlobStore(root)
    await store.init()
    const [server, client, source] = [await startNode(), await startNode(), await startNode()]
    nodes.push(server, client, source)
    const address = multiaddr(server.getMultiaddrs()[0]?.toString() ?? '')
    await source.dial(address)
    await client.dial(address)

    blobServer = new BlobServer(server, store, undefined, {
      receivingFrom: asked => asked === digest ? pickSource(client.peerId, source.peerId) : undefined,
      settled: async () => { await arrive(store) }
    })
    await blobServer.start()
    return { client, server: server.peerId, source: source.peerId }
  }

  it('serves a blob that arrives while the request waits', async () => {
    const bytes = randomBytes(100_000)
    const digest = digestOf(bytes)
    const { client, server } = await startReceivingServer(digest, (_client, source) => source, async store => {
      await new Promise(resolve => setTimeout(resolve, 200))
      await store.put(bytes)
    })

    const reply = await requestBlob(client, server, digest, 0)

    expect(reply.status).to.equal(BlobResponse.Status.OK)
    expect(Buffer.compare(await readBody(reply), bytes)).to.equal(0)
    expect(blobServer?.stats.awaitedArrivals).to.equal(1)
  })

  it('answers BUSY and names the peer it receives the blob from', async () => {
    const digest = digestOf(randomBytes(64))
    const { client, server, source } = await startReceivingServer(digest, (_client, source) => source)

    const reply = await requestBlob(client, server, digest, 0, { headerOnly: true })

    expect(reply.status).to.equal(BlobResponse.Status.BUSY)
    expect(reply.holders.map(holder => holder.id.toString())).to.deep.equal([source.toString()])
    expect(reply.holders[0]?.multiaddrs.length).to.be.greaterThan(0)
    expect(blobServer?.stats.receivingAnswers).to.equal(1)
  })

  it('answers NOT_FOUND when the requester is the peer it receives from', async () => {
    const digest = digestOf(randomBytes(64))
    const { client, server } = await startReceivingServer(digest, client => client)

    const reply = await requestBlob(client, server, digest, 0)

    expect(reply.status).to.equal(BlobResponse.Status.NOT_FOUND)
    expect(blobServer?.stats.receivingAnswers).to.equal(0)
  })
})
