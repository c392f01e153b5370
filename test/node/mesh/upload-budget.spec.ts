import { randomBytes } from 'node:crypto'
import { multiaddr } from '@multiformats/multiaddr'
import { expect } from 'chai'
import { requestBlob } from '../../../node/net/blob-client.js'
import { MAX_UPLOADS_PER_BLOB, SMALL_BLOB_BYTES } from '../../../node/net/constants.js'
import { UploadBudget } from '../../../node/net/upload-budget.js'
import { BlobResponse } from '../../../protocol/messages/blob.js'
import { addressOf, startLocalAgent, stopLocalAgents, waitUntil } from '../../utils/in-process.js'
import type { Agent } from '../../../node/agent/agent.js'
import type { OciDigest } from '../../../protocol/digest.js'

describe('blob server upload budget', function () {
  this.timeout(120_000)
  const agents: Agent[] = []

  afterEach(async () => {
    await stopLocalAgents(agents.splice(0))
  })

  /** Starts a holder and MAX_UPLOADS_PER_BLOB + 3 agents connected to it. */
  async function holderAndAskers (): Promise<{ holder: Agent, askers: Agent[] }> {
    const holder = await startLocalAgent({ dht: false })
    agents.push(holder)
    const askers: Agent[] = []
    for (let i = 0; i < MAX_UPLOADS_PER_BLOB + 3; i++) {
      const asker = await startLocalAgent({ dht: false, bootstrap: [addressOf(holder)] })
      agents.push(asker)
      askers.push(asker)
    }
    await waitUntil(() => askers.every(asker => asker.node.getConnections(holder.node.peerId).length > 0), 'every asker to connect to the holder')
    return { holder, askers }
  }

  /**
   * Sends every request before any response is read, so they reach the server
   * together, as in a rollout where all devices learn a tag at once.
   */
  async function askAtOnce (holder: Agent, askers: Agent[], digest: OciDigest): Promise<Array<{ status: BlobResponse.Status, receivedBytes: number }>> {
    return Promise.all(askers.map(async asker => {
      const reply = await requestBlob(asker.node, holder.node.peerId, digest, 0, { signal: AbortSignal.timeout(20_000) })
      let receivedBytes = 0
      for await (const chunk of reply.body) {
        receivedBytes += chunk.byteLength
      }
      await reply.stream.close().catch(() => {})
      return { status: reply.status, receivedBytes }
    }))
  }

  it('limits copies of a large blob', async () => {
    const { holder, askers } = await holderAndAskers()
    const bytes = randomBytes(256 * 1024)
    const digest = await holder.context.store.put(bytes)

    const results = await askAtOnce(holder, askers, digest)

    const served = results.filter(result => result.status === BlobResponse.Status.OK)
    const busy = results.filter(result => result.status === BlobResponse.Status.BUSY)
    expect(served).to.have.lengthOf(MAX_UPLOADS_PER_BLOB)
    expect(busy).to.have.lengthOf(askers.length - MAX_UPLOADS_PER_BLOB)
    expect(served.every(result => result.receivedBytes === bytes.byteLength)).to.equal(true)
    expect(holder.context.blobServer.stats.sentBytes).to.equal(MAX_UPLOADS_PER_BLOB * bytes.byteLength)
  })

  it('serves small blobs beyond the layer limit', async () => {
    const { holder, askers } = await holderAndAskers()
    const bytes = randomBytes(SMALL_BLOB_BYTES)
    const digest = await holder.context.store.put(bytes)

    const results = await askAtOnce(holder, askers, digest)

    expect(askers.length).to.be.greaterThan(MAX_UPLOADS_PER_BLOB)
    expect(results.map(result => result.status)).to.deep.equal(askers.map(() => BlobResponse.Status.OK))
    expect(holder.context.blobServer.stats.sentBytes).to.equal(askers.length * bytes.byteLength)
  })

  it('names earlier recipients when busy', async () => {
    const { holder, askers } = await holderAndAskers()
    const bytes = randomBytes(256 * 1024)
    const digest = await holder.context.store.put(bytes)
    const [latecomer, ...first] = askers as [Agent, ...Agent[]]
    const recipients = first.slice(0, MAX_UPLOADS_PER_BLOB)
    for (const recipient of recipients) {
      await recipient.context.fetcher.fetch(digest, { preferredPeers: [holder.node.peerId] })
    }

    // The latecomer is connected to the holder only, and the DHT is off, so
    // the holder's BUSY response is the only way to learn where copies went.
    expect(recipients.every(recipient => latecomer.node.getConnections(recipient.node.peerId).length === 0)).to.equal(true)
    const reply = await requestBlob(latecomer.node, holder.node.peerId, digest, 0, { headerOnly: true })
    expect(reply.status).to.equal(BlobResponse.Status.BUSY)
    expect(reply.holders.map(hint => hint.id.toString()).sort()).to.deep.equal(recipients.map(recipient => recipient.peerId).sort())

    await latecomer.context.fetcher.fetch(digest, { preferredPeers: [holder.node.peerId], waitForSourcesMs: 5_000 })
    expect(await latecomer.context.store.has(digest)).to.equal(true)
    expect(holder.context.blobServer.stats.sentBytes).to.equal(MAX_UPLOADS_PER_BLOB * bytes.byteLength)
  })

  it('busy answer prefers a connected recipient', async () => {
    const { holder, askers } = await holderAndAskers()
    const bytes = randomBytes(256 * 1024)
    const digest = await holder.context.store.put(bytes)
    const recipients = askers.slice(0, MAX_UPLOADS_PER_BLOB)
    for (const recipient of recipients) {
      await recipient.context.fetcher.fetch(digest, { preferredPeers: [holder.node.peerId] })
    }
    // Connected to the holder, the latecomer's connectivity keeper dials no more.
    const latecomer = await startLocalAgent({ dht: false, minConnections: 1, bootstrap: [addressOf(holder)] })
    agents.push(latecomer)
    await waitUntil(() => latecomer.node.getConnections(holder.node.peerId).length > 0, 'the latecomer to connect to the holder')

    // The holder names its newest recipient first, so a fetcher that took
    // the hints in order would dial the unconnected ones before it.
    const connected = recipients[recipients.length - 1] as Agent
    const unconnected = recipients.slice(0, -1)
    await latecomer.node.dial(multiaddr(addressOf(connected)))
    await latecomer.context.fetcher.fetch(digest, { preferredPeers: [holder.node.peerId], waitForSourcesMs: 5_000 })

    expect(await latecomer.context.store.has(digest)).to.equal(true)
    expect(connected.context.blobServer.stats.servedBlobs).to.equal(1)
    // The other recipients' connectivity keepers may dial the latecomer, but it dials none of them.
    const dialled = unconnected.flatMap(recipient => latecomer.node.getConnections(recipient.node.peerId).filter(connection => connection.direction === 'outbound'))
    expect(dialled).to.have.length(0)
  })
})

describe('busy answers with a recipient that lacks the blob', function () {
  this.timeout(120_000)
  const agents: Agent[] = []

  afterEach(async () => {
    await stopLocalAgents(agents.splice(0))
  })

  it('fetch dials the unconnected recipients', async () => {
    const holder = await startLocalAgent({ dht: false })
    agents.push(holder)
    const recipients: Agent[] = []
    for (let i = 0; i < MAX_UPLOADS_PER_BLOB; i++) {
      const recipient = await startLocalAgent({ dht: false, minConnections: 1, bootstrap: [addressOf(holder)] })
      agents.push(recipient)
      recipients.push(recipient)
    }
    await waitUntil(() => recipients.every(recipient => recipient.node.getConnections(holder.node.peerId).length > 0), 'every recipient to connect to the holder')
    const digest = await holder.context.store.put(randomBytes(256 * 1024))

    // The last recipient starts its copy and gives up on it, so the holder
    // counts it and names it, but it never has the blob.
    const [first, second, quitter] = recipients as [Agent, Agent, Agent]
    for (const recipient of [first, second]) {
      await recipient.context.fetcher.fetch(digest, { preferredPeers: [holder.node.peerId] })
    }
    const abandoned = await requestBlob(quitter.node, holder.node.peerId, digest, 0)
    expect(abandoned.status).to.equal(BlobResponse.Status.OK)
    abandoned.stream.abort(new Error('the recipient gives up'))

    // The latecomer is connected to the holder and to the recipient that gave up only.
    const latecomer = await startLocalAgent({ dht: false, minConnections: 1, bootstrap: [addressOf(holder)] })
    agents.push(latecomer)
    await waitUntil(() => latecomer.node.getConnections(holder.node.peerId).length > 0, 'the latecomer to connect to the holder')
    await latecomer.node.dial(multiaddr(addressOf(quitter)))
    await latecomer.context.fetcher.fetch(digest, { preferredPeers: [holder.node.peerId], waitForSourcesMs: 10_000, signal: AbortSignal.timeout(20_000) })

    expect(await latecomer.context.store.has(digest)).to.equal(true)
    expect(first.context.blobServer.stats.servedBlobs + second.context.blobServer.stats.servedBlobs).to.equal(1)
  })
})

describe('UploadBudget', () => {
  const budget = (): UploadBudget => new UploadBudget({ maxUploadsPerBlob: 1, maxUploadsPerSmallBlob: 2, smallBlobBytes: 100, maxConcurrentUploads: 1 })

  it('check caps small blob copies', () => {
    const uploads = budget()
    for (const peer of ['a', 'b']) {
      expect(uploads.check('sha256:small', peer, 0, () => true, 100)).to.equal(undefined)
      uploads.begin('sha256:small', peer)()
    }

    expect(uploads.check('sha256:small', 'c', 0, () => true, 100)).to.match(/sent 2 copies of sha256:small/)
  })

  it('check exempts small blobs from the concurrency limit', () => {
    const uploads = budget()
    const end = uploads.begin('sha256:other', 'a')

    expect(uploads.check('sha256:large', 'b', 0, () => true, 101)).to.match(/1 uploads are running, the limit is 1/)
    expect(uploads.check('sha256:small', 'b', 0, () => true, 100)).to.equal(undefined)
    end()
    expect(uploads.check('sha256:large', 'b', 0, () => true, 101)).to.equal(undefined)
  })
})
