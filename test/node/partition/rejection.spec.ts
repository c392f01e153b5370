import { expect } from 'chai'
import { peerIdFromString } from '@libp2p/peer-id'
import { TAG_TOPIC } from '../../../protocol/constants.js'
import { cleanUp, runCliOk } from '../../utils/agents.js'
import { createPublisher, signRecord, type Publisher } from '../catalog/records.js'
import { catalogStats, currentRecord, startMesh, tagsOf, waitFor, type MeshAgent } from './mesh.js'
import { breakSignature, impersonate, startRecordPeer, type RecordPeer } from './record-peer.js'

describe('agent rejection of forged and untrusted records', function () {
  this.timeout(120_000)
  let agents: MeshAgent[] = []
  let agent: MeshAgent
  let peer: RecordPeer
  let trusted: Publisher

  before(async () => {
    agents = await startMesh(['target'])
    agent = agents[0] as MeshAgent
    peer = await startRecordPeer()
    trusted = await createPublisher()
    await runCliOk(['trust', 'add', trusted.peerId, '--repository', 'demo/*', '--dir', agent.dir])
  })

  after(async () => {
    await peer?.stop()
    await cleanUp(agents)
  })

  it('sync rejects and logs bad records', async () => {
    const hlc = { wallMs: Date.now(), counter: 0 }
    const valid = await signRecord(trusted, { repository: 'demo/app', tag: 'ok', hlc })
    const forged = breakSignature(await signRecord(trusted, { repository: 'demo/app', tag: 'stable', hlc, content: 'forged' }))
    const untrusted = await signRecord(peer.publisher, { repository: 'demo/app', tag: 'beta', hlc })
    await peer.offer([valid, forged, untrusted])

    await peer.dial(agent.info.multiaddrs[0] ?? '')
    await waitFor('the valid record to arrive by sync', async () => (await currentRecord(agent, 'demo/app', 'ok'))?.digest === valid.record.digest)

    const tags = (await tagsOf(agent, 'demo/app')).map(view => view.tag)
    expect(tags).to.deep.equal(['ok'])
    expect((await catalogStats(agent)).catalog.rejected).to.be.at.least(2)

    const logs = agent.logs()
    expect(logs).to.match(new RegExp(`rejected tag record demo/app:stable from peer ${peer.peerId} \\(publisher unknown\\): tag record envelope is malformed or wrongly signed`))
    expect(logs).to.match(new RegExp(`rejected tag record demo/app:beta from peer ${peer.peerId} \\(publisher ${peer.peerId}\\): repository demo/app is restricted`))
  })

  it('gossip rejects and logs an impersonation', async () => {
    const pubsub = peer.node.services.pubsub
    pubsub.subscribe(TAG_TOPIC)
    await waitFor('the agent to join the tag topic', async () => pubsub.getSubscribers(TAG_TOPIC).some(subscriber => subscriber.toString() === agent.peerId))

    const record = { repository: 'demo/app', tag: 'gossip', digest: `sha256:${'ab'.repeat(32)}` as const, mediaType: 'application/vnd.oci.image.manifest.v1+json', sizeBytes: 512, hlc: { wallMs: Date.now(), counter: 0 }, publisher: trusted.peerId, deleted: false }
    const forged = await impersonate(record, peerIdFromString(trusted.peerId).toMultihash().bytes, peer.publisher.privateKey)
    const rejectedBefore = (await catalogStats(agent)).catalog.rejected
    await pubsub.publish(TAG_TOPIC, forged.envelope)

    await waitFor('the agent to reject the gossiped record', async () => (await catalogStats(agent)).catalog.rejected > rejectedBefore)
    expect(await currentRecord(agent, 'demo/app', 'gossip')).to.equal(undefined)
    expect(agent.logs()).to.contain(`tag record names publisher ${trusted.peerId} but was signed by ${peer.peerId}`)
  })
})
