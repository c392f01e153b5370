import { strict as assert } from 'node:assert'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { RecordEnvelope } from '@libp2p/peer-record'
import { LevelDatastore } from 'datastore-level'
import { Catalog } from '../../../node/catalog/catalog.js'
import { TrustPolicy } from '../../../node/catalog/trust.js'
import { compareHlc } from '../../../protocol/hlc.js'
import { createPublisher, openCatalog, signRecord, type Publisher, type TestCatalog } from './records.js'
import type { SignedTagRecord } from '../../../protocol/tag-record.js'

const NOW_MS = Date.UTC(2026, 5, 1)

describe('Catalog', () => {
  let alice: Publisher
  let bob: Publisher
  let opened: TestCatalog[]

  before(async () => {
    alice = await createPublisher()
    bob = await createPublisher()
  })

  beforeEach(() => { opened = [] })

  afterEach(async () => {
    await Promise.all(opened.map(async test => test.destroy()))
  })

  async function open (init: Parameters<typeof openCatalog>[0] = {}, folder?: string): Promise<TestCatalog> {
    const test = await openCatalog({ now: () => NOW_MS, trust: new TrustPolicy({ config: { mode: 'any' } }), ...init }, folder)
    opened.push(test)
    return test
  }

  it('add applies a first record and get returns it', async () => {
    const { catalog } = await open()
    const record = await signRecord(alice, { repository: 'demo/httpd', tag: 'v1', hlc: { wallMs: NOW_MS, counter: 0 } })
    const changes: Array<[SignedTagRecord, SignedTagRecord | undefined]> = []
    catalog.onChange((current, previous) => changes.push([current, previous]))

    const result = await catalog.add(record)

    assert.equal(result.status, 'applied')
    assert.deepEqual(catalog.get('demo/httpd', 'v1'), record)
    assert.deepEqual(catalog.list(), [record])
    assert.equal(changes.length, 1)
    assert.deepEqual(changes[0], [record, undefined])
  })

  it('greater HLC replaces the winner and keeps it in history', async () => {
    const { catalog } = await open()
    const older = await signRecord(alice, { repository: 'demo/httpd', tag: 'v1', hlc: { wallMs: NOW_MS, counter: 0 } })
    const newer = await signRecord(alice, { repository: 'demo/httpd', tag: 'v1', hlc: { wallMs: NOW_MS, counter: 1 } })

    assert.equal((await catalog.add(older)).status, 'applied')
    assert.equal((await catalog.add(newer)).status, 'applied')

    assert.deepEqual(catalog.get('demo/httpd', 'v1'), newer)
    assert.deepEqual(catalog.history('demo/httpd', 'v1'), [older])
  })

  it('older record is stale and lands in history', async () => {
    const { catalog } = await open()
    const older = await signRecord(alice, { repository: 'demo/httpd', tag: 'v1', hlc: { wallMs: NOW_MS - 1000, counter: 0 } })
    const newer = await signRecord(alice, { repository: 'demo/httpd', tag: 'v1', hlc: { wallMs: NOW_MS, counter: 0 } })
    let changes = 0
    catalog.onChange(() => { changes++ })

    await catalog.add(newer)
    const result = await catalog.add(older)

    assert.equal(result.status, 'stale')
    assert.deepEqual(result.current, newer)
    assert.deepEqual(catalog.get('demo/httpd', 'v1'), newer)
    assert.deepEqual(catalog.history('demo/httpd', 'v1'), [older])
    assert.equal(changes, 1)
  })

  it('equal HLC is won by the greater publisher peer ID', async () => {
    const { catalog } = await open()
    const hlc = { wallMs: NOW_MS, counter: 3 }
    const fromAlice = await signRecord(alice, { repository: 'demo/httpd', tag: 'v1', hlc })
    const fromBob = await signRecord(bob, { repository: 'demo/httpd', tag: 'v1', hlc })
    const expected = alice.peerId > bob.peerId ? fromAlice : fromBob

    await catalog.add(fromAlice)
    await catalog.add(fromBob)

    assert.deepEqual(catalog.get('demo/httpd', 'v1'), expected)
  })

  it('same record twice is a duplicate', async () => {
    const { catalog } = await open()
    const record = await signRecord(alice, { repository: 'demo/httpd', tag: 'v1', hlc: { wallMs: NOW_MS, counter: 0 } })

    await catalog.add(record)
    const again = await catalog.add(record)
    const viaEnvelope = await catalog.addEnvelope(record.envelope)

    assert.equal(again.status, 'duplicate')
    assert.equal(viaEnvelope.status, 'duplicate')
    assert.deepEqual(catalog.history('demo/httpd', 'v1'), [])
  })

  it('tombstone replaces the tag and stays the winner', async () => {
    const { catalog } = await open()
    const live = await signRecord(alice, { repository: 'demo/httpd', tag: 'v1', hlc: { wallMs: NOW_MS, counter: 0 } })
    const tombstone = await signRecord(alice, { repository: 'demo/httpd', tag: 'v1', hlc: { wallMs: NOW_MS, counter: 1 }, deleted: true })

    await catalog.add(live)
    await catalog.add(tombstone)
    const replay = await catalog.add(live)

    assert.equal(replay.status, 'duplicate')
    assert.equal(catalog.get('demo/httpd', 'v1')?.record.deleted, true)
    assert.equal(catalog.get('demo/httpd', 'v1')?.record.digest, null)
  })

  it('history keeps at most maxHistory versions, newest first', async () => {
    const { catalog } = await open({ maxHistory: 3 })
    const records: SignedTagRecord[] = []
    for (let counter = 0; counter < 6; counter++) {
      records.push(await signRecord(alice, { repository: 'demo/httpd', tag: 'v1', hlc: { wallMs: NOW_MS, counter } }))
    }

    for (const record of records) {
      await catalog.add(record)
    }

    assert.deepEqual(catalog.get('demo/httpd', 'v1'), records[5])
    assert.deepEqual(catalog.history('demo/httpd', 'v1'), [records[4], records[3], records[2]])
  })

  it('restart reloads winners, history and first-use owners', async () => {
    const trust = new TrustPolicy()
    const first = await open({ trust })
    const v1 = await signRecord(alice, { repository: 'demo/httpd', tag: 'v1', hlc: { wallMs: NOW_MS, counter: 0 } })
    const v1b = await signRecord(alice, { repository: 'demo/httpd', tag: 'v1', hlc: { wallMs: NOW_MS, counter: 1 } })
    const other = await signRecord(alice, { repository: 'demo/other', tag: 'latest', hlc: { wallMs: NOW_MS, counter: 0 } })
    for (const record of [v1, v1b, other]) {
      await first.catalog.add(record)
    }
    await first.close()

    const reopenedTrust = new TrustPolicy()
    const second = await open({ trust: reopenedTrust }, first.folder)

    assert.deepEqual(second.catalog.list(), [v1b, other])
    assert.deepEqual(second.catalog.history('demo/httpd', 'v1'), [v1])
    assert.equal(reopenedTrust.ownerOf('demo/httpd'), alice.peerId)
    const fromBob = await signRecord(bob, { repository: 'demo/httpd', tag: 'v1', hlc: { wallMs: NOW_MS, counter: 9 } })
    assert.equal((await second.catalog.add(fromBob)).status, 'rejected')
  })

  it('nextHlc with a 1970 clock beats every record seen for the tag', async () => {
    const { catalog } = await open({ now: () => 0 })
    const seen = await signRecord(alice, { repository: 'demo/httpd', tag: 'v1', hlc: { wallMs: NOW_MS, counter: 7 } })
    catalog.observePeerClock(alice.peerId, NOW_MS)
    assert.equal((await catalog.add(seen)).status, 'applied')

    const hlc = catalog.nextHlc('demo/httpd', 'v1')
    const published = await signRecord(bob, { repository: 'demo/httpd', tag: 'v1', hlc })
    const result = await catalog.add(published)

    assert.ok(compareHlc(hlc, seen.record.hlc) > 0, `expected ${JSON.stringify(hlc)} after ${JSON.stringify(seen.record.hlc)}`)
    assert.equal(result.status, 'applied')
    assert.deepEqual(catalog.get('demo/httpd', 'v1'), published)
  })

  it('nextHlc grows on every call even before a record is added', async () => {
    const { catalog } = await open()

    const first = catalog.nextHlc('demo/httpd', 'v1')
    const second = catalog.nextHlc('demo/httpd', 'v1')

    assert.deepEqual(first, { wallMs: NOW_MS, counter: 0 })
    assert.ok(compareHlc(second, first) > 0)
  })

  it('future record is held until the clock catches up', async () => {
    let nowMs = NOW_MS
    const { catalog } = await open({ now: () => nowMs, maxFutureSkewMs: 60_000 })
    const current = await signRecord(alice, { repository: 'demo/httpd', tag: 'v1', hlc: { wallMs: NOW_MS, counter: 0 } })
    const future = await signRecord(alice, { repository: 'demo/httpd', tag: 'v1', hlc: { wallMs: NOW_MS + 3_600_000, counter: 0 } })
    await catalog.add(current)

    const held = await catalog.add(future)

    assert.equal(held.status, 'held')
    assert.match(held.reason ?? '', /ahead of the reference clock/)
    assert.deepEqual(catalog.get('demo/httpd', 'v1'), current)
    assert.deepEqual(catalog.heldRecords(), [future])
    assert.equal(catalog.syncRecords().length, 2)
    assert.equal((await catalog.add(future)).status, 'duplicate')

    nowMs = NOW_MS + 3_600_000 - 60_000
    await catalog.releaseHeld()

    assert.deepEqual(catalog.get('demo/httpd', 'v1'), future)
    assert.deepEqual(catalog.heldRecords(), [])
  })

  it('held future record does not pin the tag for local publishes', async () => {
    const { catalog } = await open()
    const farFuture = await signRecord(alice, { repository: 'demo/httpd', tag: 'v1', hlc: { wallMs: Date.UTC(2200, 0, 1), counter: 0 } })
    await catalog.add(farFuture)

    const hlc = catalog.nextHlc('demo/httpd', 'v1')
    const local = await signRecord(bob, { repository: 'demo/httpd', tag: 'v1', hlc })

    assert.equal(hlc.wallMs, NOW_MS)
    assert.equal((await catalog.add(local)).status, 'applied')
    assert.deepEqual(catalog.get('demo/httpd', 'v1'), local)
  })

  it('1970 clock holds current records until a peer reports its clock', async () => {
    const { catalog } = await open({ now: () => 0 })
    const current = await signRecord(alice, { repository: 'demo/httpd', tag: 'v1', hlc: { wallMs: NOW_MS, counter: 0 } })

    assert.equal((await catalog.add(current)).status, 'held')

    catalog.observePeerClock(bob.peerId, NOW_MS + 10)
    await catalog.releaseHeld()

    assert.deepEqual(catalog.get('demo/httpd', 'v1'), current)
  })

  it('addEnvelope rejects a forged signature and bytes that are no envelope', async () => {
    const { catalog } = await open()
    const genuine = await signRecord(alice, { repository: 'demo/httpd', tag: 'v1', hlc: { wallMs: NOW_MS, counter: 0 } })
    const envelope = RecordEnvelope.createFromProtobuf(genuine.envelope)
    const signature = new Uint8Array(envelope.signature)
    signature[0] = (signature[0] ?? 0) ^ 0xff
    const forged = new RecordEnvelope({ publicKey: envelope.publicKey, payloadType: envelope.payloadType, payload: envelope.payload, signature }).marshal()

    const forgedResult = await catalog.addEnvelope(forged, { from: bob.peerId })
    const garbageResult = await catalog.addEnvelope(new Uint8Array([1, 2, 3]), { from: bob.peerId })

    assert.equal(forgedResult.status, 'rejected')
    assert.match(forgedResult.reason ?? '', /signed/)
    assert.equal(garbageResult.status, 'rejected')
    assert.equal(catalog.get('demo/httpd', 'v1'), undefined)
    assert.equal(catalog.stats().rejected, 2)
  })

  it('first-use policy rejects an outsider replacing a tag', async () => {
    const { catalog } = await open({ trust: new TrustPolicy() })
    const original = await signRecord(alice, { repository: 'demo/httpd', tag: 'v1', hlc: { wallMs: NOW_MS, counter: 0 } })
    const takeover = await signRecord(bob, { repository: 'demo/httpd', tag: 'v1', hlc: { wallMs: NOW_MS, counter: 5 } })
    const bobsOwn = await signRecord(bob, { repository: 'bob/tool', tag: 'v1', hlc: { wallMs: NOW_MS, counter: 0 } })

    await catalog.add(original)
    const result = await catalog.addEnvelope(takeover.envelope, { from: bob.peerId })

    assert.equal(result.status, 'rejected')
    assert.match(result.reason ?? '', /kilomesh trust add/)
    assert.deepEqual(catalog.get('demo/httpd', 'v1'), original)
    assert.equal((await catalog.add(bobsOwn)).status, 'applied')
  })

  it('rejects add before start', async () => {
    const test = await open()
    await test.catalog.stop()
    const record = await signRecord(alice, { repository: 'demo/httpd', tag: 'v1', hlc: { wallMs: NOW_MS, counter: 0 } })

    await assert.rejects(test.catalog.add(record), { name: 'CatalogNotStartedError' })
  })

  it('constructor rejects an invalid maxHistory', () => {
    const datastore = new LevelDatastore(join(tmpdir(), 'kilomesh-catalog-never-opened'))

    assert.throws(() => new Catalog({ datastore }, { maxHistory: -1 }), { name: 'InvalidCatalogOptionError', message: /maxHistory -1/ })
  })
})
