import { expect } from 'chai'
import { join } from 'node:path'
import { LevelDatastore } from 'datastore-level'
import { OWNER_KEY_PREFIX, TAG_KEY_PREFIX } from '../../../node/catalog/constants.js'
import { decodeTagEntry, repositoryOfOwnerKey } from '../../../node/catalog/persistence.js'
import { openTagRecord } from '../../../protocol/tag-record.js'
import { cleanUp, startAgent, type TestAgent } from '../../utils/agents.js'
import { signRecord } from '../catalog/records.js'
import { AGENT_ENV, catalogStats, startMesh, tagsOf, waitFor, type MeshAgent } from './mesh.js'
import { startRecordPeer, type RecordPeer } from './record-peer.js'
import type { SignedTagRecord } from '../../../protocol/tag-record.js'

const RECORDS = 4000
const REPOSITORIES = 50

/** Applied records after which the agent is killed, well before the session can finish. */
const KILL_AFTER_APPLIED = 200

interface StoredCatalog {
  tags: number
  owners: Map<string, string>
  repositories: Set<string>
}

/** Reads a stopped agent's catalog straight from its LevelDB and verifies every stored envelope. */
async function readStoredCatalog (dir: string): Promise<StoredCatalog> {
  const datastore = new LevelDatastore(join(dir, 'datastore'))
  await datastore.open()
  try {
    const owners = new Map<string, string>()
    for await (const { key, value } of datastore.query({ prefix: `${OWNER_KEY_PREFIX}/` })) {
      owners.set(repositoryOfOwnerKey(key), new TextDecoder().decode(value))
    }

    let tags = 0
    const repositories = new Set<string>()
    for await (const { value } of datastore.query({ prefix: `${TAG_KEY_PREFIX}/` })) {
      const entry = decodeTagEntry(value)
      const opened = await openTagRecord(entry.winner.envelope)
      expect(opened.record, 'stored record matches its signed envelope').to.deep.equal(entry.winner.record)
      repositories.add(entry.winner.record.repository)
      tags++
    }
    return { tags, owners, repositories }
  } finally {
    await datastore.close()
  }
}

function countApplied (logs: string): number {
  return logs.match(/applied bulk\//g)?.length ?? 0
}

describe('agent killed during a sync', function () {
  this.timeout(180_000)
  let agents: MeshAgent[] = []
  let restarted: TestAgent | undefined
  let peer: RecordPeer
  let records: SignedTagRecord[]

  before(async () => {
    agents = await startMesh(['victim'])
    peer = await startRecordPeer()
    records = []
    const wallMs = Date.now()
    for (let index = 0; index < RECORDS; index++) {
      records.push(await signRecord(peer.publisher, { repository: `bulk/app${index % REPOSITORIES}`, tag: `v${index}`, hlc: { wallMs, counter: 0 } }))
    }
    await peer.offer(records)
  })

  after(async () => {
    await peer?.stop()
    await cleanUp([...agents, ...(restarted == null ? [] : [restarted])])
  })

  it('restarts with a consistent catalog', async () => {
    const victim = agents[0] as MeshAgent

    await peer.dial(victim.info.multiaddrs[0] ?? '')
    await waitFor(`${KILL_AFTER_APPLIED} applied records`, async () => countApplied(victim.logs()) >= KILL_AFTER_APPLIED, 60_000, 2)
    await victim.stop('SIGKILL')

    // Every stored tag verifies, and every repository that has a tag has its first-use owner, written in the same batch.
    const stored = await readStoredCatalog(victim.dir)
    expect(stored.tags, 'tags stored before the kill').to.be.at.least(KILL_AFTER_APPLIED - 1)
    expect(stored.tags, 'tags stored before the kill').to.be.below(RECORDS)
    for (const repository of stored.repositories) {
      expect(stored.owners.get(repository), `owner of ${repository}`).to.equal(peer.peerId)
    }

    // After a restart the agent loads that state and completes the sync on the next connection.
    restarted = await startAgent({ dir: victim.dir, env: AGENT_ENV })
    const agent: MeshAgent = { ...restarted, name: 'restarted', peerId: restarted.info.peerId }
    expect((await catalogStats(agent)).tags, 'tags loaded at restart').to.equal(stored.tags)
    expect(restarted.logs()).to.not.contain('damaged')

    await peer.dial(restarted.info.multiaddrs[0] ?? '')
    await waitFor(`all ${RECORDS} tags after the restart`, async () => (await catalogStats(agent)).tags === RECORDS, 60_000, 500)

    const expected = new Map(records.map(signed => [`${signed.record.repository}:${signed.record.tag}`, signed.record.digest]))
    const tags = await tagsOf(agent)
    expect(tags).to.have.length(RECORDS)
    for (const view of tags) {
      expect(view.current?.digest, `${view.repository}:${view.tag}`).to.equal(expected.get(`${view.repository}:${view.tag}`))
    }
  })
})
