/** Blob downloads: whole, by range, from the mesh, and HEAD. */
import { strict as assert } from 'node:assert'
import { randomBytes } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { MAX_CACHED_BLOB_BYTES } from '../../../node/store/blob-cache.js'
import { fixtureBlob, loadFixture, send, startRegistry, type RegistryFixture } from './helpers.js'

const LAYER = 'sha256:6605c25f659b195ee6cf445c35a56180b3a2f26db15740fb46de7076b7f728b2'
const LAYER_BYTES = 6073
const BUSYBOX_LAYER = 'sha256:0bf36be11406bc3d56538a05318bbf7263a4f78c1b67e91a206087d7bfa2ce36'

describe('registry blobs', () => {
  let registry: RegistryFixture
  let layer: Buffer

  beforeEach(async () => {
    registry = await startRegistry({ fetchTimeoutMs: 300 })
    await loadFixture(registry.backend.store, 'micro-httpd')
    layer = await fixtureBlob('micro-httpd', LAYER)
  })

  afterEach(async () => {
    await registry.stop()
  })

  it('GET returns the whole blob', async () => {
    const response = await send(registry.port, 'GET', `/v2/demo/httpd/blobs/${LAYER}`)

    assert.equal(response.status, 200)
    assert.deepEqual(response.body, layer)
    assert.equal(response.headers['content-length'], String(LAYER_BYTES))
    assert.equal(response.headers['content-type'], 'application/octet-stream')
    assert.equal(response.headers['docker-content-digest'], LAYER)
    assert.equal(response.headers['accept-ranges'], 'bytes')
  })

  it('HEAD sends headers only', async () => {
    const response = await send(registry.port, 'HEAD', `/v2/demo/httpd/blobs/${LAYER}`)

    assert.equal(response.status, 200)
    assert.equal(response.body.byteLength, 0)
    assert.equal(response.headers['content-length'], String(LAYER_BYTES))
    assert.equal(response.headers['docker-content-digest'], LAYER)
  })

  it('GET works under any repository', async () => {
    const response = await send(registry.port, 'GET', `/v2/another/repository/blobs/${LAYER}`)

    assert.equal(response.status, 200)
    assert.deepEqual(response.body, layer)
  })

  const ranges: Array<[string, number, number]> = [
    ['bytes=0-99', 0, 99],
    ['bytes=6000-', 6000, LAYER_BYTES - 1],
    ['bytes=-10', LAYER_BYTES - 10, LAYER_BYTES - 1],
    ['bytes=100-100', 100, 100]
  ]

  for (const [header, start, end] of ranges) {
    it(`Range ${header} returns 206 with those bytes`, async () => {
      const response = await send(registry.port, 'GET', `/v2/demo/httpd/blobs/${LAYER}`, { headers: { Range: header } })

      assert.equal(response.status, 206)
      assert.deepEqual(response.body, layer.subarray(start, end + 1))
      assert.equal(response.headers['content-range'], `bytes ${start}-${end}/${LAYER_BYTES}`)
      assert.equal(response.headers['content-length'], String(end - start + 1))
    })
  }

  it('several ranges return the whole blob', async () => {
    const response = await send(registry.port, 'GET', `/v2/demo/httpd/blobs/${LAYER}`, { headers: { Range: 'bytes=0-9,20-29' } })

    assert.equal(response.status, 200)
    assert.equal(response.body.byteLength, LAYER_BYTES)
  })

  it('GET fetches a blob held only by peers', async () => {
    const meshStore = registry.backend.meshStore
    assert.ok(meshStore != null)
    await loadFixture(meshStore, 'busybox')

    const response = await send(registry.port, 'GET', `/v2/demo/busybox/blobs/${BUSYBOX_LAYER}`)

    assert.equal(response.status, 200)
    assert.deepEqual(response.body, await fixtureBlob('busybox', BUSYBOX_LAYER))
    assert.deepEqual(registry.backend.fetched, [BUSYBOX_LAYER])
  })

  it('blob fetched into memory is served before it is stored', async () => {
    const meshStore = registry.backend.meshStore
    assert.ok(meshStore != null)
    await loadFixture(meshStore, 'busybox')
    registry.backend.memoryStoreDelayMs = 500

    const response = await send(registry.port, 'GET', `/v2/demo/busybox/blobs/${BUSYBOX_LAYER}`)
    const storedAtResponse = await registry.backend.store.has(BUSYBOX_LAYER)

    assert.equal(response.status, 200)
    assert.deepEqual(response.body, await fixtureBlob('busybox', BUSYBOX_LAYER))
    assert.equal(response.headers['docker-content-digest'], BUSYBOX_LAYER)
    assert.equal(response.headers['content-length'], String(response.body.byteLength))
    assert.equal(storedAtResponse, false, 'the response did not wait for the store')
  })

  it('Range of a blob in memory returns those bytes', async () => {
    const meshStore = registry.backend.meshStore
    assert.ok(meshStore != null)
    await loadFixture(meshStore, 'busybox')
    registry.backend.memoryStoreDelayMs = 500
    const whole = await fixtureBlob('busybox', BUSYBOX_LAYER)

    const response = await send(registry.port, 'GET', `/v2/demo/busybox/blobs/${BUSYBOX_LAYER}`, { headers: { Range: 'bytes=100-199' } })

    assert.equal(response.status, 206)
    assert.deepEqual(response.body, whole.subarray(100, 200))
    assert.equal(response.headers['content-range'], `bytes 100-199/${whole.byteLength}`)
  })

  it('HEAD does not fetch from peers', async () => {
    const meshStore = registry.backend.meshStore
    assert.ok(meshStore != null)
    await loadFixture(meshStore, 'busybox')

    const response = await send(registry.port, 'HEAD', `/v2/demo/busybox/blobs/${BUSYBOX_LAYER}`)

    assert.equal(response.status, 404)
    assert.deepEqual(registry.backend.fetched, [])
  })

  it('slow peers give BLOB_UNKNOWN within the fetch timeout', async () => {
    registry.backend.meshDelayMs = 10_000
    const startedMs = Date.now()

    const response = await send(registry.port, 'GET', `/v2/demo/busybox/blobs/${BUSYBOX_LAYER}`)

    assert.equal(response.status, 404)
    assert.equal(response.code, 'BLOB_UNKNOWN')
    assert.ok(Date.now() - startedMs < 2_000, `answered after ${Date.now() - startedMs} ms`)
  })

  it('corrupt blob on disk is not served', async () => {
    // Larger than the store's memory cache takes, so the request reads the disk.
    const large = randomBytes(MAX_CACHED_BLOB_BYTES + 1)
    const digest = await registry.backend.store.put(large)
    await writeFile(registry.backend.store.pathOf(digest), Buffer.alloc(large.byteLength))

    const response = await send(registry.port, 'GET', `/v2/demo/httpd/blobs/${digest}`)

    assert.equal(response.status, 404)
    assert.equal(response.code, 'BLOB_UNKNOWN')
  })

  /** Records the blobs whose file a request verifies on disk. */
  function watchDiskReads (): string[] {
    const store = registry.backend.store
    assert.ok(store.cachedBytes(LAYER) != null, 'the fixture layer is in the store\'s cache')
    const diskReads: string[] = []
    const verify = store.verify.bind(store)
    store.verify = async (digest, options) => { diskReads.push(digest); return verify(digest, options) }
    return diskReads
  }

  it('cached blob is served from memory', async () => {
    const diskReads = watchDiskReads()

    const response = await send(registry.port, 'GET', `/v2/demo/httpd/blobs/${LAYER}`)

    assert.equal(response.status, 200)
    assert.deepEqual(response.body, layer)
    assert.equal(response.headers['content-length'], String(LAYER_BYTES))
    assert.deepEqual(diskReads, [], 'the request did not verify the file on disk')
  })

  it('Range of a cached blob is served from memory', async () => {
    const diskReads = watchDiskReads()

    const response = await send(registry.port, 'GET', `/v2/demo/httpd/blobs/${LAYER}`, { headers: { Range: 'bytes=10-19' } })

    assert.equal(response.status, 206)
    assert.deepEqual(response.body, layer.subarray(10, 20))
    assert.deepEqual(diskReads, [], 'the request did not verify the file on disk')
  })
})
