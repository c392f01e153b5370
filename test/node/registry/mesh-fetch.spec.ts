/**
 * The agent's registry backend against real peers: blobs come straight
 * from the peer that supplied the tag record or the parent manifest, and
 * bytes that do not match their digest never reach a client as a success.
 */
import { strict as assert } from 'node:assert'
import { randomBytes } from 'node:crypto'
import { pbStream } from '@libp2p/utils'
import { MAX_MANIFEST_BYTES, MAX_MESSAGE_BYTES, RESOLVE_PROTOCOL } from '../../../protocol/constants.js'
import { BlobResponse } from '../../../protocol/messages/blob.js'
import { ResolveRequest, ResolveResponse } from '../../../protocol/messages/resolve.js'
import { publishImage } from '../../../node/agent/publish.js'
import { pullImage } from '../../../node/agent/pull.js'
import { AgentRegistryBackend } from '../../../node/agent/registry-backend.js'
import { requestBlob } from '../../../node/net/blob-client.js'
import { addressOf, startLocalAgent, stopLocalAgents, waitUntil } from '../../utils/in-process.js'
import { fixture } from '../../utils/paths.js'
import { startRoguePeer, type RoguePeer } from '../../utils/rogue-peer.js'
import { fixtureBlob, send } from './helpers.js'
import type { Agent } from '../../../node/agent/agent.js'
import type { OciDigest } from '../../../protocol/digest.js'

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
const HTTPD_V1: OciDigest = 'sha256:b00a22a43573e6deb217672d8fad3294e1a02e7d984c5a072d2044b18f24928c'
const HTTPD_V1_CONFIG: OciDigest = 'sha256:11cf634045183836747073e3aea959d01fdaf4fd55c8b9c022738e62123c439c'
const HTTPD_V1_LAYER: OciDigest = 'sha256:6605c25f659b195ee6cf445c35a56180b3a2f26db15740fb46de7076b7f728b2'
const BUSYBOX_AMD64: OciDigest = 'sha256:15cdd45bae16e02d67b6126196337f6ac2e3fd5cb5ae43c9b5f53c2816a93d79'
/** The 1 MB layer of busybox:1.35-amd64, large enough to be passed on as it arrives. */
const BUSYBOX_AMD64_LAYER: OciDigest = 'sha256:0bf36be11406bc3d56538a05318bbf7263a4f78c1b67e91a206087d7bfa2ce36'

function portOf (agent: Agent): number {
  const port = Number(agent.registryAddress?.split(':').pop())
  assert.ok(port > 0, `agent ${agent.peerId} has no registry address`)
  return port
}

describe('registry fetches through the mesh', function () {
  this.timeout(60_000)
  let publisher: Agent
  const agents: Agent[] = []
  const rogues: RoguePeer[] = []

  before(async () => {
    publisher = await startLocalAgent({ dht: false })
    agents.push(publisher)
    await publishImage(publisher.context, 'demo/httpd:v1', `${fixture('micro-httpd')}:v1`)
    await publishImage(publisher.context, 'demo/busybox:amd64', `${fixture('busybox')}:1.35-amd64`)
  })

  after(async () => {
    await Promise.all(rogues.map(async rogue => rogue.stop()))
    await stopLocalAgents(agents)
  })

  /**
   * Starts a peer that relays the publisher's genuine tag record through the
   * resolve protocol but serves `corrupt` with one byte flipped.
   */
  async function startRelayingRogue (corrupt: string, image = { layout: 'micro-httpd', repository: 'demo/httpd', tag: 'v1' }): Promise<RoguePeer> {
    const rogue = await startRoguePeer(fixture(image.layout), { corrupt })
    rogues.push(rogue)
    const envelope = publisher.context.catalog.get(image.repository, image.tag)?.envelope
    assert.ok(envelope != null)

    await rogue.node.handle(RESOLVE_PROTOCOL, async (stream) => {
      const messages = pbStream(stream, { maxDataLength: MAX_MESSAGE_BYTES })
      await messages.read(ResolveRequest)
      await messages.write({ envelopes: [new Uint8Array(envelope)] }, ResolveResponse)
      await stream.close()
    })
    return rogue
  }

  it('small blobs come straight from the source', async () => {
    const agent = await startLocalAgent({ dht: false, registry: '127.0.0.1:0', bootstrap: [addressOf(publisher)] })
    agents.push(agent)
    await waitUntil(() => agent.context.catalog.get('demo/httpd', 'v1') != null, 'the catalog sync with the publisher')
    const requestsBefore = publisher.context.blobServer.stats.requests

    const manifest = await send(portOf(agent), 'GET', '/v2/demo/httpd/manifests/v1', { headers: { Accept: OCI_MANIFEST } })
    const config = await send(portOf(agent), 'GET', `/v2/demo/httpd/blobs/${HTTPD_V1_CONFIG}`)
    const layer = await send(portOf(agent), 'GET', `/v2/demo/httpd/blobs/${HTTPD_V1_LAYER}`)

    assert.equal(manifest.status, 200)
    assert.deepEqual(manifest.body, await fixtureBlob('micro-httpd', HTTPD_V1))
    assert.equal(config.status, 200)
    assert.deepEqual(config.body, await fixtureBlob('micro-httpd', HTTPD_V1_CONFIG))
    assert.equal(layer.status, 200)
    assert.deepEqual(layer.body, await fixtureBlob('micro-httpd', HTTPD_V1_LAYER))
    assert.equal(publisher.context.blobServer.stats.requests - requestsBefore, 3, 'one request per blob and no probes of who holds it')
    await waitUntil(async () => {
      const stored = await Promise.all([HTTPD_V1, HTTPD_V1_CONFIG, HTTPD_V1_LAYER].map(async digest => agent.context.store.has(digest)))
      return stored.every(Boolean)
    }, 'the fetched blobs to reach the store')
  })

  it('memory-fetched blobs wait before providing', async () => {
    // The DHT runs on this agent, so its providers act on every stored blob.
    const agent = await startLocalAgent({ bootstrap: [addressOf(publisher)] })
    agents.push(agent)
    await waitUntil(() => agent.context.catalog.get('demo/httpd', 'v1') != null, 'the catalog sync with the publisher')
    const backend = new AgentRegistryBackend(agent.context)
    assert.ok(await backend.resolveTag('demo/httpd', 'v1') != null)

    const fetched = await backend.fetchBlob(HTTPD_V1, { parent: undefined })
    assert.ok(fetched?.bytes != null, 'the manifest came into memory from the tag record\'s source')
    assert.equal(await fetched.stored, true)

    // The providers decide when the blob is stored: at once for a blob added
    // on this device, after a random delay for one fetched from a peer.
    assert.equal(agent.context.providers.stats.delayed, 1, 'the manifest waits for the random delay of a fetched blob')
    await waitUntil(() => !agent.context.fetcher.isFetching(HTTPD_V1), 'the fetcher to stop counting the stored transfer')
  })

  it('fetched blob is stored after the write-behind delay', async () => {
    const agent = await startLocalAgent({ dht: false, bootstrap: [addressOf(publisher)] })
    agents.push(agent)
    await waitUntil(() => agent.context.catalog.get('demo/httpd', 'v1') != null, 'the catalog sync with the publisher')
    // A delay no test waits for: only a flush, a request for the blob or storeAtOnce can write the blobs.
    const backend = new AgentRegistryBackend(agent.context, { writeBehindMs: 600_000 })
    assert.ok(await backend.resolveTag('demo/httpd', 'v1') != null)

    const manifest = await backend.fetchBlob(HTTPD_V1)
    const config = await backend.fetchBlob(HTTPD_V1_CONFIG, { parent: HTTPD_V1, storeAtOnce: true })
    const layer = await backend.fetchBlob(HTTPD_V1_LAYER, { parent: HTTPD_V1 })

    assert.ok(manifest?.bytes != null, 'the manifest is served from memory before it is stored')
    assert.ok(layer?.bytes != null)
    assert.equal(await config?.stored, true, 'storeAtOnce skips the delay')
    assert.equal(await agent.context.store.has(HTTPD_V1), false)
    assert.equal(await agent.context.store.has(HTTPD_V1_LAYER), false)

    // A pull of a waiting blob stores it from memory instead of downloading it again.
    const requestsBefore = publisher.context.blobServer.stats.requests
    await agent.context.fetcher.fetch(HTTPD_V1)
    assert.equal(publisher.context.blobServer.stats.requests, requestsBefore)
    assert.equal(await agent.context.store.has(HTTPD_V1), true)

    // A peer's request for a waiting blob returns it instead of NOT_FOUND.
    const reply = await requestBlob(publisher.node, agent.node.peerId, HTTPD_V1_LAYER, 0, { headerOnly: true })
    assert.equal(reply.status, BlobResponse.Status.OK)
    assert.equal(await agent.context.store.has(HTTPD_V1_LAYER), true)

    await backend.flushWrites()
    assert.equal(await manifest.stored, true)
    assert.equal(await layer.stored, true)
  })

  it('push to another publisher\'s repository warns', async () => {
    const agent = await startLocalAgent({ dht: false, registry: '127.0.0.1:0', bootstrap: [addressOf(publisher)] })
    agents.push(agent)
    await waitUntil(() => agent.context.catalog.get('demo/httpd', 'v1') != null, 'the catalog sync with the publisher')
    const manifest = await send(portOf(agent), 'GET', '/v2/demo/httpd/manifests/v1', { headers: { Accept: OCI_MANIFEST } })
    await send(portOf(agent), 'GET', `/v2/demo/httpd/blobs/${HTTPD_V1_CONFIG}`)
    await send(portOf(agent), 'GET', `/v2/demo/httpd/blobs/${HTTPD_V1_LAYER}`)
    await waitUntil(async () => agent.context.store.has(HTTPD_V1_LAYER), 'the layer to reach the store')

    const pushed = await send(portOf(agent), 'PUT', '/v2/demo/httpd/manifests/copy', { headers: { 'Content-Type': OCI_MANIFEST }, body: manifest.body })
    const own = await send(portOf(agent), 'PUT', '/v2/mine/httpd/manifests/copy', { headers: { 'Content-Type': OCI_MANIFEST }, body: manifest.body })

    assert.equal(pushed.status, 201)
    assert.match(String(pushed.headers.warning), /^299 - ".*demo\/httpd belongs to its first publisher .*kilomesh trust add/)
    assert.equal(own.status, 201)
    assert.equal(own.headers.warning, undefined, 'a repository nobody owned yet gets no warning')
  })

  it('memory limits send blobs to the store', async () => {
    const agent = await startLocalAgent({ dht: false, bootstrap: [addressOf(publisher)] })
    agents.push(agent)
    await waitUntil(() => agent.node.getPeers().length > 0, 'a connection to the publisher')
    const layerBytes = await fixtureBlob('micro-httpd', HTTPD_V1_LAYER)
    const configBytes = await fixtureBlob('micro-httpd', HTTPD_V1_CONFIG)
    const sizeLimited = new AgentRegistryBackend(agent.context, { maxMemoryFetchBytes: layerBytes.byteLength - 1 })
    const budgetLimited = new AgentRegistryBackend(agent.context, { memoryFetchBudgetBytes: configBytes.byteLength - 1 })
    assert.ok(await sizeLimited.resolveTag('demo/httpd', 'v1') != null)
    assert.ok(await budgetLimited.resolveTag('demo/httpd', 'v1') != null)

    const overSize = await sizeLimited.fetchBlob(HTTPD_V1_LAYER, { sizeBytes: layerBytes.byteLength, parent: HTTPD_V1 })
    const underSize = await sizeLimited.fetchBlob(HTTPD_V1_CONFIG, { sizeBytes: configBytes.byteLength, parent: HTTPD_V1 })
    await underSize?.stored
    await agent.context.store.delete(HTTPD_V1_CONFIG)
    const overBudget = await budgetLimited.fetchBlob(HTTPD_V1_CONFIG, { sizeBytes: configBytes.byteLength, parent: HTTPD_V1 })

    assert.equal(overSize?.bytes, undefined, 'a blob over the size limit goes to the store')
    assert.equal(await overSize?.stored, true)
    assert.deepEqual(Buffer.from(await agent.context.store.read(HTTPD_V1_LAYER)), layerBytes)
    assert.deepEqual(underSize?.bytes, new Uint8Array(configBytes), 'a blob within the limits comes in memory')
    assert.equal(overBudget?.bytes, undefined, 'a blob over the budget goes to the store')
    assert.equal(await agent.context.store.has(HTTPD_V1_CONFIG), true)
  })

  it('blob missing at its source comes from another peer', async () => {
    const holder = await startLocalAgent({ dht: false, bootstrap: [addressOf(publisher)] })
    agents.push(holder)
    await waitUntil(() => holder.context.catalog.get('demo/httpd', 'v1') != null, 'the catalog sync of the holder')
    await pullImage(holder.context, 'demo/httpd:v1')
    const configBytes = await fixtureBlob('micro-httpd', HTTPD_V1_CONFIG)
    await publisher.context.store.delete(HTTPD_V1_CONFIG)

    try {
      const agent = await startLocalAgent({ dht: false, registry: '127.0.0.1:0', bootstrap: [addressOf(publisher), addressOf(holder)] })
      agents.push(agent)
      await waitUntil(() => agent.context.catalog.get('demo/httpd', 'v1') != null && agent.node.getPeers().length === 2, 'connections to the publisher and the holder')

      const manifest = await send(portOf(agent), 'GET', '/v2/demo/httpd/manifests/v1', { headers: { Accept: OCI_MANIFEST } })
      const config = await send(portOf(agent), 'GET', `/v2/demo/httpd/blobs/${HTTPD_V1_CONFIG}`)

      assert.equal(manifest.status, 200)
      assert.equal(config.status, 200)
      assert.deepEqual(config.body, configBytes)
    } finally {
      await publisher.context.store.put(configBytes, HTTPD_V1_CONFIG)
    }
  })

  it('corrupt manifest from its source is not served', async () => {
    const rogue = await startRelayingRogue(HTTPD_V1)
    const agent = await startLocalAgent({ dht: false, registry: '127.0.0.1:0', bootstrap: [rogue.address] })
    agents.push(agent)
    await waitUntil(() => agent.node.getPeers().length > 0, 'a connection to the rogue peer')

    const response = await send(portOf(agent), 'GET', '/v2/demo/httpd/manifests/v1', { headers: { Accept: OCI_MANIFEST } })

    assert.equal(response.status, 404)
    assert.equal(response.code, 'MANIFEST_UNKNOWN')
    assert.equal(rogue.requests.get(HTTPD_V1), 1, 'the rogue peer was asked once and then penalised')
    assert.equal(agent.context.penalties.isPenalised(rogue.node.peerId.toString()), true)
    assert.equal(await agent.context.store.has(HTTPD_V1), false)
  })

  it('corrupt config from the manifest source is not served', async () => {
    const rogue = await startRelayingRogue(HTTPD_V1_CONFIG)
    const agent = await startLocalAgent({ dht: false, registry: '127.0.0.1:0', bootstrap: [rogue.address] })
    agents.push(agent)
    await waitUntil(() => agent.node.getPeers().length > 0, 'a connection to the rogue peer')

    const manifest = await send(portOf(agent), 'GET', '/v2/demo/httpd/manifests/v1', { headers: { Accept: OCI_MANIFEST } })
    const config = await send(portOf(agent), 'GET', `/v2/demo/httpd/blobs/${HTTPD_V1_CONFIG}`)

    assert.equal(manifest.status, 200)
    assert.deepEqual(manifest.body, await fixtureBlob('micro-httpd', HTTPD_V1))
    assert.equal(config.status, 404)
    assert.equal(config.code, 'BLOB_UNKNOWN')
    assert.equal(agent.context.penalties.isPenalised(rogue.node.peerId.toString()), true)
    assert.equal(await agent.context.store.has(HTTPD_V1_CONFIG), false)
  })

  it('large blob requested as manifest is not fetched', async () => {
    const large = randomBytes(MAX_MANIFEST_BYTES + 1024 * 1024)
    const digest = await publisher.context.store.put(large)
    const agent = await startLocalAgent({ dht: false, registry: '127.0.0.1:0', bootstrap: [addressOf(publisher)] })
    agents.push(agent)
    await waitUntil(() => agent.node.getPeers().length > 0, 'a connection to the publisher')
    const sentBefore = publisher.context.blobServer.stats.sentBytes

    const head = await send(portOf(agent), 'HEAD', `/v2/demo/httpd/manifests/${digest}`)
    const get = await send(portOf(agent), 'GET', `/v2/demo/httpd/manifests/${digest}`)

    assert.equal(head.status, 404)
    assert.equal(get.status, 404)
    assert.equal(get.code, 'MANIFEST_UNKNOWN')
    assert.equal(await agent.context.store.has(digest), false)
    const sentBytes = publisher.context.blobServer.stats.sentBytes - sentBefore
    assert.ok(sentBytes < MAX_MANIFEST_BYTES, `the publisher sent ${sentBytes} bytes of a blob no manifest request may receive`)
  })

  it('size limit does not fail a joined fetch', async () => {
    const large = randomBytes(2 * 1024 * 1024)
    const digest = await publisher.context.store.put(large)
    const agent = await startLocalAgent({ dht: false, bootstrap: [addressOf(publisher)] })
    agents.push(agent)
    await waitUntil(() => agent.node.getPeers().length > 0, 'a connection to the publisher')

    // Called in one tick, the limited fetch starts the transfer and the
    // unlimited one joins it before the source states the size.
    const [limited, unlimited] = await Promise.allSettled([
      agent.context.fetcher.fetch(digest, { maxSizeBytes: 1_000 }),
      agent.context.fetcher.fetch(digest)
    ])

    assert.equal(unlimited.status === 'fulfilled' ? unlimited.value.sizeBytes : unlimited.reason, large.byteLength)
    if (limited.status === 'rejected') {
      assert.equal(limited.reason.name, 'BlobTooLargeError')
    }
    assert.deepEqual(Buffer.from(await agent.context.store.read(digest)), large)
  })

  it('large layer streams to the client', async () => {
    const agent = await startLocalAgent({ dht: false, registry: '127.0.0.1:0', bootstrap: [addressOf(publisher)] })
    agents.push(agent)
    await waitUntil(() => agent.context.catalog.get('demo/busybox', 'amd64') != null, 'the catalog sync with the publisher')
    const layerBytes = await fixtureBlob('busybox', BUSYBOX_AMD64_LAYER)

    const manifest = await send(portOf(agent), 'GET', '/v2/demo/busybox/manifests/amd64', { headers: { Accept: OCI_MANIFEST } })
    const layer = await send(portOf(agent), 'GET', `/v2/demo/busybox/blobs/${BUSYBOX_AMD64_LAYER}`)

    assert.equal(manifest.status, 200)
    assert.equal(layer.status, 200)
    assert.equal(layer.headers['content-length'], String(layerBytes.byteLength))
    assert.equal(layer.headers['docker-content-digest'], BUSYBOX_AMD64_LAYER)
    assert.ok(layer.body.equals(layerBytes), 'the client received the layer byte for byte')
    await waitUntil(async () => agent.context.store.has(BUSYBOX_AMD64_LAYER), 'the layer to reach the store')

    // The backend hands the registry the layer while it arrives.
    await agent.context.store.delete(BUSYBOX_AMD64_LAYER)
    const backend = new AgentRegistryBackend(agent.context)
    assert.equal((await backend.resolveTag('demo/busybox', 'amd64'))?.digest, BUSYBOX_AMD64)
    const fetched = await backend.fetchBlob(BUSYBOX_AMD64_LAYER, { sizeBytes: layerBytes.byteLength, parent: BUSYBOX_AMD64 })
    assert.ok(fetched?.arriving != null, 'a 1 MB layer comes back while it arrives')
    assert.equal(fetched.bytes, undefined)
    const parts: Uint8Array[] = []
    for await (const part of fetched.arriving.chunks()) {
      parts.push(part)
    }
    assert.ok(Buffer.concat(parts).equals(layerBytes))
    assert.equal(await fetched.stored, true)
  })

  it('slow transfer outlasts the start deadline', async () => {
    const rogue = await startRoguePeer(fixture('busybox'), { slow: { digest: BUSYBOX_AMD64_LAYER, bytesPerSecond: 500_000 } })
    rogues.push(rogue)
    const agent = await startLocalAgent({ dht: false, bootstrap: [rogue.address] })
    agents.push(agent)
    await waitUntil(() => agent.node.getPeers().length > 0, 'a connection to the slow peer')
    const layerBytes = await fixtureBlob('busybox', BUSYBOX_AMD64_LAYER)
    // Too small a memory limit for the layer, so it goes through the blob fetcher.
    const backend = new AgentRegistryBackend(agent.context, { maxMemoryFetchBytes: 1024 })

    const startedMs = Date.now()
    const fetched = await backend.fetchBlob(BUSYBOX_AMD64_LAYER, { sizeBytes: layerBytes.byteLength, startTimeoutMs: 500 })
    const elapsedMs = Date.now() - startedMs

    assert.ok(fetched != null, 'the transfer that started in time was not cut')
    assert.equal(await fetched.stored, true)
    assert.ok(elapsedMs > 1_000, `the transfer took ${elapsedMs} ms, not longer than the deadline`)
    assert.ok(Buffer.from(await agent.context.store.read(BUSYBOX_AMD64_LAYER)).equals(layerBytes))
  })

  it('corrupt large layer is cut short', async () => {
    const rogue = await startRelayingRogue(BUSYBOX_AMD64_LAYER, { layout: 'busybox', repository: 'demo/busybox', tag: 'amd64' })
    const agent = await startLocalAgent({ dht: false, registry: '127.0.0.1:0', bootstrap: [rogue.address] })
    agents.push(agent)
    await waitUntil(() => agent.node.getPeers().length > 0, 'a connection to the rogue peer')
    const layerBytes = await fixtureBlob('busybox', BUSYBOX_AMD64_LAYER)

    const manifest = await send(portOf(agent), 'GET', '/v2/demo/busybox/manifests/amd64', { headers: { Accept: OCI_MANIFEST } })
    const layer = await send(portOf(agent), 'GET', `/v2/demo/busybox/blobs/${BUSYBOX_AMD64_LAYER}`).catch((err: Error) => err)

    assert.equal(manifest.status, 200)
    // The server cuts the connection once the check fails: the client sees
    // an error, or at most a body shorter than the layer.
    if (!(layer instanceof Error)) {
      assert.ok(layer.status !== 200 || layer.body.byteLength < layerBytes.byteLength, `the client got ${layer.body.byteLength} bytes with status ${layer.status}`)
    }
    assert.equal(agent.context.penalties.isPenalised(rogue.node.peerId.toString()), true)
    assert.equal(await agent.context.store.has(BUSYBOX_AMD64_LAYER), false)
  })
})
