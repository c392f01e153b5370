/**
 * Throughput of the ~1 MB busybox amd64 layer over `/kilomesh/blob/1.0.0`,
 * against the HTTP floor and against a bare libp2p stream carrying the same
 * bytes over the same connection.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { BlobStore } from '../../../node/store/blob-store.js'
import { fixture } from '../../utils/paths.js'
import { BARE_PROTOCOL, bareStreamChunks, handleBareStream, readBareStream } from './bare-stream.js'
import { readBlobToMemory } from './blob-read.js'
import { blobPath, readImageBlobs } from './fixture-images.js'
import { KeepAliveClient, startBlobHttpServer } from './http-floor.js'
import { runRounds, type RoundOptions, type Variant } from './rounds.js'
import { formatMegabytesPerSecond, megabytesPerSecond, summarize } from './stats.js'
import type { AgentPair } from './agent-pair.js'
import type { BenchRow } from './table.js'

/** Smallest share of the HTTP floor's throughput that meets the target. */
const MIN_FLOOR_SHARE = 0.25

/** Largest factor by which the blob protocol may take longer than the bare stream. */
const MAX_BARE_STREAM_FACTOR = 1.2

export interface ThroughputBenchResult {
  rows: BenchRow[]
  notes: string[]
}

/** Runs the throughput benchmark on a started pair whose server published busybox:1.35-amd64. */
export async function measureThroughput (pair: AgentPair, options: RoundOptions): Promise<ThroughputBenchResult> {
  const image = await readImageBlobs(fixture('busybox'), '1.35-amd64')
  const sizeBytes = image.layerSizeBytes
  const layerBytes = await readFile(fixture('busybox', 'blobs', 'sha256', image.layer.slice('sha256:'.length)))
  const clientStore = pair.client.context.store

  const http = await startBlobHttpServer([fixture('busybox')])
  const httpClient = new KeepAliveClient(http.url)
  await handleBareStream(pair.server.node, layerBytes)
  const floorStoreDir = await mkdtemp(join(tmpdir(), 'km-bench-floor-'))
  const floorStore = new BlobStore(floorStoreDir)
  await floorStore.init()
  const bareStoreDir = await mkdtemp(join(tmpdir(), 'km-bench-bare-'))
  const bareStore = new BlobStore(bareStoreDir)
  await bareStore.init()

  const variants: Record<string, Variant> = {
    fetch: {
      prepare: async () => { await clientStore.delete(image.layer) },
      run: async () => {
        await pair.client.context.fetcher.fetch(image.layer, { sizeBytes, preferredPeers: [pair.serverPeer] })
      }
    },
    protocol: {
      run: async () => { await readBlobToMemory(pair, image.layer) }
    },
    bare: {
      run: async () => { await readBareStream(pair.client.node, pair.serverPeer, sizeBytes) }
    },
    bareIntoStore: {
      prepare: async () => { await bareStore.delete(image.layer) },
      run: async () => { await bareStore.putStream(bareStreamChunks(pair.client.node, pair.serverPeer, sizeBytes), image.layer, { expectedSizeBytes: sizeBytes }) }
    },
    floor: {
      run: async () => { await httpClient.getBytes(blobPath(image.layer)) }
    },
    floorIntoStore: {
      prepare: async () => { await floorStore.delete(image.layer) },
      run: async () => { await floorStore.putStream(await httpClient.get(blobPath(image.layer)), image.layer, { expectedSizeBytes: sizeBytes }) }
    }
  }

  let samples: Record<string, number[]>
  try {
    samples = await runRounds(variants, options)
  } finally {
    httpClient.close()
    await http.close()
    await pair.server.node.unhandle(BARE_PROTOCOL)
    await rm(floorStoreDir, { recursive: true, force: true })
    await rm(bareStoreDir, { recursive: true, force: true })
  }

  const throughput = (name: string): number => megabytesPerSecond(sizeBytes, summarize(samples[name] ?? []).median)
  const fetch = throughput('fetch')
  const protocol = throughput('protocol')
  const bare = throughput('bare')
  const bareIntoStore = throughput('bareIntoStore')
  const floor = throughput('floor')
  const floorIntoStore = throughput('floorIntoStore')
  const minBareShare = 1 / MAX_BARE_STREAM_FACTOR

  const rows: BenchRow[] = [
    {
      measure: 'Layer fetch into the store vs HTTP floor',
      kilomesh: formatMegabytesPerSecond(fetch),
      baseline: formatMegabytesPerSecond(floor),
      ratio: fetch / floor,
      target: `≥ ${MIN_FLOOR_SHARE}x the floor`,
      met: fetch / floor >= MIN_FLOOR_SHARE
    },
    {
      measure: 'Layer fetch into the store vs bare libp2p stream into a BlobStore',
      kilomesh: formatMegabytesPerSecond(fetch),
      baseline: formatMegabytesPerSecond(bareIntoStore),
      ratio: fetch / bareIntoStore,
      target: `≥ ${minBareShare.toFixed(2)}x the bare stream, i.e. within ${MAX_BARE_STREAM_FACTOR}x`,
      met: fetch / bareIntoStore >= minBareShare
    },
    {
      measure: 'Blob protocol to memory vs bare libp2p stream to memory',
      kilomesh: formatMegabytesPerSecond(protocol),
      baseline: formatMegabytesPerSecond(bare),
      ratio: protocol / bare,
      target: `≥ ${minBareShare.toFixed(2)}x the bare stream, i.e. within ${MAX_BARE_STREAM_FACTOR}x`,
      met: protocol / bare >= minBareShare
    },
    {
      measure: 'Layer fetch into the store vs bare libp2p stream to memory',
      kilomesh: formatMegabytesPerSecond(fetch),
      baseline: formatMegabytesPerSecond(bare),
      ratio: fetch / bare
    },
    {
      measure: 'Layer fetch into the store vs HTTP into a BlobStore',
      kilomesh: formatMegabytesPerSecond(fetch),
      baseline: formatMegabytesPerSecond(floorIntoStore),
      ratio: fetch / floorIntoStore
    },
    {
      measure: 'Bare libp2p stream vs HTTP floor',
      kilomesh: formatMegabytesPerSecond(bare),
      baseline: formatMegabytesPerSecond(floor),
      ratio: bare / floor
    }
  ]

  const notes = [
    `Layer: ${image.layer} (${sizeBytes} bytes). Throughput is the layer size over the median transfer time of ${options.rounds} rounds after ${options.warmupRounds} warm-up rounds. A ratio above 1 means kilomesh is faster.`,
    'Layer fetch: `BlobFetcher.fetch` with the server as preferred source. It hashes every chunk and writes it to a temporary file, then fsyncs and renames the file into the store, which is emptied before every round. Blob protocol to memory: `requestBlob` with the body counted and dropped. Bare stream: a benchmark-only protocol whose handler writes the same bytes from memory in 64 KiB chunks over the same connection. HTTP floor: `GET` over a keep-alive connection from a plain Node server that streams the file. The client keeps the body in memory.',
    'The bare stream target ("within 1.2x of the bare stream, the protocol\'s own overhead") is checked twice, each time with the same work on both sides. The second row stores both: the bare stream\'s bytes go through `BlobStore.putStream` (hash, write, fsync, rename) into a store of their own. The third keeps both in memory: the request, the response header, and the server reading the verified blob from its store, against bytes counted and dropped. The fourth row compares the whole fetch, storage included, with the bare stream to memory, so it also shows what the durable write costs. The fifth puts the same storage work on the HTTP side, so its ratio is the network path alone.'
  ]
  return { rows, notes }
}
