/**
 * Pulling micro-httpd:v1 (manifest, then config and layer) from a connected
 * agent, against the same three requests to the HTTP floor.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pullImage } from '../../../node/agent/pull.js'
import { BlobStore } from '../../../node/store/blob-store.js'
import { fixture } from '../../utils/paths.js'
import { readBlobToMemory } from './blob-read.js'
import { blobPath, readImageBlobs } from './fixture-images.js'
import { startBlobHttpServer, KeepAliveClient } from './http-floor.js'
import { runRounds, type RoundOptions, type Variant } from './rounds.js'
import { formatMs, summarize } from './stats.js'
import type { AgentPair } from './agent-pair.js'
import type { BenchRow } from './table.js'
import type { OciDigest } from '../../../protocol/digest.js'

/** Largest ratio of kilomesh's median pull time to the HTTP floor's that meets the target. */
const MAX_PULL_RATIO = 3

export interface PullBenchResult {
  rows: BenchRow[]
  notes: string[]
}

/** Runs the pull benchmark on a started pair whose server published micro-httpd:v1. */
export async function measurePull (pair: AgentPair, options: RoundOptions): Promise<PullBenchResult> {
  const image = await readImageBlobs(fixture('micro-httpd'), 'v1')
  const digests = [image.manifest, image.config, image.layer]
  const clientStore = pair.client.context.store

  const http = await startBlobHttpServer([fixture('micro-httpd')])
  const httpClient = new KeepAliveClient(http.url)
  const floorStoreDir = await mkdtemp(join(tmpdir(), 'km-bench-floor-'))
  const floorStore = new BlobStore(floorStoreDir)
  await floorStore.init()

  // Each variant starts from a store without the image, so every round really transfers it.
  const forget = async (store: BlobStore): Promise<void> => {
    for (const digest of digests) {
      await store.delete(digest)
    }
  }

  const variants: Record<string, Variant> = {
    pull: {
      prepare: async () => { await forget(clientStore) },
      run: async () => {
        const result = await pullImage(pair.client.context, 'micro-httpd:v1')
        if (result.fetchedBlobs !== digests.length) {
          throw new Error(`pull of micro-httpd:v1 fetched ${result.fetchedBlobs} blobs, expected ${digests.length}; check that the client's store is emptied before each round`)
        }
      }
    },
    fetcher: {
      prepare: async () => { await forget(clientStore) },
      run: async () => {
        const fetcher = pair.client.context.fetcher
        const preferredPeers = [pair.serverPeer]
        await fetcher.fetch(image.manifest, { preferredPeers })
        await Promise.all([image.config, image.layer].map(async digest => fetcher.fetch(digest, { preferredPeers })))
      }
    },
    floor: {
      run: async () => {
        const manifest = JSON.parse((await httpClient.getBytes(blobPath(image.manifest))).toString('utf8')) as { config: { digest: OciDigest }, layers: Array<{ digest: OciDigest }> }
        await httpClient.getBytes(blobPath(manifest.config.digest))
        for (const layer of manifest.layers) {
          await httpClient.getBytes(blobPath(layer.digest))
        }
      }
    },
    request: {
      run: async () => { await readBlobToMemory(pair, image.manifest) }
    },
    get: {
      run: async () => { await httpClient.getBytes(blobPath(image.manifest)) }
    },
    floorIntoStore: {
      prepare: async () => { await forget(floorStore) },
      run: async () => {
        for (const digest of digests) {
          await floorStore.putStream(await httpClient.get(blobPath(digest)), digest)
        }
      }
    }
  }

  let samples: Record<string, number[]>
  try {
    samples = await runRounds(variants, options)
    if (http.connectionCount() !== 1) {
      throw new Error(`the HTTP floor opened ${http.connectionCount()} connections instead of keeping one alive`)
    }
  } finally {
    httpClient.close()
    await http.close()
    await rm(floorStoreDir, { recursive: true, force: true })
  }

  const pull = summarize(samples.pull ?? [])
  const fetcher = summarize(samples.fetcher ?? [])
  const floor = summarize(samples.floor ?? [])
  const floorIntoStore = summarize(samples.floorIntoStore ?? [])
  const request = summarize(samples.request ?? [])
  const get = summarize(samples.get ?? [])

  const rows: BenchRow[] = [
    {
      measure: 'Pull micro-httpd:v1, median',
      kilomesh: formatMs(pull.median),
      baseline: formatMs(floor.median),
      ratio: pull.median / floor.median,
      target: `≤ ${MAX_PULL_RATIO}x the floor`,
      met: pull.median / floor.median <= MAX_PULL_RATIO
    },
    {
      measure: 'Pull micro-httpd:v1, p90',
      kilomesh: formatMs(pull.p90),
      baseline: formatMs(floor.p90),
      ratio: pull.p90 / floor.p90
    },
    {
      measure: 'Same 3 blobs, fetcher with the server preferred vs HTTP into a BlobStore, median',
      kilomesh: formatMs(fetcher.median),
      baseline: formatMs(floorIntoStore.median),
      ratio: fetcher.median / floorIntoStore.median
    },
    {
      measure: 'One request for the manifest, blob protocol vs HTTP GET, median',
      kilomesh: formatMs(request.median),
      baseline: formatMs(get.median),
      ratio: request.median / get.median
    }
  ]

  const notes = [
    `Pull: \`pullImage\` on the client agent, which is what \`kilomesh pull\` runs. It takes the tag from the local catalog, fetches the manifest, then the config and the layer at once, and hashes, writes, fsyncs and renames each blob into the store. The floor sends \`GET\` for the manifest, then for the config and the layer, over one HTTP/1.1 keep-alive connection, and keeps the bodies in memory. The image is ${image.totalBytes} bytes in all. ${options.rounds} rounds follow ${options.warmupRounds} warm-up rounds, and the store is emptied before every round.`,
    'Third row: the blob fetcher alone, with the serving peer named up front, so no peer is first asked whether it has each blob. Its baseline writes the same blobs from HTTP through the same `BlobStore.putStream`. Both sides do the same hashing and durable writes, so this ratio is the network path alone.',
    `Fourth row: one \`/kilomesh/blob/1.0.0\` request for the ${image.manifestSizeBytes}-byte manifest, with the body counted and dropped. It opens a new stream, waits one multistream-select round trip, then sends the request and reads the response. The baseline is one \`GET\` on the open keep-alive connection, so the ratio is the fixed cost of one request.`
  ]
  return { rows, notes }
}
