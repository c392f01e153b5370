import { strict as assert } from 'node:assert'
import { randomBytes } from 'node:crypto'
import { memory } from '@libp2p/memory'
import { noise } from '@libp2p/noise'
import { RecordEnvelope } from '@libp2p/peer-record'
import { lpStream } from '@libp2p/utils'
import { yamux } from '@libp2p/yamux'
import { createLibp2p, type Libp2p } from 'libp2p'
import { SyncMessage } from '../../../protocol/messages/sync.js'
import { encodeNode, MAX_SYNC_ROUNDS, SYNC_PROTOCOL } from '../../../protocol/sync.js'
import { createPublisher, signRecord, type Publisher } from '../catalog/records.js'
import { createSyncNode, nextSession, type SyncNode } from './nodes.js'
import type { SignedTagRecord } from '../../../protocol/tag-record.js'

const NOW_MS = Date.now()

async function waitFor (condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    }
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

function forge (signed: SignedTagRecord): Uint8Array<ArrayBuffer> {
  const envelope = RecordEnvelope.createFromProtobuf(signed.envelope)
  const signature = new Uint8Array(envelope.signature)
  signature[10] = (signature[10] ?? 0) ^ 0x01
  return new Uint8Array(new RecordEnvelope({ publicKey: envelope.publicKey, payloadType: envelope.payloadType, payload: envelope.payload, signature }).marshal())
}

describe('catalog sync over libp2p', () => {
  let alice: Publisher
  let bob: Publisher
  let created: SyncNode[]
  let plainNodes: Libp2p[]

  before(async () => {
    alice = await createPublisher()
    bob = await createPublisher()
  })

  beforeEach(() => {
    created = []
    plainNodes = []
  })

  afterEach(async () => {
    await Promise.all([...created.map(async node => node.destroy()), ...plainNodes.map(async node => node.stop())])
  })

  async function syncNode (options: Parameters<typeof createSyncNode>[0] = {}): Promise<SyncNode> {
    const node = await createSyncNode(options)
    created.push(node)
    return node
  }

  /** Creates a libp2p node without the sync service, for tests that speak the protocol by hand. */
  async function plainNode (): Promise<Libp2p> {
    const node = await createLibp2p({
      addresses: { listen: [`/memory/kilomesh-raw-${randomBytes(6).toString('hex')}`] },
      transports: [memory()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()]
    })
    plainNodes.push(node)
    return node
  }

  it('new connection converges two catalogs', async () => {
    const a = await syncNode()
    const b = await syncNode()
    const olderConflict = await signRecord(bob, { repository: 'demo/httpd', tag: 'v1', hlc: { wallMs: NOW_MS - 1000, counter: 0 } })
    const newerConflict = await signRecord(alice, { repository: 'demo/httpd', tag: 'v1', hlc: { wallMs: NOW_MS, counter: 0 } })
    await a.store.catalog.add(newerConflict)
    await b.store.catalog.add(olderConflict)
    for (let index = 0; index < 20; index++) {
      await a.store.catalog.add(await signRecord(alice, { repository: 'alice/app', tag: `v${index}`, hlc: { wallMs: NOW_MS, counter: 0 } }))
    }
    for (let index = 0; index < 15; index++) {
      await b.store.catalog.add(await signRecord(bob, { repository: 'bob/app', tag: `v${index}`, hlc: { wallMs: NOW_MS, counter: 0 } }))
    }

    const sessions = Promise.all([nextSession(a), nextSession(b)])
    await a.node.dial(b.node.getMultiaddrs())
    const [initiator, responder] = await sessions

    assert.equal(initiator.role, 'initiator')
    assert.equal(responder.role, 'responder')
    assert.equal(a.store.catalog.list().length, 36)
    assert.deepEqual(a.store.catalog.list(), b.store.catalog.list())
    assert.deepEqual(b.store.catalog.get('demo/httpd', 'v1'), newerConflict)
    assert.deepEqual(b.store.catalog.history('demo/httpd', 'v1'), [olderConflict])
    assert.deepEqual(a.store.catalog.history('demo/httpd', 'v1'), [olderConflict])
  })

  it('identical catalogs finish in one round trip', async () => {
    const a = await syncNode({ sync: { syncOnConnect: false } })
    const b = await syncNode({ sync: { syncOnConnect: false } })
    for (let index = 0; index < 50; index++) {
      const record = await signRecord(alice, { repository: 'alice/app', tag: `v${index}`, hlc: { wallMs: NOW_MS, counter: 0 } })
      await a.store.catalog.add(record)
      await b.store.catalog.add(record)
    }
    await a.node.dial(b.node.getMultiaddrs())

    const result = await a.node.services.sync.syncWith(b.node.peerId)

    assert.equal(result.messagesSent, 1)
    assert.equal(result.messagesReceived, 1)
    assert.equal(result.recordsReceived, 0)
    assert.ok(result.bytesSent + result.bytesReceived < 300, `${result.bytesSent + result.bytesReceived} bytes for identical catalogs`)
  })

  it('periodic sync delivers a record added after connecting', async () => {
    const a = await syncNode({ sync: { syncOnConnect: false, intervalMs: 200 } })
    const b = await syncNode({ sync: { syncOnConnect: false, intervalMs: 200 } })
    await a.node.dial(b.node.getMultiaddrs())
    const record = await signRecord(alice, { repository: 'alice/app', tag: 'late', hlc: { wallMs: NOW_MS, counter: 0 } })

    await a.store.catalog.add(record)

    await waitFor(() => b.store.catalog.get('alice/app', 'late') != null, 'the periodic sync to deliver alice/app:late')
    assert.deepEqual(b.store.catalog.get('alice/app', 'late'), record)
  })

  it('sync carries the peer clock to a device at 1970', async () => {
    const a = await syncNode()
    const b = await syncNode({ catalog: { now: () => 0 } })
    const record = await signRecord(alice, { repository: 'alice/app', tag: 'v1', hlc: { wallMs: NOW_MS, counter: 0 } })
    await a.store.catalog.add(record)

    const session = nextSession(b)
    await a.node.dial(b.node.getMultiaddrs())
    const result = await session

    assert.equal(result.applied, 1)
    assert.equal(result.held, 0)
    assert.deepEqual(b.store.catalog.get('alice/app', 'v1'), record)
    const hlc = b.store.catalog.nextHlc('alice/app', 'v1')
    assert.ok(hlc.wallMs >= NOW_MS, `a 1970 device published at ${hlc.wallMs}, before the record it holds`)
  })

  it('untrusted publisher cannot overwrite a tag', async () => {
    const attacker = await syncNode({ sync: { syncOnConnect: false } })
    const victim = await syncNode({ trust: { mode: 'first-use' } })
    const original = await signRecord(alice, { repository: 'demo/httpd', tag: 'v1', hlc: { wallMs: NOW_MS, counter: 0 } })
    const takeover = await signRecord(bob, { repository: 'demo/httpd', tag: 'v1', hlc: { wallMs: NOW_MS, counter: 100 } })
    await victim.store.catalog.add(original)
    await attacker.store.catalog.add(takeover)
    await attacker.node.dial(victim.node.getMultiaddrs())

    const result = await attacker.node.services.sync.syncWith(victim.node.peerId)

    assert.equal(result.recordsSent, 1)
    assert.deepEqual(victim.store.catalog.get('demo/httpd', 'v1'), original)
    assert.equal(victim.store.catalog.stats().rejected, 1)
    assert.deepEqual(attacker.store.catalog.get('demo/httpd', 'v1'), takeover)
  })

  it('forged records are rejected and abort the session', async () => {
    const victim = await syncNode()
    const attacker = await plainNode()
    const forged: Array<Uint8Array<ArrayBuffer>> = []
    for (let index = 0; index < 40; index++) {
      forged.push(forge(await signRecord(alice, { repository: 'alice/app', tag: `v${index}`, hlc: { wallMs: NOW_MS, counter: 0 } })))
    }
    const stream = await attacker.dialProtocol(victim.node.getMultiaddrs(), SYNC_PROTOCOL)
    const lp = lpStream(stream)

    await lp.write(SyncMessage.encode({ clockMs: BigInt(NOW_MS), splits: [], lists: [{ node: encodeNode({ depth: 0, prefix: 0n }), ids: new Uint8Array(0) }], wants: [], records: forged, done: false }))
    await assert.rejects(lp.read(), 'the victim should reset the stream instead of replying')

    await waitFor(() => victim.node.services.sync.stats().failedSessions === 1, 'the victim to count the failed session')
    assert.equal(victim.store.catalog.list().length, 0)
    assert.equal(victim.store.catalog.stats().rejected, 33)
  })

  it('peer that never finishes is cut off at the round limit', async () => {
    const victim = await syncNode()
    for (let index = 0; index < 40; index++) {
      await victim.store.catalog.add(await signRecord(alice, { repository: 'alice/app', tag: `v${index}`, hlc: { wallMs: NOW_MS, counter: 0 } }))
    }
    const attacker = await plainNode()
    const stream = await attacker.dialProtocol(victim.node.getMultiaddrs(), SYNC_PROTOCOL)
    const lp = lpStream(stream)
    // A request for a key that no peer holds makes the victim describe the root again, every time.
    const message = SyncMessage.encode({ clockMs: 0n, splits: [], lists: [], wants: [{ node: encodeNode({ depth: 0, prefix: 0n }), ids: new Uint8Array(8) }], records: [], done: false })

    let replies = 0
    await assert.rejects((async () => {
      for (let round = 0; round < 2 * MAX_SYNC_ROUNDS; round++) {
        await lp.write(message)
        await lp.read()
        replies++
      }
    })())

    assert.equal(replies, MAX_SYNC_ROUNDS)
    await waitFor(() => victim.node.services.sync.stats().failedSessions === 1, 'the victim to count the failed session')
  })

  it('oversized message aborts the session', async () => {
    const victim = await syncNode()
    const attacker = await plainNode()
    const stream = await attacker.dialProtocol(victim.node.getMultiaddrs(), SYNC_PROTOCOL)
    const lp = lpStream(stream)

    await lp.write(new Uint8Array(2 * 1024 * 1024))
    await assert.rejects(lp.read())

    await waitFor(() => victim.node.services.sync.stats().failedSessions === 1, 'the victim to count the failed session')
  })
})
