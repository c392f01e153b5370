import { strict as assert } from 'node:assert'
import fc from 'fast-check'
import { compareSignedRecords, insertHistory, mergeRecord, mergeStates, type CatalogState } from '../../../node/catalog/merge.js'
import { MAX_HLC_COUNTER } from '../../../protocol/hlc.js'
import { TrustPolicy } from '../../../node/catalog/trust.js'
import { createPublisher, openCatalog, signRecord, type Publisher } from './records.js'
import type { SignedTagRecord, TagRecord } from '../../../protocol/tag-record.js'

// The merge functions only compare fields and envelope bytes, so these
// records need no real signature; the catalog test at the end uses real ones.
const PUBLISHERS = ['12D3KooWA', '12D3KooWB', '12D3KooWC']
const DIGESTS = [`sha256:${'a'.repeat(64)}`, `sha256:${'b'.repeat(64)}`] as const

const wallMsArbitrary = fc.oneof(
  fc.constantFrom(0, 1, Date.UTC(1970, 0, 1, 0, 0, 1), Date.UTC(2026, 0, 1), Number.MAX_SAFE_INTEGER),
  fc.integer({ min: 0, max: 2 ** 45 })
)

const recordArbitrary: fc.Arbitrary<SignedTagRecord> = fc.record({
  repository: fc.constantFrom('demo/httpd', 'tools'),
  tag: fc.constantFrom('v1', 'latest'),
  wallMs: wallMsArbitrary,
  counter: fc.oneof(fc.constantFrom(0, 1, MAX_HLC_COUNTER), fc.integer({ min: 0, max: 3 })),
  publisher: fc.constantFrom(...PUBLISHERS),
  deleted: fc.boolean(),
  digest: fc.constantFrom(...DIGESTS),
  envelope: fc.uint8Array({ minLength: 1, maxLength: 3, max: 3 })
}).map(fields => {
  const record: TagRecord = {
    repository: fields.repository,
    tag: fields.tag,
    digest: fields.deleted ? null : fields.digest,
    mediaType: fields.deleted ? '' : 'application/vnd.oci.image.manifest.v1+json',
    sizeBytes: fields.deleted ? 0 : 100,
    hlc: { wallMs: fields.wallMs, counter: fields.counter },
    publisher: fields.publisher,
    deleted: fields.deleted
  }
  return { record, envelope: fields.envelope }
})

function stateOf (records: SignedTagRecord[]): CatalogState {
  let state: CatalogState = new Map()
  for (const record of records) {
    state = mergeRecord(state, record)
  }
  return state
}

/** Returns a state as key and record pairs sorted by key, so that deepEqual compares content and not insertion order. */
function normalise (state: CatalogState): Array<[string, SignedTagRecord]> {
  return [...state.entries()].sort(([a], [b]) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
}

const stateArbitrary = fc.array(recordArbitrary, { maxLength: 12 }).map(stateOf)

describe('catalog merge', () => {
  it('mergeStates is commutative', () => {
    fc.assert(fc.property(stateArbitrary, stateArbitrary, (a, b) => {
      assert.deepEqual(normalise(mergeStates(a, b)), normalise(mergeStates(b, a)))
    }), { numRuns: 500 })
  })

  it('mergeStates is associative', () => {
    fc.assert(fc.property(stateArbitrary, stateArbitrary, stateArbitrary, (a, b, c) => {
      assert.deepEqual(normalise(mergeStates(mergeStates(a, b), c)), normalise(mergeStates(a, mergeStates(b, c))))
    }), { numRuns: 500 })
  })

  it('mergeStates is idempotent', () => {
    fc.assert(fc.property(stateArbitrary, stateArbitrary, (a, b) => {
      const merged = mergeStates(a, b)

      assert.deepEqual(normalise(mergeStates(a, a)), normalise(a))
      assert.deepEqual(normalise(mergeStates(merged, b)), normalise(merged))
    }), { numRuns: 500 })
  })

  it('merge order of records does not matter', () => {
    fc.assert(fc.property(fc.array(recordArbitrary, { maxLength: 20 }).chain(records => fc.tuple(fc.constant(records), fc.shuffledSubarray(records, { minLength: records.length }))), ([records, shuffled]) => {
      assert.deepEqual(normalise(stateOf(records)), normalise(stateOf(shuffled)))
    }), { numRuns: 500 })
  })

  it('compareSignedRecords is a total order', () => {
    fc.assert(fc.property(recordArbitrary, recordArbitrary, recordArbitrary, (a, b, c) => {
      assert.equal(Math.sign(compareSignedRecords(a, b)), -Math.sign(compareSignedRecords(b, a)))
      if (compareSignedRecords(a, b) <= 0 && compareSignedRecords(b, c) <= 0) {
        assert.ok(compareSignedRecords(a, c) <= 0)
      }
    }), { numRuns: 1000 })
  })

  it('insertHistory keeps a sorted, bounded list without duplicates', () => {
    const sameTagArbitrary = recordArbitrary.map(signed => ({ ...signed, record: { ...signed.record, repository: 'demo/httpd', tag: 'v1' } }))

    fc.assert(fc.property(fc.array(sameTagArbitrary, { maxLength: 20 }), fc.integer({ min: 0, max: 5 }), (records, maxLength) => {
      let history: readonly SignedTagRecord[] = []
      for (const record of records) {
        history = insertHistory(history, record, maxLength)
      }

      const expected = [...new Map(records.map(record => [Buffer.from(JSON.stringify([record.record, [...record.envelope]])).toString('hex'), record])).values()]
        .sort((a, b) => compareSignedRecords(b, a))
        .slice(0, maxLength)
      assert.deepEqual(history, expected)
    }), { numRuns: 500 })
  })

  describe('with real signed records in the catalog', () => {
    let pool: SignedTagRecord[]

    before(async () => {
      const publishers: Publisher[] = [await createPublisher(), await createPublisher()]
      pool = []
      for (const [index, wallMs] of [0, 1000, Date.UTC(2026, 0, 1)].entries()) {
        for (const publisher of publishers) {
          for (const tag of ['v1', 'v2']) {
            pool.push(await signRecord(publisher, { repository: 'demo/httpd', tag, hlc: { wallMs, counter: index % 2 } }))
            pool.push(await signRecord(publisher, { repository: 'demo/httpd', tag, hlc: { wallMs, counter: 1 }, deleted: true }))
          }
        }
      }
    })

    it('two catalogs fed in different orders agree', async () => {
      await fc.assert(fc.asyncProperty(fc.shuffledSubarray(pool, { minLength: 1 }), fc.func(fc.integer()), async (records, sortKey) => {
        const reordered = [...records].sort((a, b) => sortKey(a) - sortKey(b))
        const first = await openCatalog({ trust: new TrustPolicy({ config: { mode: 'any' } }), now: () => Date.UTC(2026, 0, 1) })
        const second = await openCatalog({ trust: new TrustPolicy({ config: { mode: 'any' } }), now: () => Date.UTC(2026, 0, 1) })
        try {
          for (const record of records) {
            await first.catalog.add(record)
          }
          for (const record of [...reordered, ...records]) {
            await second.catalog.add(record)
          }

          assert.deepEqual(first.catalog.list(), second.catalog.list())
          assert.deepEqual(first.catalog.list(), normalise(stateOf(records)).map(([, record]) => record))
        } finally {
          await first.destroy()
          await second.destroy()
        }
      }), { numRuns: 25 })
    })
  })
})
