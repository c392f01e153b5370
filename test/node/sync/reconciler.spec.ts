import { strict as assert } from 'node:assert'
import fc from 'fast-check'
import { encodeNode, encodeSummaries, MAX_SYNC_DEPTH, MAX_SYNC_NODES_PER_MESSAGE } from '../../../protocol/sync.js'
import { Reconciler } from '../../../node/sync/reconciler.js'
import { SyncIndex } from '../../../node/sync/sync-index.js'
import { randomEnvelopes, reconcileInMemory } from './reconcile-in-memory.js'
import type { SyncMessage } from '../../../protocol/messages/sync.js'

function hex (envelopes: Uint8Array[]): string[] {
  return envelopes.map(envelope => Buffer.from(envelope).toString('hex')).sort()
}

function emptyMessage (fields: Partial<SyncMessage> = {}): SyncMessage {
  return { clockMs: 0n, splits: [], lists: [], wants: [], records: [], done: false, ...fields }
}

describe('Reconciler', () => {
  const base = randomEnvelopes(10_000)

  const cases: Array<{ differences: number, maxBytes: number }> = [
    { differences: 0, maxBytes: 400 },
    { differences: 1, maxBytes: 1_000 },
    { differences: 10, maxBytes: 4_096 },
    { differences: 100, maxBytes: 40_000 }
  ]

  for (const { differences, maxBytes } of cases) {
    it(`10,000 records differing in ${differences}`, () => {
      const extra = randomEnvelopes(differences)
      const onlyInitiator = extra.slice(0, differences >> 1)
      const onlyResponder = extra.slice(differences >> 1)

      const result = reconcileInMemory([...base, ...onlyInitiator], [...base, ...onlyResponder])

      assert.deepEqual(hex(result.receivedByResponder), hex(onlyInitiator))
      assert.deepEqual(hex(result.receivedByInitiator), hex(onlyResponder))
      assert.ok(result.totalBytes <= maxBytes, `${result.totalBytes} bytes exceed ${maxBytes}`)
      assert.ok(result.roundTrips <= 4, `${result.roundTrips} round trips exceed 4`)
    })
  }

  it('empty side receives a large set over several messages', () => {
    const result = reconcileInMemory([], base.slice(0, 3000), { maxRecordsPerMessage: 1000 })

    assert.equal(result.receivedByInitiator.length, 3000)
    assert.deepEqual(hex(result.receivedByInitiator), hex(base.slice(0, 3000)))
    assert.equal(result.receivedByResponder.length, 0)
    assert.ok(result.messages >= 4, `expected the records spread over several messages, got ${result.messages}`)
  })

  it('two empty sets end in one round trip', () => {
    const result = reconcileInMemory([], [])

    assert.equal(result.messages, 2)
    assert.equal(result.recordBytes, 0)
  })

  it('any two random sets end with each side holding the union', () => {
    const pool = randomEnvelopes(400, 40)
    fc.assert(fc.property(fc.subarray(pool), fc.subarray(pool), fc.integer({ min: 0, max: 24 }), (initiatorSet, responderSet, listThreshold) => {
      const result = reconcileInMemory(initiatorSet, responderSet, { listThreshold })
      const initiatorHas = new Set(hex(initiatorSet))
      const responderHas = new Set(hex(responderSet))

      assert.deepEqual(hex(result.receivedByInitiator), hex(responderSet.filter(envelope => !initiatorHas.has(Buffer.from(envelope).toString('hex')))))
      assert.deepEqual(hex(result.receivedByResponder), hex(initiatorSet.filter(envelope => !responderHas.has(Buffer.from(envelope).toString('hex')))))
    }), { numRuns: 200 })
  })

  it('request for a key it lacks makes it split the node', () => {
    const reconciler = new Reconciler({ index: new SyncIndex(base.slice(0, 100)), listThreshold: 4 })

    const reply = reconciler.receive(emptyMessage({ wants: [{ node: encodeNode({ depth: 0, prefix: 0n }), ids: new Uint8Array(8) }] }))

    assert.equal(reply?.records.length, 0)
    assert.equal(reply?.splits.length, 1)
    assert.equal(reply?.done, false)
  })

  it('node named twice in a message is answered once', () => {
    const reconciler = new Reconciler({ index: new SyncIndex(base.slice(0, 100)) })
    const split = { node: encodeNode({ depth: 0, prefix: 0n }), children: encodeSummaries(Array.from({ length: 16 }, () => ({ count: 0, sum: 0n }))) }

    const reply = reconciler.receive(emptyMessage({ splits: [split, split, split] }))

    assert.equal(reply?.records.length, 100)
  })

  it('rejects a split of a node at the maximum depth', () => {
    const reconciler = new Reconciler({ index: new SyncIndex([]) })
    const split = { node: encodeNode({ depth: MAX_SYNC_DEPTH, prefix: 5n }), children: encodeSummaries(Array.from({ length: 16 }, () => ({ count: 0, sum: 0n }))) }

    assert.throws(() => reconciler.receive(emptyMessage({ splits: [split] })), { name: 'InvalidMessageError', message: /cannot be split/ })
  })

  it('rejects more node entries than one message allows', () => {
    const reconciler = new Reconciler({ index: new SyncIndex([]) })
    const want = { node: encodeNode({ depth: 0, prefix: 0n }), ids: new Uint8Array(8) }

    assert.throws(() => reconciler.receive(emptyMessage({ wants: Array.from({ length: MAX_SYNC_NODES_PER_MESSAGE + 1 }, () => want) })), { name: 'InvalidMessageError' })
  })

  it('rejects an item key list of a wrong length', () => {
    const reconciler = new Reconciler({ index: new SyncIndex([]) })

    assert.throws(() => reconciler.receive(emptyMessage({ lists: [{ node: encodeNode({ depth: 0, prefix: 0n }), ids: new Uint8Array(7) }] })), { name: 'InvalidMessageError', message: /multiple of 8/ })
  })

  it('sends each record at most once per session', () => {
    const reconciler = new Reconciler({ index: new SyncIndex(base.slice(0, 50)) })
    const list = { node: encodeNode({ depth: 0, prefix: 0n }), ids: new Uint8Array(0) }

    const first = reconciler.receive(emptyMessage({ lists: [list] }))
    const second = reconciler.receive(emptyMessage({ lists: [list] }))

    assert.equal(first?.records.length, 50)
    assert.equal(second?.records.length, 0)
    assert.equal(second?.done, true)
  })

  it('keeps each message under the byte limit', () => {
    const large = randomEnvelopes(200, 4000)
    const reconciler = new Reconciler({ index: new SyncIndex(large), maxMessageBytes: 64 * 1024 })
    const list = { node: encodeNode({ depth: 0, prefix: 0n }), ids: new Uint8Array(0) }

    let reply = reconciler.receive(emptyMessage({ lists: [list] }))
    let received = 0
    while (reply != null && !reply.done) {
      const sizeBytes = reply.records.reduce((total, record) => total + record.byteLength, 0)
      assert.ok(sizeBytes <= 64 * 1024, `message carries ${sizeBytes} bytes of records`)
      received += reply.records.length
      reply = reconciler.receive(emptyMessage())
    }
    received += reply?.records.length ?? 0

    assert.equal(received, 200)
  })
})
