/**
 * Bad requests and the OCI errors they get, as one table. After each case
 * the test checks that nothing was written: no new blob in the store, no
 * published tag, no bytes left in the upload folder.
 */
import { strict as assert } from 'node:assert'
import { readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { digestOf } from '../../../protocol/digest.js'
import { MAX_MESH_FETCHES_PER_MANIFEST } from '../../../node/registry/manifest-push.js'
import { blobOf, loadFixture, send, startRegistry, type RegistryFixture } from './helpers.js'
import type { OutgoingHttpHeaders } from 'node:http'

const LAYER = 'sha256:7c7c06a71bd052741ef6a57efb0fa47d95fd407ac41444208fafd33dc3097045'
const CONFIG = 'sha256:11cf634045183836747073e3aea959d01fdaf4fd55c8b9c022738e62123c439c'
const MANIFEST_V1 = 'sha256:b00a22a43573e6deb217672d8fad3294e1a02e7d984c5a072d2044b18f24928c'
const UNKNOWN_DIGEST = `sha256:${'0'.repeat(64)}`
/** The layer of micro-httpd:v1, so a manifest with it and CONFIG is complete. */
const V1_LAYER = { digest: 'sha256:6605c25f659b195ee6cf445c35a56180b3a2f26db15740fb46de7076b7f728b2', size: 6073 }
const MAX_UPLOAD_BYTES = 64 * 1024

function manifestWith (layers: Array<{ digest: string, size: number }>, config = { digest: CONFIG, size: 434 }): Buffer {
  return Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
    layers: layers.map(layer => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...layer }))
  }))
}

const OCI_MANIFEST_HEADERS = { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' }

/** Returns `count` layer descriptors of blobs that exist nowhere. */
function unknownLayers (count: number): Array<{ digest: string, size: number }> {
  return Array.from({ length: count }, (_, index) => ({ digest: digestOf(Buffer.from(`unknown layer ${index}`)), size: 10 }))
}

/** Returns a complete manifest without its mediaType field, so only the Content-Type can name its type. */
function manifestWithoutMediaType (): Buffer {
  const fields = JSON.parse(manifestWith([V1_LAYER]).toString()) as Record<string, unknown>
  delete fields.mediaType
  return Buffer.from(JSON.stringify(fields))
}

/** Returns a complete manifest whose own mediaType, or its config's, carries `; charset=utf-8`. */
function manifestWithCharset (field: 'mediaType' | 'config'): Buffer {
  const fields = JSON.parse(manifestWith([V1_LAYER]).toString()) as { mediaType: string, config: { mediaType: string } }
  if (field === 'mediaType') {
    fields.mediaType += '; charset=utf-8'
  } else {
    fields.config.mediaType += '; charset=utf-8'
  }
  return Buffer.from(JSON.stringify(fields))
}

/** The error for a manifest mediaType field with a charset: it names the field and the bare type to write there. */
const MANIFEST_CHARSET_MESSAGE = /invalid manifest mediaType "application\/vnd\.oci\.image\.manifest\.v1\+json; charset=utf-8": .*must not carry parameters such as "; charset=utf-8"; change the manifest mediaType field to "application\/vnd\.oci\.image\.manifest\.v1\+json"/

interface BadRequest {
  name: string
  method: string
  /** The path, or a function that starts an upload first and returns the path to use. */
  path: string | ((registry: RegistryFixture) => Promise<string>)
  headers?: OutgoingHttpHeaders
  body?: Buffer
  status: number
  code: string
  /** Pattern the error message must match, where the code alone does not show that the advice is right. */
  message?: RegExp
}

async function startUpload (registry: RegistryFixture): Promise<string> {
  const response = await send(registry.port, 'POST', '/v2/demo/httpd/blobs/uploads/')
  assert.equal(response.status, 202)
  return String(response.headers.location)
}

const CASES: BadRequest[] = [
  { name: 'uppercase repository name', method: 'GET', path: '/v2/Demo/httpd/tags/list', status: 400, code: 'NAME_INVALID' },
  { name: 'encoded parent folder in name', method: 'GET', path: '/v2/demo/%2e%2e/etc/manifests/v1', status: 400, code: 'NAME_INVALID' },
  { name: 'encoded slashes in pushed name', method: 'PUT', path: '/v2/demo/..%2f..%2fetc/manifests/v1', headers: OCI_MANIFEST_HEADERS, body: manifestWith([]), status: 400, code: 'NAME_INVALID' },
  { name: 'parent folder in blob path', method: 'GET', path: '/v2/demo/httpd/blobs/../../../etc/passwd', status: 404, code: 'UNSUPPORTED' },
  { name: 'repository name over 255 characters', method: 'GET', path: `/v2/${'a'.repeat(256)}/tags/list`, status: 400, code: 'NAME_INVALID' },
  { name: 'URL over 2048 characters', method: 'GET', path: `/v2/demo/httpd/manifests/${'a'.repeat(2100)}`, status: 414, code: 'UNSUPPORTED' },
  { name: 'path outside /v2/', method: 'GET', path: '/v3/', status: 404, code: 'UNSUPPORTED' },
  { name: 'short manifest digest', method: 'GET', path: '/v2/demo/httpd/manifests/sha256:abc', status: 400, code: 'DIGEST_INVALID' },
  { name: 'sha512 manifest digest', method: 'GET', path: `/v2/demo/httpd/manifests/sha512:${'a'.repeat(128)}`, status: 400, code: 'DIGEST_INVALID' },
  { name: 'invalid tag', method: 'GET', path: '/v2/demo/httpd/manifests/-v1', status: 400, code: 'TAG_INVALID' },
  { name: 'unknown tag', method: 'GET', path: '/v2/demo/httpd/manifests/v9', status: 404, code: 'MANIFEST_UNKNOWN' },
  { name: 'layer asked for as manifest', method: 'GET', path: `/v2/demo/httpd/manifests/${LAYER}`, status: 404, code: 'MANIFEST_UNKNOWN' },
  { name: 'manifest type not accepted', method: 'GET', path: '/v2/demo/httpd/manifests/v1', headers: { Accept: 'application/vnd.docker.distribution.manifest.v2+json' }, status: 404, code: 'MANIFEST_UNKNOWN' },
  { name: 'unknown blob', method: 'GET', path: `/v2/demo/httpd/blobs/${UNKNOWN_DIGEST}`, status: 404, code: 'BLOB_UNKNOWN' },
  { name: 'traversal in blob digest', method: 'GET', path: '/v2/demo/httpd/blobs/sha256:..%2F..%2Fetc%2Fpasswd', status: 400, code: 'DIGEST_INVALID' },
  { name: 'range past blob end', method: 'GET', path: `/v2/demo/httpd/blobs/${LAYER}`, headers: { Range: 'bytes=99999-' }, status: 416, code: 'RANGE_INVALID' },
  { name: 'blob delete', method: 'DELETE', path: `/v2/demo/httpd/blobs/${LAYER}`, status: 405, code: 'UNSUPPORTED' },
  { name: 'POST on a manifest', method: 'POST', path: '/v2/demo/httpd/manifests/v1', status: 405, code: 'UNSUPPORTED' },
  { name: 'manifest that is not JSON', method: 'PUT', path: '/v2/demo/httpd/manifests/v3', headers: OCI_MANIFEST_HEADERS, body: Buffer.from('not json'), status: 400, code: 'MANIFEST_INVALID' },
  { name: 'schema 1 manifest', method: 'PUT', path: '/v2/demo/httpd/manifests/v3', headers: { 'Content-Type': 'application/vnd.docker.distribution.manifest.v1+prettyjws' }, body: Buffer.from('{"schemaVersion":1,"name":"demo/httpd","tag":"v3","fsLayers":[]}'), status: 400, code: 'MANIFEST_INVALID' },
  { name: 'manifest sent as text/plain', method: 'PUT', path: '/v2/demo/httpd/manifests/v3', headers: { 'Content-Type': 'text/plain' }, body: manifestWith([V1_LAYER]), status: 400, code: 'MANIFEST_INVALID' },
  { name: 'manifest sent as octet-stream', method: 'PUT', path: '/v2/demo/httpd/manifests/v3', headers: { 'Content-Type': 'application/octet-stream' }, body: manifestWith([V1_LAYER]), status: 400, code: 'MANIFEST_INVALID' },
  { name: 'manifest by digest as text/plain', method: 'PUT', path: `/v2/demo/httpd/manifests/${digestOf(manifestWith([V1_LAYER]))}`, headers: { 'Content-Type': 'text/plain; charset=utf-8' }, body: manifestWith([V1_LAYER]), status: 400, code: 'MANIFEST_INVALID' },
  { name: 'manifest without mediaType as text/plain', method: 'PUT', path: '/v2/demo/httpd/manifests/v3', headers: { 'Content-Type': 'text/plain' }, body: manifestWithoutMediaType(), status: 400, code: 'MANIFEST_INVALID' },
  { name: 'Docker Content-Type for OCI body', method: 'PUT', path: '/v2/demo/httpd/manifests/v3', headers: { 'Content-Type': 'application/vnd.docker.distribution.manifest.v2+json' }, body: manifestWith([V1_LAYER]), status: 400, code: 'MANIFEST_INVALID' },
  { name: 'Content-Type contradicting body', method: 'PUT', path: '/v2/demo/httpd/manifests/v3', headers: { 'Content-Type': 'application/vnd.oci.image.index.v1+json' }, body: manifestWith([]), status: 400, code: 'MANIFEST_INVALID' },
  { name: 'charset in manifest mediaType', method: 'PUT', path: '/v2/demo/httpd/manifests/v3', headers: OCI_MANIFEST_HEADERS, body: manifestWithCharset('mediaType'), status: 400, code: 'MANIFEST_INVALID', message: MANIFEST_CHARSET_MESSAGE },
  { name: 'charset in mediaType and Content-Type', method: 'PUT', path: '/v2/demo/httpd/manifests/v3', headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json; charset=utf-8' }, body: manifestWithCharset('mediaType'), status: 400, code: 'MANIFEST_INVALID', message: MANIFEST_CHARSET_MESSAGE },
  { name: 'charset in mediaType as JSON', method: 'PUT', path: '/v2/demo/httpd/manifests/v3', headers: { 'Content-Type': 'application/json; charset=utf-8' }, body: manifestWithCharset('mediaType'), status: 400, code: 'MANIFEST_INVALID', message: MANIFEST_CHARSET_MESSAGE },
  { name: 'charset in config mediaType', method: 'PUT', path: '/v2/demo/httpd/manifests/v3', headers: OCI_MANIFEST_HEADERS, body: manifestWithCharset('config'), status: 400, code: 'MANIFEST_INVALID', message: /invalid config\.mediaType "application\/vnd\.oci\.image\.config\.v1\+json; charset=utf-8": .*change the config\.mediaType field to "application\/vnd\.oci\.image\.config\.v1\+json"/ },
  { name: 'manifest over 4 MiB', method: 'PUT', path: '/v2/demo/httpd/manifests/v3', headers: OCI_MANIFEST_HEADERS, body: Buffer.alloc(4 * 1024 * 1024 + 1, 0x20), status: 413, code: 'SIZE_INVALID' },
  { name: 'manifest with unknown layer', method: 'PUT', path: '/v2/demo/httpd/manifests/v3', headers: OCI_MANIFEST_HEADERS, body: manifestWith([{ digest: UNKNOWN_DIGEST, size: 10 }]), status: 400, code: 'MANIFEST_BLOB_UNKNOWN' },
  { name: 'manifest with too many unknown layers', method: 'PUT', path: '/v2/demo/httpd/manifests/v3', headers: OCI_MANIFEST_HEADERS, body: manifestWith(unknownLayers(MAX_MESH_FETCHES_PER_MANIFEST + 1)), status: 400, code: 'MANIFEST_BLOB_UNKNOWN', message: /more than 64 are not in this agent's store/ },
  { name: 'manifest with wrong layer size', method: 'PUT', path: '/v2/demo/httpd/manifests/v3', headers: OCI_MANIFEST_HEADERS, body: manifestWith([{ digest: LAYER, size: 10 }]), status: 400, code: 'MANIFEST_INVALID' },
  { name: 'manifest pushed under another digest', method: 'PUT', path: `/v2/demo/httpd/manifests/${MANIFEST_V1}`, headers: OCI_MANIFEST_HEADERS, body: manifestWith([{ digest: LAYER, size: 6074 }]), status: 400, code: 'DIGEST_INVALID' },
  { name: 'delete of unknown tag', method: 'DELETE', path: '/v2/demo/httpd/manifests/v9', status: 404, code: 'MANIFEST_UNKNOWN' },
  { name: 'delete of unknown digest', method: 'DELETE', path: `/v2/demo/httpd/manifests/${UNKNOWN_DIGEST}`, status: 404, code: 'MANIFEST_UNKNOWN' },
  { name: 'monolithic upload with invalid digest', method: 'POST', path: '/v2/demo/httpd/blobs/uploads/?digest=sha256:xyz', body: Buffer.from('hello'), status: 400, code: 'DIGEST_INVALID' },
  { name: 'monolithic upload with wrong digest', method: 'POST', path: `/v2/demo/httpd/blobs/uploads/?digest=${blobOf('other').digest}`, body: Buffer.from('hello'), status: 400, code: 'DIGEST_INVALID' },
  { name: 'monolithic upload over the limit', method: 'POST', path: `/v2/demo/httpd/blobs/uploads/?digest=${digestOf(Buffer.alloc(MAX_UPLOAD_BYTES + 1))}`, body: Buffer.alloc(MAX_UPLOAD_BYTES + 1), status: 413, code: 'SIZE_INVALID' },
  { name: 'chunked monolithic upload over the limit', method: 'POST', path: `/v2/demo/httpd/blobs/uploads/?digest=${UNKNOWN_DIGEST}`, headers: { 'Transfer-Encoding': 'chunked' }, body: Buffer.alloc(MAX_UPLOAD_BYTES + 1), status: 413, code: 'SIZE_INVALID' },
  { name: 'mount with invalid digest', method: 'POST', path: '/v2/demo/httpd/blobs/uploads/?mount=sha256:1&from=demo/other', status: 400, code: 'DIGEST_INVALID' },
  { name: 'mount from invalid repository', method: 'POST', path: `/v2/demo/httpd/blobs/uploads/?mount=${LAYER}&from=Demo/Other`, status: 400, code: 'NAME_INVALID' },
  { name: 'PATCH of malformed upload ID', method: 'PATCH', path: '/v2/demo/httpd/blobs/uploads/not-a-uuid', body: Buffer.from('x'), status: 404, code: 'BLOB_UPLOAD_UNKNOWN' },
  { name: 'PUT of unknown upload', method: 'PUT', path: `/v2/demo/httpd/blobs/uploads/0b8a2d8e-5d43-4a4e-9a43-3c2b1d0e9f11?digest=${UNKNOWN_DIGEST}`, status: 404, code: 'BLOB_UPLOAD_UNKNOWN' },
  { name: 'upload used from another repository', method: 'PATCH', path: async registry => (await startUpload(registry)).replace('/demo/httpd/', '/demo/other/'), body: Buffer.from('x'), status: 404, code: 'BLOB_UPLOAD_UNKNOWN' },
  { name: 'chunk not starting at upload end', method: 'PATCH', path: startUpload, headers: { 'Content-Range': '5-9' }, body: Buffer.from('12345'), status: 416, code: 'BLOB_UPLOAD_INVALID' },
  { name: 'Content-Range disagreeing with length', method: 'PATCH', path: startUpload, headers: { 'Content-Range': '0-9' }, body: Buffer.from('12345'), status: 400, code: 'SIZE_INVALID' },
  { name: 'malformed Content-Range', method: 'PATCH', path: startUpload, headers: { 'Content-Range': 'bytes 9-0' }, body: Buffer.from('12345'), status: 416, code: 'BLOB_UPLOAD_INVALID' },
  { name: 'chunk over the upload limit', method: 'PATCH', path: startUpload, body: Buffer.alloc(MAX_UPLOAD_BYTES + 1), status: 413, code: 'SIZE_INVALID' },
  { name: 'chunked PATCH over the upload limit', method: 'PATCH', path: startUpload, headers: { 'Transfer-Encoding': 'chunked' }, body: Buffer.alloc(MAX_UPLOAD_BYTES + 1), status: 413, code: 'SIZE_INVALID' },
  { name: 'upload completed without digest', method: 'PUT', path: startUpload, body: Buffer.from('hello'), status: 400, code: 'DIGEST_INVALID' },
  { name: 'upload completed with wrong digest', method: 'PUT', path: async registry => `${await startUpload(registry)}?digest=${blobOf('other').digest}`, body: Buffer.from('hello'), status: 400, code: 'DIGEST_INVALID' },
  { name: 'non-numeric page size', method: 'GET', path: '/v2/demo/httpd/tags/list?n=abc', status: 400, code: 'PAGINATION_NUMBER_INVALID' },
  { name: 'negative catalog page size', method: 'GET', path: '/v2/_catalog?n=-1', status: 400, code: 'PAGINATION_NUMBER_INVALID' },
  { name: 'tags of unknown repository', method: 'GET', path: '/v2/demo/unknown/tags/list', status: 404, code: 'NAME_UNKNOWN' },
  { name: 'containerd namespace with port', method: 'GET', path: '/v2/demo/httpd/manifests/v1?ns=registry.example:5000', status: 404, code: 'NAME_UNKNOWN' },
  { name: 'referrers of invalid digest', method: 'GET', path: '/v2/demo/httpd/referrers/sha256:zz', status: 400, code: 'DIGEST_INVALID' }
]

async function folderBytes (folder: string): Promise<number> {
  let total = 0
  for (const name of await readdir(folder)) {
    total += (await stat(join(folder, name))).size
  }
  return total
}

describe('registry bad requests', () => {
  let registry: RegistryFixture
  let blobsBefore: string[]

  before(async () => {
    registry = await startRegistry({ maxUploadBytes: MAX_UPLOAD_BYTES })
    for (const [tag, descriptor] of await loadFixture(registry.backend.store, 'micro-httpd')) {
      registry.backend.setTag('demo/httpd', tag, descriptor)
    }
    blobsBefore = (await registry.backend.store.list()).map(blob => blob.digest).sort()
  })

  after(async () => {
    await registry.stop()
  })

  for (const testCase of CASES) {
    it(`${testCase.name} gets ${testCase.status} ${testCase.code}`, async () => {
      const path = typeof testCase.path === 'string' ? testCase.path : await testCase.path(registry)
      const headers = { ...testCase.headers }
      const options = headers['Transfer-Encoding'] === 'chunked' && testCase.body != null
        ? { headers, chunks: [testCase.body.subarray(0, 1024), testCase.body.subarray(1024)] }
        : { headers, body: testCase.body }

      const response = await send(registry.port, testCase.method, path, options)

      assert.equal(response.status, testCase.status, response.body.toString())
      assert.equal(response.code, testCase.code)
      assert.equal(response.headers['content-type'], 'application/json')
      if (testCase.message != null) {
        assert.match(response.json<{ errors: Array<{ message: string }> }>().errors[0]?.message ?? '', testCase.message)
      }

      const blobsAfter = (await registry.backend.store.list()).map(blob => blob.digest).sort()
      assert.deepEqual(blobsAfter, blobsBefore, 'a bad request stored a blob')
      assert.deepEqual(registry.backend.published, [], 'a bad request published a tag')
      assert.equal(await folderBytes(join(registry.dir, 'uploads')), 0, 'a bad request left bytes in the upload folder')
      assert.deepEqual(await registry.backend.listTags('demo/httpd'), ['v1', 'v2'])
    })
  }

  it('manifest type error lists accepted types', async () => {
    const response = await send(registry.port, 'PUT', '/v2/demo/httpd/manifests/v3', { headers: { 'Content-Type': 'text/plain' }, body: manifestWith([V1_LAYER]) })
    const message = response.json<{ errors: Array<{ code: string, message: string }> }>().errors[0]?.message ?? ''

    assert.match(message, /"text\/plain"/)
    assert.match(message, /application\/vnd\.oci\.image\.manifest\.v1\+json/)
    assert.match(message, /application\/vnd\.docker\.distribution\.manifest\.list\.v2\+json/)
  })

  it('manifest type mismatch names both types', async () => {
    const response = await send(registry.port, 'PUT', '/v2/demo/httpd/manifests/v3', { headers: { 'Content-Type': 'application/vnd.docker.distribution.manifest.v2+json' }, body: manifestWith([V1_LAYER]) })
    const message = response.json<{ errors: Array<{ code: string, message: string }> }>().errors[0]?.message ?? ''

    assert.match(message, /application\/vnd\.docker\.distribution\.manifest\.v2\+json/)
    assert.match(message, /mediaType "application\/vnd\.oci\.image\.manifest\.v1\+json"/)
  })

  it('error body names the bad value', async () => {
    const response = await send(registry.port, 'GET', '/v2/Demo/httpd/tags/list')
    const error = response.json<{ errors: Array<{ code: string, message: string }> }>().errors[0]

    assert.equal(error?.code, 'NAME_INVALID')
    assert.match(error?.message ?? '', /"Demo\/httpd"/)
  })

  it('405 answer lists allowed methods', async () => {
    const response = await send(registry.port, 'DELETE', `/v2/demo/httpd/blobs/${LAYER}`)

    assert.equal(response.headers.allow, 'GET, HEAD')
  })

  it('416 answer gives the blob size', async () => {
    const response = await send(registry.port, 'GET', `/v2/demo/httpd/blobs/${LAYER}`, { headers: { Range: 'bytes=99999-' } })

    assert.equal(response.headers['content-range'], 'bytes */6074')
  })
})
