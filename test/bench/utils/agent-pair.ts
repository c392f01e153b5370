/**
 * Two in-process agents on loopback TCP, connected to each other: a server
 * that published the fixture images and a client that fetches them. Both run
 * in the benchmark's process, as the HTTP floor's server and client do, so
 * both sides of every transfer share one event loop in either case.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { multiaddr } from '@multiformats/multiaddr'
import { Agent } from '../../../node/agent/agent.js'
import { publishImage } from '../../../node/agent/publish.js'
import { initDataDir } from '../../../node/config/init.js'
import { TAG_TOPIC } from '../../../protocol/constants.js'
import { fixture } from '../../utils/paths.js'
import type { PeerId } from '@libp2p/interface'

/** Time the pair has to connect and to see the client's catalog learn the published tag. */
const SETUP_TIMEOUT_MS = 20_000

export interface AgentPair {
  server: Agent
  client: Agent
  /** The server's peer ID, taken from the client's connection to it. */
  serverPeer: PeerId
  close: () => Promise<void>
}

async function startInProcessAgent (prefix: string): Promise<Agent> {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  await initDataDir(dir)
  return Agent.start({ dir, listen: ['/ip4/127.0.0.1/tcp/0'], registry: 'off', controlApi: false })
}

async function waitUntil (condition: () => boolean, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    }
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

/**
 * Starts the pair, publishes `micro-httpd:v1` and `busybox:1.35-amd64` from
 * test/fixtures on the server, and waits until the client's catalog contains
 * both tags, so a pull on the client starts from a known tag.
 */
export async function startAgentPair (): Promise<AgentPair> {
  const started: Agent[] = []
  const close = async (): Promise<void> => {
    for (const agent of started.reverse()) {
      await agent.stop()
      await rm(agent.context.dir, { recursive: true, force: true })
    }
  }

  try {
    const server = await startInProcessAgent('km-bench-server-')
    started.push(server)
    const client = await startInProcessAgent('km-bench-client-')
    started.push(client)

    const address = server.multiaddrs()[0]
    if (address == null) {
      throw new Error('the benchmark server agent has no listen address')
    }
    const connection = await client.node.dial(multiaddr(address), { signal: AbortSignal.timeout(SETUP_TIMEOUT_MS) })

    // A record published before the server has received the client's
    // subscription reaches no one, so wait for the subscription first.
    const clientPeerId = client.peerId
    await waitUntil(
      () => server.node.services.pubsub.getSubscribers(TAG_TOPIC).some(peer => peer.toString() === clientPeerId),
      'the server agent to see the client subscribe to the tag topic',
      SETUP_TIMEOUT_MS
    )

    await publishImage(server.context, 'micro-httpd:v1', `${fixture('micro-httpd')}:v1`)
    await publishImage(server.context, 'busybox:1.35-amd64', `${fixture('busybox')}:1.35-amd64`)
    await waitUntil(
      () => client.context.catalog.get('micro-httpd', 'v1') != null && client.context.catalog.get('busybox', '1.35-amd64') != null,
      'the client agent to receive the published tags by gossip',
      SETUP_TIMEOUT_MS
    )

    return { server, client, serverPeer: connection.remotePeer, close }
  } catch (err) {
    await close()
    throw err
  }
}
