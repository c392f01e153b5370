/** Blob uploads: monolithic, chunked, resumed, mounted, cancelled and expired. */
import { strict as assert } from 'node:assert'
import { readdir, writeFile } from 'node:fs/promises'
import { request } from 'node:http'
import { connect as netConnect } from 'node:net'
import { join } from 'node:path'
import { blobOf, loadFixture, send, startRegistry, type RegistryFixture } from './helpers.js'

const LAYER = 'sha256:6605c25f659b195ee6cf445c35a56180b3a2f26db15740fb46de7076b7f728b2'
const UPLOAD_LOCATION = /^\/v2\/demo\/httpd\/blobs\/uploads\/[0-9a-f-]{36}$/

describe('registry uploads', () => {
  let registry: RegistryFixture

  beforeEach(async () => {
    registry = await startRegistry({ maxUploads: 3, uploadTtlMs: 60_000 })
  })

  afterEach(async () => {
    await registry.stop()
  })

  /** Polls the upload status until no request is writing to it, so a cut-off chunk has been rolled back. */
  async function waitForUploadIdle (location: string): Promise<Awaited<ReturnType<typeof send>>> {
    const deadline = Date.now() + 5_000
    let status = await send(registry.port, 'GET', location)
    while (registry.server.uploads.busyCount > 0 && Date.now() < deadline) {
      await new Promise(resolve => setTimeout(resolve, 10))
      status = await send(registry.port, 'GET', location)
    }
    return status
  }

  async function startUpload (path = '/v2/demo/httpd/blobs/uploads/'): Promise<string> {
    const response = await send(registry.port, 'POST', path)
    assert.equal(response.status, 202)
    return String(response.headers.location)
  }

  it('POST starts an upload', async () => {
    const response = await send(registry.port, 'POST', '/v2/demo/httpd/blobs/uploads/')

    assert.equal(response.status, 202)
    assert.match(String(response.headers.location), UPLOAD_LOCATION)
    assert.equal(response.headers.range, '0-0')
    assert.equal(response.headers['docker-upload-uuid'], String(response.headers.location).split('/').pop())
    assert.equal(registry.server.uploads.size, 1)
  })

  it('POST keeps a small first chunk', async () => {
    // Node parses a body this small along with the headers, before the handler runs.
    const { bytes, digest } = blobOf('abc')

    const started = await send(registry.port, 'POST', '/v2/demo/httpd/blobs/uploads/', { body: bytes })
    const completed = await send(registry.port, 'PUT', `${String(started.headers.location)}?digest=${digest}`)

    assert.equal(started.status, 202)
    assert.equal(started.headers.range, `0-${bytes.byteLength - 1}`)
    assert.equal(completed.status, 201)
    assert.deepEqual(Buffer.from(await registry.backend.store.read(digest)), bytes)
  })

  it('POST with digest stores the blob at once', async () => {
    const { bytes, digest } = blobOf('monolithic')

    const response = await send(registry.port, 'POST', `/v2/demo/httpd/blobs/uploads/?digest=${digest}`, { body: bytes })

    assert.equal(response.status, 201)
    assert.equal(response.headers.location, `/v2/demo/httpd/blobs/${digest}`)
    assert.equal(response.headers['docker-content-digest'], digest)
    assert.deepEqual(Buffer.from(await registry.backend.store.read(digest)), bytes)
    assert.equal(registry.server.uploads.size, 0)
  })

  it('PATCH then PUT stores the blob', async () => {
    const { bytes, digest } = blobOf('one patch with the whole blob')
    const location = await startUpload()

    const patched = await send(registry.port, 'PATCH', location, { body: bytes })
    const completed = await send(registry.port, 'PUT', `${location}?digest=${digest}`)

    assert.equal(patched.status, 202)
    assert.equal(patched.headers.location, location)
    assert.equal(patched.headers.range, `0-${bytes.byteLength - 1}`)
    assert.equal(completed.status, 201)
    assert.equal(completed.headers['docker-content-digest'], digest)
    assert.deepEqual(Buffer.from(await registry.backend.store.read(digest)), bytes)
    assert.deepEqual(await readdir(join(registry.dir, 'uploads')), [])
  })

  it('PUT with a wrong digest closes the upload', async () => {
    const { bytes } = blobOf('the bytes sent')
    const { digest: other } = blobOf('other bytes')
    const location = await startUpload()
    await send(registry.port, 'PATCH', location, { body: bytes })

    const completed = await send(registry.port, 'PUT', `${location}?digest=${other}`)
    const status = await send(registry.port, 'GET', location)

    assert.equal(completed.status, 400)
    assert.equal(completed.code, 'DIGEST_INVALID')
    assert.match(completed.body.toString(), /start a new one with POST \/v2\/demo\/httpd\/blobs\/uploads\//)
    assert.equal(status.status, 404)
    assert.equal(await registry.backend.store.has(other), false)
  })

  it('chunked PATCH stores every chunk', async () => {
    const { bytes, digest } = blobOf('a'.repeat(100_000) + 'b'.repeat(100_000))
    const location = await startUpload()

    const patched = await send(registry.port, 'PATCH', location, {
      headers: { 'Transfer-Encoding': 'chunked' },
      chunks: [bytes.subarray(0, 1), bytes.subarray(1, 70_000), bytes.subarray(70_000)]
    })
    const completed = await send(registry.port, 'PUT', `${location}?digest=${digest}`)

    assert.equal(patched.status, 202)
    assert.equal(patched.headers.range, `0-${bytes.byteLength - 1}`)
    assert.equal(completed.status, 201)
    assert.equal(await registry.backend.store.has(digest), true)
  })

  it('PATCHes with Content-Range resume after a bad chunk', async () => {
    const { bytes, digest } = blobOf('0123456789abcdefghij')
    const location = await startUpload()

    const first = await send(registry.port, 'PATCH', location, { headers: { 'Content-Range': '0-9' }, body: bytes.subarray(0, 10) })
    const outOfOrder = await send(registry.port, 'PATCH', location, { headers: { 'Content-Range': '15-19' }, body: bytes.subarray(15) })
    const second = await send(registry.port, 'PATCH', location, { headers: { 'Content-Range': '10-19' }, body: bytes.subarray(10) })
    const completed = await send(registry.port, 'PUT', `${location}?digest=${digest}`)

    assert.equal(first.status, 202)
    assert.equal(outOfOrder.status, 416)
    assert.equal(outOfOrder.headers.range, '0-9')
    assert.equal(second.status, 202)
    assert.equal(second.headers.range, '0-19')
    assert.equal(completed.status, 201)
  })

  it('PUT carries the last chunk', async () => {
    const { bytes, digest } = blobOf('first half, second half')
    const location = await startUpload()

    await send(registry.port, 'PATCH', location, { body: bytes.subarray(0, 11) })
    const completed = await send(registry.port, 'PUT', `${location}?digest=${digest}`, { headers: { 'Content-Range': `11-${bytes.byteLength - 1}` }, body: bytes.subarray(11) })

    assert.equal(completed.status, 201)
    assert.deepEqual(Buffer.from(await registry.backend.store.read(digest)), bytes)
  })

  it('PUT with the whole body and no PATCH', async () => {
    const { bytes, digest } = blobOf('containerd sends one PUT')
    const location = await startUpload()

    const completed = await send(registry.port, 'PUT', `${location}?digest=${digest}`, { body: bytes })

    assert.equal(completed.status, 201)
    assert.equal(await registry.backend.store.has(digest), true)
  })

  it('empty blob uploads', async () => {
    const { digest } = blobOf('')
    const location = await startUpload()

    const completed = await send(registry.port, 'PUT', `${location}?digest=${digest}`)

    assert.equal(completed.status, 201)
    assert.equal((await registry.backend.store.stat(digest))?.sizeBytes, 0)
  })

  it('chunk cut off by the client is rolled back', async () => {
    const location = await startUpload()
    await send(registry.port, 'PATCH', location, { body: Buffer.from('12345') })

    await new Promise<void>(resolve => {
      const socket = netConnect(registry.port, '127.0.0.1', () => {
        socket.write(`PATCH ${location} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100000\r\n\r\n`)
        socket.write(Buffer.alloc(10_000))
        setTimeout(() => { socket.destroy() }, 50)
      })
      socket.on('close', () => { resolve() })
    })
    const settled = await waitForUploadIdle(location)
    const { digest } = blobOf('123456789')
    await send(registry.port, 'PATCH', location, { body: Buffer.from('6789') })
    const completed = await send(registry.port, 'PUT', `${location}?digest=${digest}`)

    assert.equal(settled.status, 204)
    assert.equal(settled.headers.range, '0-4')
    assert.equal(completed.status, 201, completed.body.toString())
  })

  it('GET reports upload progress', async () => {
    const location = await startUpload()
    await send(registry.port, 'PATCH', location, { body: Buffer.from('12345') })

    const status = await send(registry.port, 'GET', location)

    assert.equal(status.status, 204)
    assert.equal(status.headers.range, '0-4')
    assert.equal(status.headers.location, location)
  })

  it('DELETE cancels the upload', async () => {
    const location = await startUpload()
    await send(registry.port, 'PATCH', location, { body: Buffer.from('12345') })

    const cancelled = await send(registry.port, 'DELETE', location)
    const status = await send(registry.port, 'GET', location)

    assert.equal(cancelled.status, 204)
    assert.equal(status.status, 404)
    assert.equal(status.code, 'BLOB_UPLOAD_UNKNOWN')
    assert.deepEqual(await readdir(join(registry.dir, 'uploads')), [])
  })

  it('DELETE during a PATCH fails the PATCH', async () => {
    const location = await startUpload()
    const patch = request({ host: '127.0.0.1', port: registry.port, method: 'PATCH', path: location, headers: { 'Content-Type': 'application/octet-stream' } })
    const response = new Promise<{ status: number, body: string }>((resolve, reject) => {
      patch.once('response', res => {
        let body = ''
        res.on('data', (chunk: Buffer) => { body += chunk.toString() })
        res.once('end', () => { resolve({ status: res.statusCode ?? 0, body }) })
      })
      patch.once('error', reject)
    })
    patch.write(Buffer.alloc(1024, 1))
    const deadline = Date.now() + 5_000
    while (registry.server.uploads.busyCount === 0 && Date.now() < deadline) {
      await new Promise(resolve => setTimeout(resolve, 10))
    }

    const cancelled = await send(registry.port, 'DELETE', location)
    patch.end(Buffer.alloc(1024, 2))
    const patched = await response

    assert.equal(cancelled.status, 204)
    assert.equal(patched.status, 404)
    assert.equal(JSON.parse(patched.body).errors[0].code, 'BLOB_UPLOAD_UNKNOWN')
    assert.match(patched.body, /was cancelled while this chunk arrived/)
    assert.equal(registry.server.uploads.size, 0)
  })

  it('mount of a local blob needs no upload', async () => {
    await loadFixture(registry.backend.store, 'micro-httpd')

    const response = await send(registry.port, 'POST', `/v2/demo/copy/blobs/uploads/?mount=${LAYER}&from=demo/httpd`)

    assert.equal(response.status, 201)
    assert.equal(response.headers.location, `/v2/demo/copy/blobs/${LAYER}`)
    assert.equal(response.headers['docker-content-digest'], LAYER)
    assert.equal(registry.server.uploads.size, 0)
  })

  it('mount of a missing blob starts an upload', async () => {
    const response = await send(registry.port, 'POST', `/v2/demo/httpd/blobs/uploads/?mount=${LAYER}&from=demo/other`)

    assert.equal(response.status, 202)
    assert.match(String(response.headers.location), UPLOAD_LOCATION)
  })

  it('uploads past the limit get TOOMANYREQUESTS', async () => {
    for (let i = 0; i < 3; i++) {
      await startUpload()
    }

    const response = await send(registry.port, 'POST', '/v2/demo/httpd/blobs/uploads/')

    assert.equal(response.status, 429)
    assert.equal(response.code, 'TOOMANYREQUESTS')
    // The empty uploads started just now expire after the 60 s these tests set.
    assert.equal(response.headers['retry-after'], '60')
  })

  it('chunk over the limit cancels the upload', async () => {
    await registry.stop()
    registry = await startRegistry({ maxUploads: 3, uploadTtlMs: 60_000, maxUploadBytes: 1_000 })
    const declared = await startUpload()
    const streamed = await startUpload()

    const tooLarge = await send(registry.port, 'PATCH', declared, { body: Buffer.alloc(1_001) })
    const tooLargeChunked = await send(registry.port, 'PATCH', streamed, { headers: { 'Transfer-Encoding': 'chunked' }, body: Buffer.alloc(1_001) })
    const statusAfter = await send(registry.port, 'GET', declared)
    const statusAfterChunked = await send(registry.port, 'GET', streamed)

    assert.equal(tooLarge.status, 413)
    assert.equal(tooLargeChunked.status, 413)
    assert.equal(statusAfter.status, 404)
    assert.equal(statusAfterChunked.status, 404)
    assert.deepEqual(await readdir(join(registry.dir, 'uploads')), [])
  })

  it('idle uploads expire with their file', async () => {
    const location = await startUpload()
    await send(registry.port, 'PATCH', location, { body: Buffer.from('12345') })

    const expiredEarly = await registry.server.uploads.expireIdle(Date.now() + 30_000)
    const expired = await registry.server.uploads.expireIdle(Date.now() + 61_000)
    const status = await send(registry.port, 'GET', location)

    assert.equal(expiredEarly, 0)
    assert.equal(expired, 1)
    assert.equal(status.status, 404)
    assert.deepEqual(await readdir(join(registry.dir, 'uploads')), [])
  })

  it('empty uploads expire after five minutes', async () => {
    await registry.stop()
    registry = await startRegistry({ maxUploads: 3, uploadTtlMs: 3_600_000 })
    const empty = await startUpload()
    const started = await startUpload()
    await send(registry.port, 'PATCH', started, { body: Buffer.from('12345') })

    const expired = await registry.server.uploads.expireIdle(Date.now() + 5 * 60_000 + 1_000)

    assert.equal(expired, 1)
    assert.equal((await send(registry.port, 'GET', empty)).status, 404)
    assert.equal((await send(registry.port, 'GET', started)).status, 204)
  })

  it('restart removes leftover partial files', async () => {
    await writeFile(join(registry.dir, 'uploads', 'left-over'), 'partial')

    await registry.server.stop()
    await registry.server.start()

    assert.deepEqual(await readdir(join(registry.dir, 'uploads')), [])
  })

  it('upload under ns keeps ns in Location', async () => {
    const response = await send(registry.port, 'POST', '/v2/demo/httpd/blobs/uploads/?ns=mirror.test')

    assert.match(String(response.headers.location), /^\/v2\/demo\/httpd\/blobs\/uploads\/[0-9a-f-]{36}\?ns=mirror.test$/)
  })
})
