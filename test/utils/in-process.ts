/**
 * Real agents started inside the test process, on loopback TCP, for tests
 * that inspect an agent's internals (DHT, fetcher counters) directly.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Agent, type AgentOptions } from '../../node/agent/agent.js'
import { initDataDir } from '../../node/config/init.js'

/** Initialises a data directory and starts an agent on it. */
export async function startLocalAgent (options: Partial<AgentOptions> = {}): Promise<Agent> {
  const dir = options.dir ?? await mkdtemp(join(tmpdir(), 'km-local-'))
  await initDataDir(dir)
  return Agent.start({ listen: ['/ip4/127.0.0.1/tcp/0'], registry: 'off', controlApi: false, ...options, dir })
}

/** First dialable address of an agent, ending in /p2p/PEER_ID. */
export function addressOf (agent: Agent): string {
  const address = agent.multiaddrs()[0]
  if (address == null) {
    throw new Error(`agent ${agent.peerId} has no listen address`)
  }
  return address
}

/** Stops agents and removes their data directories. */
export async function stopLocalAgents (agents: Agent[]): Promise<void> {
  await Promise.all(agents.map(async agent => agent.stop()))
  await Promise.all(agents.map(async agent => rm(agent.context.dir, { recursive: true, force: true })))
}

/** Polls `condition` every 50 ms until it holds, failing after `timeoutMs`. */
export async function waitUntil (condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await condition()) {
      return
    }
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
}
