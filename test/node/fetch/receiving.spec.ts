import { expect } from 'chai'
import { randomBytes } from 'node:crypto'
import { BlobResponse } from '../../../protocol/messages/blob.js'
import { requestBlob } from '../../../node/net/blob-client.js'
import { addressOf, startLocalAgent, stopLocalAgents, waitUntil } from '../../utils/in-process.js'
import type { Agent } from '../../../node/agent/agent.js'
import type { OciDigest } from '../../../protocol/digest.js'
import type { PeerId } from '@libp2p/interface'

describe('fetch of a blob in transit', function () {
  this.timeout(60_000)
  const agents: Agent[] = []

  afterEach(async () => {
    await stopLocalAgents(agents.splice(0))
  })

  /** Starts a holder of a random blob of `sizeBytes` and a fetcher connected to it. */
  async function startPair (sizeBytes: number): Promise<{ holder: Agent, fetcher: Agent, digest: OciDigest }> {
    const holder = await startLocalAgent({ dht: false })
    const fetcher = await startLocalAgent({ dht: false, bootstrap: [addressOf(holder)] })
    agents.push(holder, fetcher)
    await waitUntil(() => fetcher.node.getPeers().length > 0, 'the fetcher to connect')
    const digest = await holder.context.store.put(randomBytes(sizeBytes))
    return { holder, fetcher, digest }
  }

  it('receivingFrom names the sender until stored', async () => {
    const { holder, fetcher, digest } = await startPair(2 * 1024 * 1024)

    let duringTransfer: PeerId | undefined
    await fetcher.context.fetcher.fetch(digest, {
      preferredPeers: [holder.node.peerId],
      onProgress: () => { duringTransfer ??= fetcher.context.fetcher.receivingFrom(digest) }
    })

    expect(duringTransfer?.toString()).to.equal(holder.peerId)
    expect(fetcher.context.fetcher.receivingFrom(digest)).to.equal(undefined)
  })

  it('agent receiving a blob serves it once stored', async () => {
    // A line: holder - middle - asker. The asker is not connected to the holder.
    const holder = await startLocalAgent({ dht: false })
    const middle = await startLocalAgent({ dht: false, bootstrap: [addressOf(holder)] })
    const asker = await startLocalAgent({ dht: false, bootstrap: [addressOf(middle)] })
    agents.push(holder, middle, asker)
    await waitUntil(() => asker.node.getPeers().length > 0 && middle.node.getPeers().length > 1, 'the line to connect')
    const sizeBytes = 8 * 1024 * 1024
    const digest = await holder.context.store.put(randomBytes(sizeBytes))

    // Ask the middle agent as soon as its first bytes arrive: it holds the
    // request until the blob is stored, then responds.
    let request: ReturnType<typeof requestBlob> | undefined
    await middle.context.fetcher.fetch(digest, {
      preferredPeers: [holder.node.peerId],
      onProgress: () => { request ??= requestBlob(asker.node, middle.node.peerId, digest, 0, { headerOnly: true }) }
    })
    const reply = await request

    expect(reply?.status).to.equal(BlobResponse.Status.OK)
    expect(reply?.sizeBytes).to.equal(sizeBytes)
    expect(middle.context.blobServer.stats.awaitedArrivals).to.equal(1)
  })

  it('shared transfer outlives a caller that gave up', async () => {
    const { holder, fetcher, digest } = await startPair(2 * 1024 * 1024)
    const leaving = new AbortController()

    // The first caller gives up once bytes arrive, while the second waits.
    // Only the call that starts the transfer gets progress, and either call
    // may start it: each checks the store first, and under load the second
    // check can finish first. So both pass the same progress callback.
    const onProgress = (): void => { leaving.abort(new Error('the first client went away')) }
    const first = fetcher.context.fetcher.fetch(digest, { preferredPeers: [holder.node.peerId], signal: leaving.signal, onProgress })
    const second = fetcher.context.fetcher.fetch(digest, { preferredPeers: [holder.node.peerId], onProgress })

    const firstError = await first.then(() => undefined, (err: Error) => err)
    expect(firstError?.message).to.equal('the first client went away')
    expect((await second).fetched).to.equal(true)
    expect(await fetcher.context.store.has(digest)).to.equal(true)
  })

  it('shared transfer stops when every caller gave up', async () => {
    const { holder, fetcher, digest } = await startPair(8 * 1024 * 1024)
    const leaving = new AbortController()

    let progressed = false
    const only = fetcher.context.fetcher.fetch(digest, {
      preferredPeers: [holder.node.peerId],
      signal: leaving.signal,
      onProgress: () => {
        progressed = true
        leaving.abort(new Error('the only client went away'))
      }
    })
    await only.catch(() => {})
    await fetcher.context.fetcher.settled(digest)

    expect(progressed).to.equal(true)
    expect(fetcher.context.fetcher.isFetching(digest)).to.equal(false)
    expect(await fetcher.context.store.has(digest)).to.equal(false)
  })
})
