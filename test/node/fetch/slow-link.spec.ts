/**
 * Pulls between two real agents over a simulated slow link. Yamux hands a
 * stream its data one whole frame at a time, so on a slow link a transfer's
 * stream can go longer than the stall timeout without a byte while the link
 * is busy delivering that frame.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect } from 'chai'
import { publishImage } from '../../../node/agent/publish.js'
import { pullImage } from '../../../node/agent/pull.js'
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
    // What either side sends in the next 6 s arrives 15 s later, and
    // everything after it waits behind it: a gap longer than the stall
    // timeout in the middle of the pull, on a connection that stays open.
    network.addRule({ from: { kind: 'all' }, to: { kind: 'all' }, params: { latencyMs: 15_000 } })
    await new Promise(resolve => setTimeout(resolve, 6_000))
    network.addRule({ from: { kind: 'all' }, to: { kind: 'all' }, params: { latencyMs: 5 } })
    const result = await pulling

    expect(result.fetchedBlobs).to.be.at.least(3)
    expect(stats.failedAttempts).to.be.at.least(1)
  })
})
