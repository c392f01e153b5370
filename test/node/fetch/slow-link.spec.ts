/**
 * Pulls between two real agents over a simulated slow link. Yamux hands a
 * stream its data one whole frame at a time, so on a slow link a transfer's
 * stream can go longer than the stall timeout without a byte while the link
 * is busy delivering that frame.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { strict as assert } from 'node:assert'
import { expect } from 'chai'
import { publishImage } from '../../../node/agent/publish.js'
import { pullImage } from '../../../node/agent/pull.js'
import { AgentRegistryBackend } from '../../../node/agent/registry-backend.js'
import { parseManifest } from '../../../node/image/manifest.js'
import { localPlatform } from '../../../node/image/platform.js'
import { SimNetwork } from '../../../simulations/network/network.js'
import { SimNode } from '../../../simulations/runner/sim-node.js'
import { writeRandomImage } from '../../bench/utils/random-image.js'
import { waitUntil } from '../../utils/in-process.js'
import type { LinkParams } from '../../../simulations/scenario/types.js'

/** 20 kB/s: one 256 KiB frame of the blob server takes 13 s, more than the 10 s stall timeout. */
const SLOW_LINK: LinkParams = { latencyMs: 5, jitterMs: 0, bandwidthKbps: 160 }

const LAYER_BYTES = 300_000

let run = 0

describe('fetch over a slow link', function () {
  this.timeout(120_000)
  let root: string
  let nodes: SimNode[] = []

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'km-slow-link-'))
  })

  afterEach(async () => {
    await Promise.all(nodes.map(async node => { await node.shutdown(10_000) }))
    nodes = []
    await rm(root, { recursive: true, force: true })
  })

  let network: SimNetwork

  async function startPair (link: LinkParams): Promise<[SimNode, SimNode]> {
    run++
    network = new SimNetwork(link, [], run)
    for (let index = 0; index < 2; index++) {
      const node = new SimNode({ index, root, runId: `slow-link-${process.pid}-${run}`, transport: 'memory', network, seed: run, agentOptions: { dht: false }, faultLayer: true })
      await node.prepare({ mode: 'any' })
      nodes.push(node)
    }
    const [holder, puller] = nodes as [SimNode, SimNode]
    await holder.start([])
    await puller.start([holder.dialAddress ?? ''])
    return [holder, puller]
  }

  /**
   * Delays what either side sends in the next 6 s by 15 s, and everything
   * after it waits behind it: a gap longer than the stall timeout, on a
   * connection that stays open.
   */
  async function pauseLink (): Promise<void> {
    network.addRule({ from: { kind: 'all' }, to: { kind: 'all' }, params: { latencyMs: 15_000 } })
    await new Promise(resolve => setTimeout(resolve, 6_000))
    network.addRule({ from: { kind: 'all' }, to: { kind: 'all' }, params: { latencyMs: 5 } })
  }

  it('pull completes while frames take longer than the stall timeout', async () => {
    const [holder, puller] = await startPair(SLOW_LINK)
    const layout = join(root, 'image')
    await writeRandomImage(layout, 'slow', [localPlatform().architecture], LAYER_BYTES)
    await publishImage(holder.agent!.context, 'demo/slow:v1', `${layout}:slow`)
    await waitUntil(() => puller.agent!.context.catalog.get('demo/slow', 'v1') != null, 'the puller to learn the tag', 30_000)

    const result = await pullImage(puller.agent!.context, 'demo/slow:v1')

    expect(result.fetchedBlobs).to.be.at.least(3)
    expect(puller.agent!.context.fetcher.stats.failedAttempts).to.equal(0)
  })

  it('pull resumes from its source after a 15 s gap', async () => {
    const [holder, puller] = await startPair({ latencyMs: 5, jitterMs: 0, bandwidthKbps: 400 })
    const layout = join(root, 'image')
    await writeRandomImage(layout, 'gap', [localPlatform().architecture], LAYER_BYTES)
    await publishImage(holder.agent!.context, 'demo/gap:v1', `${layout}:gap`)
    await waitUntil(() => puller.agent!.context.catalog.get('demo/gap', 'v1') != null, 'the puller to learn the tag', 30_000)
    const stats = puller.agent!.context.fetcher.stats

    const pulling = pullImage(puller.agent!.context, 'demo/gap:v1')
    await waitUntil(() => stats.receivedBytes > 0, 'the first blob to arrive', 30_000)
    await pauseLink()
    const result = await pulling

    expect(result.fetchedBlobs).to.be.at.least(3)
    expect(stats.failedAttempts).to.be.at.least(1)
  })
  it('registry fetch into memory resumes after a 15 s gap', async () => {
    // 100 kB/s and a 1 MB layer: its later chunks leave the holder while the gap lasts.
    const [holder, puller] = await startPair({ latencyMs: 5, jitterMs: 0, bandwidthKbps: 800 })
    const layout = join(root, 'image')
    await writeRandomImage(layout, 'memory', [localPlatform().architecture], 1_000_000)
    await publishImage(holder.agent!.context, 'demo/memory:v1', `${layout}:memory`)
    await waitUntil(() => puller.agent!.context.catalog.get('demo/memory', 'v1') != null, 'the puller to learn the tag', 30_000)
    const backend = new AgentRegistryBackend(puller.agent!.context)
    const index = await backend.resolveTag('demo/memory', 'v1')
    const indexBytes = await holder.agent!.context.store.read(index!.digest)
    const parsedIndex = parseManifest(indexBytes)
    assert(parsedIndex.kind === 'index')
    const manifest = parsedIndex.manifests[0]!
    const manifestBytes = (await backend.fetchBlob(manifest.digest, { sizeBytes: manifest.size, parent: index!.digest }))?.bytes
    const parsedManifest = parseManifest(manifestBytes!)
    assert(parsedManifest.kind === 'image')
    const layer = parsedManifest.layers[0]!

    const fetched = await backend.fetchBlob(layer.digest, { sizeBytes: layer.size, parent: manifest.digest })
    expect(fetched?.arriving, 'the layer comes back while it arrives').to.not.equal(undefined)
    await pauseLink()
    const bytes = await fetched!.arriving!.done

    expect(bytes?.byteLength).to.equal(layer.size)
    expect(Buffer.from(bytes!).equals(await holder.agent!.context.store.read(layer.digest))).to.equal(true)
  })
})
