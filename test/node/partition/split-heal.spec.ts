import { expect } from 'chai'
import { compareTagRecords } from '../../../protocol/tag-record.js'
import { cleanUp, runCli, runCliOk } from '../../utils/agents.js'
import { findRef } from '../../utils/layout.js'
import { fixture } from '../../utils/paths.js'
import { connectedPeers, currentRecord, cut, expectSameRecord, heal, startMesh, tagsOf, trustEverywhere, waitFor, waitForAgreement, type MeshAgent } from './mesh.js'
import type { RecordView } from '../../../node/control/routes/catalog.js'
import type { OciDigest } from '../../../protocol/digest.js'

/** Orders two record views by the catalog's merge rule. */
function compareViews (a: RecordView, b: RecordView): number {
  const asRecord = (view: RecordView): Parameters<typeof compareTagRecords>[0] => ({
    repository: 'r',
    tag: 't',
    digest: view.digest as OciDigest | null,
    mediaType: view.mediaType,
    sizeBytes: view.sizeBytes,
    hlc: { wallMs: view.hlcWallMs, counter: view.hlcCounter },
    publisher: view.publisher,
    deleted: view.deleted
  })
  return compareTagRecords(asRecord(a), asRecord(b))
}

async function localImages (agent: MeshAgent): Promise<Array<{ repository: string, tag: string, digest: string, local: boolean }>> {
  return JSON.parse(await runCliOk(['images', '--json', '--dir', agent.dir])) as Array<{ repository: string, tag: string, digest: string, local: boolean }>
}

describe('partition of real agents cut by their connection gaters', function () {
  this.timeout(240_000)
  let agents: MeshAgent[] = []
  let left: MeshAgent[]
  let right: MeshAgent[]

  before(async () => {
    agents = await startMesh(['a1', 'a2', 'b1', 'b2'])
    left = agents.slice(0, 2)
    right = agents.slice(2)
  })

  after(async () => {
    await cleanUp(agents)
  })

  it('split mesh converges after heal', async () => {
    const [a1, a2] = left as [MeshAgent, MeshAgent]
    const [b1, b2] = right as [MeshAgent, MeshAgent]

    // Two publishers, one on each side, may both publish demo/*, and every agent follows demo/app:stable.
    await trustEverywhere(agents, [a1, b1], 'demo/*')
    for (const agent of agents) {
      await runCliOk(['subscribe', 'demo/app:stable', '--dir', agent.dir])
    }

    await runCliOk(['publish', 'demo/app:stable', '--from', `${fixture('micro-httpd')}:v1`, '--dir', a1.dir])
    await waitFor('every agent to learn demo/app:stable before the cut', async () => {
      const records = await Promise.all(agents.map(async agent => currentRecord(agent, 'demo/app', 'stable')))
      return records.every(record => record?.digest != null)
    })

    // Cut, then check that no link crosses it.
    await cut(left, right)
    for (const agent of left) {
      expect(await connectedPeers(agent)).to.not.include.members([b1.peerId]).and.not.include.members([b2.peerId])
    }
    for (const agent of right) {
      expect(await connectedPeers(agent)).to.not.include.members([a1.peerId]).and.not.include.members([a2.peerId])
    }

    // Each side publishes its own version of the tag and a repository of its own.
    await runCliOk(['publish', 'demo/app:stable', '--from', `${fixture('micro-httpd')}:v2`, '--dir', a1.dir])
    await runCliOk(['publish', 'alpha/httpd:v1', '--from', `${fixture('micro-httpd')}:v1`, '--dir', a1.dir])
    await runCliOk(['publish', 'demo/app:stable', '--from', `${fixture('busybox')}:1.35-amd64`, '--dir', b1.dir])
    await runCliOk(['publish', 'beta/busybox:1.35', '--from', `${fixture('busybox')}:1.35`, '--dir', b1.dir])

    const leftVersion = await currentRecord(a1, 'demo/app', 'stable') as RecordView
    const rightVersion = await currentRecord(b1, 'demo/app', 'stable') as RecordView
    expect(leftVersion.digest).to.equal((await findRef(fixture('micro-httpd'), 'v2'))?.digest)
    expect(rightVersion.digest).to.equal((await findRef(fixture('busybox'), '1.35-amd64'))?.digest)

    // Records spread within each side, but not across the cut.
    await waitFor('a2 to learn the left version', async () => (await currentRecord(a2, 'demo/app', 'stable'))?.digest === leftVersion.digest)
    await waitFor('b2 to learn the right version', async () => (await currentRecord(b2, 'demo/app', 'stable'))?.digest === rightVersion.digest)
    expect((await tagsOf(a2)).map(view => view.repository)).to.not.include('beta/busybox')
    expect((await tagsOf(b2)).map(view => view.repository)).to.not.include('alpha/httpd')

    // Heal: the connectivity keepers redial, and sync on the new connections carries what gossip missed.
    await heal(agents)
    const agreed = await waitForAgreement(agents, 90_000)

    const winner = compareViews(leftVersion, rightVersion) > 0 ? leftVersion : rightVersion
    const loser = winner === leftVersion ? rightVersion : leftVersion
    const stable = agreed.find(view => view.repository === 'demo/app' && view.tag === 'stable')
    expectSameRecord(stable?.current ?? undefined, winner, 'winner of demo/app:stable')
    expect(agreed.map(view => `${view.repository}:${view.tag}`)).to.include.members(['alpha/httpd:v1', 'beta/busybox:1.35', 'demo/app:stable'])

    // Agents that held the losing version keep it in the tag's history. Sync
    // carries only winners, so the winner's side never receives the loser.
    const loserSide = loser === leftVersion ? [a1, a2] : [b1, b2]
    for (const agent of loserSide) {
      const history = (await tagsOf(agent, 'demo/app')).find(view => view.tag === 'stable')?.history ?? []
      expect(history.map(record => record.digest), `history on ${agent.name}`).to.include(loser.digest)
    }

    // The human view marks the winner and names the two publishers.
    const text = await runCliOk(['tags', 'demo/app', '--history', '--dir', (loserSide[1] as MeshAgent).dir])
    expect(text).to.match(/^\*\s+current\s+sha256:/m)
    expect(text).to.contain('2 publishers wrote this tag')

    // Subscribed agents hold the winning image, and the other side's new repository can be pulled.
    await waitFor('every agent to hold the winning image', async () => {
      const images = await Promise.all(agents.map(localImages))
      return images.every(list => list.some(image => image.repository === 'demo/app' && image.tag === 'stable' && image.digest === winner.digest && image.local))
    }, 60_000, 500)
    const pulledBeta = JSON.parse(await runCliOk(['pull', 'beta/busybox:1.35', '--platform', 'all', '--json', '--dir', a2.dir])) as { digest: string }
    expect(pulledBeta.digest).to.equal((await findRef(fixture('busybox'), '1.35'))?.digest)
    const pulledAlpha = JSON.parse(await runCliOk(['pull', 'alpha/httpd:v1', '--json', '--dir', b2.dir])) as { digest: string }
    expect(pulledAlpha.digest).to.equal((await findRef(fixture('micro-httpd'), 'v1'))?.digest)
  })

  it('tombstone from a cut spreads', async () => {
    const [a1, a2] = left as [MeshAgent, MeshAgent]
    const [b1] = right as [MeshAgent, MeshAgent]

    await cut(left, right)
    await runCliOk(['untag', 'alpha/httpd:v1', '--dir', a1.dir])
    await waitFor('a2 to learn the deletion', async () => (await currentRecord(a2, 'alpha/httpd', 'v1'))?.deleted === true)
    expect((await currentRecord(b1, 'alpha/httpd', 'v1'))?.deleted).to.equal(false)

    await heal(agents)
    await waitForAgreement(agents, 90_000)

    for (const agent of agents) {
      expect((await currentRecord(agent, 'alpha/httpd', 'v1'))?.deleted, `alpha/httpd:v1 on ${agent.name}`).to.equal(true)
    }
    const pull = await runCli(['pull', 'alpha/httpd:v1', '--dir', b1.dir, '--timeout', '5'])
    expect(pull.code).to.equal(1)
  })
})
