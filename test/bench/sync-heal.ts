/**
 * Heal measurements with real agents: 20 agents started in this process
 * with `Agent.start` on loopback TCP, split into two groups of 10 by their
 * connection gaters (the test hooks' peer blocklist), each group publishing
 * while split, then healed. The figure is the time from the heal until every
 * agent holds the same catalog winners.
 */
import { randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { Agent } from '../../node/agent/agent.js'
import { publishTag } from '../../node/agent/publish.js'
import { initDataDir } from '../../node/config/init.js'
import { digestOf } from '../../protocol/digest.js'

/** Agents per group; the mesh has two groups. */
export const HEAL_GROUP_SIZE = 10

/** Records each agent publishes during each split. */
export const HEAL_RECORDS_PER_AGENT = 5

/** Split-and-heal rounds per heal mode, on the same mesh. */
export const HEAL_ROUNDS = 3

/** How the links across the cut come back. */
export type HealMode = 'pairs' | 'one-link'

export interface HealResult {
  mode: HealMode
  /** Whether the agents ran the Kademlia DHT. */
  dht: boolean
  /** Milliseconds from the heal until all agents agree. */
  healMs: number
  /** Milliseconds from the heal until the dials across the cut returned. */
  reconnectMs: number
  tags: number
}

function sleep (ms: number): Promise<void> {
  return new Promise(resolve => setTimeout(resolve, ms))
}

const fingerprints = new WeakMap<Agent, { version: number, value: string }>()

/** Returns a string equal on two agents exactly when they hold the same winners, recomputed only when the catalog changed. */
function fingerprint (agent: Agent): string {
  const { catalog } = agent.context
  const cached = fingerprints.get(agent)
  if (cached?.version === catalog.version) {
    return cached.value
  }

  const value = catalog.list().map(signed => Buffer.from(signed.envelope).toString('base64')).join(',')
  fingerprints.set(agent, { version: catalog.version, value })
  return value
}

async function waitForAgreement (agents: Agent[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (new Set(agents.map(fingerprint)).size > 1) {
    if (Date.now() > deadline) {
      throw new Error(`${agents.length} agents did not agree within ${timeoutMs} ms`)
    }
    await sleep(10)
  }
}

function addressOf (agent: Agent): string {
  const address = agent.multiaddrs()[0]
  if (address == null) {
    throw new Error(`agent ${agent.peerId} listens on no address`)
  }
  return address
}

/**
 * Starts a chain with chords: agent i bootstraps from agents i-1 and i-2, so
 * each group is a few hops wide and only agents near the boundary link the groups.
 */
async function startChain (count: number, dht: boolean): Promise<Agent[]> {
  const agents: Agent[] = []
  for (let index = 0; index < count; index++) {
    const dir = await mkdtemp(join(tmpdir(), 'km-heal-'))
    await initDataDir(dir)
    // Every agent accepts every signed record, so both groups may publish the shared tag.
    const configPath = join(dir, 'config.json')
    const config = JSON.parse(await readFile(configPath, 'utf8')) as Record<string, unknown>
    await writeFile(configPath, JSON.stringify({ ...config, trust: { mode: 'any' } }))

    const bootstrap = agents.slice(Math.max(0, index - 2)).map(addressOf)
    agents.push(await Agent.start({ dir, listen: ['/ip4/127.0.0.1/tcp/0'], registry: 'off', controlApi: false, mdns: false, dht, testHooks: true, bootstrap }))
  }
  return agents
}

async function cut (groups: Agent[][]): Promise<void> {
  const [left, right] = groups as [Agent[], Agent[]]
  const block = async (agents: Agent[], others: Agent[]): Promise<void> => {
    await Promise.all(agents.map(async agent => {
      agent.context.blocklist?.block(others.map(other => other.peerId))
      await Promise.all(others.map(async other => agent.node.hangUp(peerIdFromString(other.peerId))))
    }))
  }
  await block(left, right)
  await block(right, left)
}

/** Publishes records of each agent's own, and the shared tag from the first agent of each group. */
async function publishDuringSplit (groups: Agent[][], round: number): Promise<void> {
  for (const [groupIndex, group] of groups.entries()) {
    for (const [agentIndex, agent] of group.entries()) {
      for (let record = 0; record < HEAL_RECORDS_PER_AGENT; record++) {
        const content = new TextEncoder().encode(`${groupIndex}/${agentIndex}/${round}/${record}/${randomBytes(4).toString('hex')}`)
        const descriptor = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: digestOf(content), size: content.byteLength }
        await publishTag(agent.context, `group${groupIndex}/agent${agentIndex}`, `r${round}-${record}`, descriptor)
        if (agentIndex === 0 && record === 0) {
          await publishTag(agent.context, 'shared/app', 'stable', descriptor)
        }
      }
    }
  }
}

/**
 * Splits the mesh, publishes on both sides, then heals it: in mode "pairs"
 * agent i of one group dials agent i of the other, in mode "one-link" only
 * the two agents next to the boundary reconnect.
 */
async function splitAndHeal (agents: Agent[], mode: HealMode, round: number, dht: boolean): Promise<HealResult> {
  const groups = [agents.slice(0, HEAL_GROUP_SIZE), agents.slice(HEAL_GROUP_SIZE)]
  const [left, right] = groups as [Agent[], Agent[]]

  await cut(groups)
  await publishDuringSplit(groups, round)
  await waitForAgreement(left, 60_000)
  await waitForAgreement(right, 60_000)

  const startedMs = performance.now()
  for (const agent of agents) {
    agent.context.blocklist?.unblock()
  }
  const pairs = mode === 'pairs' ? left.map((agent, index) => [agent, right[index] as Agent]) : [[left[left.length - 1] as Agent, right[0] as Agent]]
  await Promise.all(pairs.map(async ([from, to]) => (from as Agent).node.dial(multiaddr(addressOf(to as Agent)))))
  const reconnectMs = performance.now() - startedMs
  await waitForAgreement(agents, 120_000)

  return { mode, dht, healMs: performance.now() - startedMs, reconnectMs, tags: agents[0]?.context.catalog.list().length ?? 0 }
}

/** Runs HEAL_ROUNDS rounds of each heal mode, alternating, on one 20-agent mesh and returns every result. */
export async function measureAgentHeal (options: { dht: boolean }): Promise<HealResult[]> {
  let agents: Agent[] = []
  try {
    agents = await startChain(2 * HEAL_GROUP_SIZE, options.dht)
    await waitForAgreement(agents, 30_000)
    await sleep(2_000)

    const results: HealResult[] = []
    for (let round = 0; round < HEAL_ROUNDS * 2; round++) {
      results.push(await splitAndHeal(agents, round % 2 === 0 ? 'pairs' : 'one-link', round, options.dht))
    }
    return results
  } finally {
    await Promise.all(agents.map(async agent => agent.stop()))
    await Promise.all(agents.map(async agent => rm(agent.context.dir, { recursive: true, force: true })))
  }
}
