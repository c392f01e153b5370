/**
 * Helpers for partition tests of real agent processes on loopback: a fully
 * meshed set of agents with the test hooks on, cuts between groups through
 * the agents' own connection gaters (`POST /v1/debug/block`), and reads of
 * their catalogs through the CLI.
 */
import { expect } from 'chai'
import { ControlClient } from '../../../node/control/client.js'
import { runCliOk, startAgent, type TestAgent } from '../../utils/agents.js'
import type { CatalogStatsView, RecordView, TagView } from '../../../node/control/routes/catalog.js'

/** Environment of every agent in these tests: test hooks on, catalog and sync logs on stderr. */
export const AGENT_ENV = { KILOMESH_TEST_HOOKS: '1', DEBUG: 'kilomesh:catalog*,kilomesh:sync*,kilomesh:control*' }

export interface MeshAgent extends TestAgent {
  name: string
  peerId: string
}

/**
 * Starts agents one after another; each one bootstraps from every agent
 * started before it, so every pair has a link the connectivity keeper redials.
 */
export async function startMesh (names: string[], env: Record<string, Record<string, string>> = {}): Promise<MeshAgent[]> {
  const agents: MeshAgent[] = []
  try {
    for (const name of names) {
      const agent = await startAgent({
        bootstrap: agents.map(previous => previous.info.multiaddrs[0] ?? ''),
        env: { ...AGENT_ENV, ...env[name] }
      })
      agents.push({ ...agent, name, peerId: agent.info.peerId })
    }
  } catch (err) {
    await Promise.all(agents.map(async agent => agent.stop('SIGKILL')))
    throw err
  }
  return agents
}

/** Polls `check` every `intervalMs` until it returns true; fails with `description` after `timeoutMs`. */
export async function waitFor (description: string, check: () => Promise<boolean>, timeoutMs = 30_000, intervalMs = 250): Promise<number> {
  const startedMs = Date.now()
  while (!await check()) {
    if (Date.now() - startedMs > timeoutMs) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${description}`)
    }
    await new Promise(resolve => setTimeout(resolve, intervalMs))
  }
  return Date.now() - startedMs
}

async function post (agent: MeshAgent, path: string, body: unknown): Promise<unknown> {
  const client = await ControlClient.connect(agent.dir)
  return client.post(path, body)
}

/** Cuts every link between the two groups: each agent blocks the peers of the other group. */
export async function cut (left: MeshAgent[], right: MeshAgent[]): Promise<void> {
  await Promise.all([
    ...left.map(async agent => post(agent, '/debug/block', { peers: right.map(other => other.peerId) })),
    ...right.map(async agent => post(agent, '/debug/block', { peers: left.map(other => other.peerId) }))
  ])
}

/** Unblocks every peer on every agent; the agents' connectivity keepers reconnect them. */
export async function heal (agents: MeshAgent[]): Promise<void> {
  await Promise.all(agents.map(async agent => post(agent, '/debug/unblock', {})))
}

/** Returns an agent's catalog and sync counters and its clocks. */
export async function catalogStats (agent: MeshAgent): Promise<CatalogStatsView> {
  const client = await ControlClient.connect(agent.dir)
  return client.get<CatalogStatsView>('/catalog/stats')
}

/** Returns the peer IDs an agent is connected to. */
export async function connectedPeers (agent: MeshAgent): Promise<string[]> {
  const client = await ControlClient.connect(agent.dir)
  const peers = await client.get<Array<{ peerId: string }>>('/peers')
  return peers.map(peer => peer.peerId)
}

/** Returns every tag of an agent's catalog, deleted ones and history included, through `kilomesh tags --json --history`. */
export async function tagsOf (agent: MeshAgent, repository?: string): Promise<TagView[]> {
  const args = ['tags', ...(repository == null ? [] : [repository]), '--history', '--json', '--dir', agent.dir]
  return JSON.parse(await runCliOk(args)) as TagView[]
}

/** Returns the current record of one tag on an agent, or undefined when the agent does not know the tag. */
export async function currentRecord (agent: MeshAgent, repository: string, tag: string): Promise<RecordView | undefined> {
  return (await tagsOf(agent, repository)).find(view => view.tag === tag)?.current ?? undefined
}

/** Returns a string that is equal on two agents exactly when their catalogs hold the same winners. */
export function catalogFingerprint (tags: TagView[]): string {
  return tags
    .map(view => `${view.repository}:${view.tag}=${view.current == null ? 'held only' : `${view.current.digest ?? 'deleted'}@${view.current.hlc}/${view.current.publisher}`}`)
    .sort()
    .join('\n')
}

/** Waits until every agent has the same winners, then returns that common catalog. */
export async function waitForAgreement (agents: MeshAgent[], timeoutMs: number): Promise<TagView[]> {
  let catalogs: TagView[][] = []
  await waitFor(`${agents.length} agents to agree on their catalogs`, async () => {
    catalogs = await Promise.all(agents.map(async agent => tagsOf(agent)))
    return new Set(catalogs.map(catalogFingerprint)).size === 1
  }, timeoutMs, 500)
  return catalogs[0] ?? []
}

/** Trusts each publisher for `pattern` on every agent, so that several devices may publish to one repository. */
export async function trustEverywhere (agents: MeshAgent[], publishers: MeshAgent[], pattern: string): Promise<void> {
  for (const agent of agents) {
    for (const publisher of publishers) {
      await runCliOk(['trust', 'add', publisher.peerId, '--repository', pattern, '--dir', agent.dir])
    }
  }
}

/** Expects `record` to be the same record as `expected`: digest, clock and publisher. */
export function expectSameRecord (record: RecordView | undefined, expected: RecordView, what: string): void {
  expect(record, what).to.not.equal(undefined)
  expect(record?.digest, `${what}: digest`).to.equal(expected.digest)
  expect(record?.hlc, `${what}: clock`).to.equal(expected.hlc)
  expect(record?.publisher, `${what}: publisher`).to.equal(expected.publisher)
}
