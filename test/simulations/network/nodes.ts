/**
 * Bare libp2p nodes (memory transport, noise, yamux, ping and a byte sink
 * protocol) wired to a SimNetwork, for testing the fault layer without the
 * rest of the agent.
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import { memory } from '@libp2p/memory'
import { noise } from '@libp2p/noise'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { ping, type Ping } from '@libp2p/ping'
import { yamux } from '@libp2p/yamux'
import { createLibp2p, type Libp2p } from 'libp2p'
import type { SimNetwork } from '../../../simulations/network/network.js'
import type { Stream } from '@libp2p/interface'

/** Protocol whose handler reads a stream to its end and reports the bytes it got. */
export const SINK_PROTOCOL = '/kilomesh-test/sink/1.0.0'

export type TestNode = Libp2p<{ ping: Ping }>

export interface SinkResult {
  bytes: Uint8Array
  finishedAtMs: number
}

let run = 0

/** Starts `count` nodes registered as indices 0..count-1; `received` collects what each sink stream got. */
export async function startNodes (network: SimNetwork, count: number, received: SinkResult[] = []): Promise<TestNode[]> {
  run++
  const nodes: TestNode[] = []
  for (let index = 0; index < count; index++) {
    const privateKey = await generateKeyPair('Ed25519')
    network.register(index, peerIdFromPrivateKey(privateKey).toString())
    const node = await createLibp2p({
      privateKey,
      addresses: { listen: [`/memory/sim-test-${process.pid}-${run}-${index}`] },
      transports: [memory()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      connectionGater: { denyDialMultiaddr: () => false, ...network.gaterFor(index) },
      connectionProtector: network.protectorFor(index),
      services: { ping: ping() }
    })
    await node.handle(SINK_PROTOCOL, async (stream: Stream) => {
      const chunks: Uint8Array[] = []
      for await (const chunk of stream) {
        chunks.push(chunk.subarray())
      }
      received.push({ bytes: Buffer.concat(chunks), finishedAtMs: performance.now() })
      await stream.close()
    })
    nodes.push(node)
  }
  return nodes
}

/** Writes `bytes` to the sink of `to` in chunks of `chunkBytes`, respecting backpressure, then closes the stream. */
export async function sendToSink (from: TestNode, to: TestNode, bytes: Uint8Array, chunkBytes = 16 * 1024): Promise<void> {
  const stream = await from.dialProtocol(to.getMultiaddrs(), SINK_PROTOCOL)
  for (let offset = 0; offset < bytes.byteLength; offset += chunkBytes) {
    if (!stream.send(bytes.subarray(offset, offset + chunkBytes))) {
      await stream.onDrain()
    }
  }
  await stream.close()
}

/** Waits until `condition` holds, checking every 10 ms; throws after `timeoutMs`. */
export async function waitFor (condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = performance.now() + timeoutMs
  while (!condition()) {
    if (performance.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    }
    await new Promise(resolve => setTimeout(resolve, 10))
  }
}
