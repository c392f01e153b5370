import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect } from 'chai'
import { LevelDatastore } from 'datastore-level'
import { Key } from 'interface-datastore'
import { PeerCacheDatastore } from '../../../node/net/peer-cache-datastore.js'

const encoder = new TextEncoder()
const decoder = new TextDecoder()

describe('PeerCacheDatastore', () => {
  let dir: string
  let level: LevelDatastore
  let cached: PeerCacheDatastore

  async function open (): Promise<void> {
    level = new LevelDatastore(dir)
    await level.open()
    // A long interval, so that only flush() and close() write peer records.
    cached = new PeerCacheDatastore(level, { flushIntervalMs: 60_000 })
    await cached.open()
  }

  async function reopen (): Promise<void> {
    await cached.close()
    await level.close()
    await open()
  }

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'km-peer-cache-'))
    await open()
  })

  afterEach(async () => {
    await cached.close()
    await level.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('holds peer records until flushed', async () => {
    const key = new Key('/peers/bafzaa')
    await cached.put(key, encoder.encode('v1'))

    expect(decoder.decode(await cached.get(key))).to.equal('v1')
    expect(await level.has(key)).to.equal(false)

    await cached.flush()
    expect(decoder.decode(await level.get(key))).to.equal('v1')
  })

  it('writes other keys through', async () => {
    const key = new Key('/dht/provider/abc')
    await cached.put(key, encoder.encode('record'))

    expect(decoder.decode(await level.get(key))).to.equal('record')
  })

  it('keeps latest peer changes across restart', async () => {
    const updated = new Key('/peers/bafzkept')
    const removed = new Key('/peers/bafzremoved')
    await cached.put(updated, encoder.encode('old'))
    await cached.put(removed, encoder.encode('gone soon'))
    await cached.flush()
    await cached.put(updated, encoder.encode('new'))
    await cached.delete(removed)

    await reopen()

    expect(decoder.decode(await cached.get(updated))).to.equal('new')
    expect(await cached.has(removed)).to.equal(false)
  })

  it('queries unflushed peer records', async () => {
    await cached.put(new Key('/peers/bafza'), encoder.encode('a'))
    await cached.put(new Key('/peers/bafzb'), encoder.encode('b'))
    await cached.put(new Key('/catalog/x'), encoder.encode('x'))

    const keys: string[] = []
    for await (const { key } of cached.query({ prefix: '/peers/' })) {
      keys.push(key.toString())
    }
    expect(keys.sort()).to.deep.equal(['/peers/bafza', '/peers/bafzb'])
  })

  it('includes peers in unprefixed queries', async () => {
    await cached.put(new Key('/peers/bafza'), encoder.encode('a'))
    await cached.put(new Key('/catalog/x'), encoder.encode('x'))

    const keys: string[] = []
    for await (const key of cached.queryKeys({})) {
      keys.push(key.toString())
    }
    expect(keys.sort()).to.deep.equal(['/catalog/x', '/peers/bafza'])
  })

  it('splits batches by key prefix', async () => {
    const batch = cached.batch()
    batch.put(new Key('/catalog/a'), encoder.encode('a'))
    batch.put(new Key('/catalog/b'), encoder.encode('b'))
    batch.put(new Key('/peers/bafzc'), encoder.encode('c'))
    await batch.commit()

    expect(await level.has(new Key('/catalog/a'))).to.equal(true)
    expect(await level.has(new Key('/catalog/b'))).to.equal(true)
    expect(await level.has(new Key('/peers/bafzc'))).to.equal(false)
    expect(decoder.decode(await cached.get(new Key('/peers/bafzc')))).to.equal('c')
  })

  it('throws NotFoundError for missing peers', async () => {
    const error = await Promise.resolve(cached.get(new Key('/peers/bafznone'))).then(() => undefined, (err: Error) => err)
    expect(error?.name).to.equal('NotFoundError')
  })
})
