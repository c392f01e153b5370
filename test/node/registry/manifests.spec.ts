/** Manifest pulls, pushes and deletes against a registry on a real BlobStore. */
import { strict as assert } from 'node:assert'
import { digestOf } from '../../../protocol/digest.js'
import { localPlatform } from '../../../node/image/platform.js'
import { fixtureBlob, loadFixture, send, startRegistry, type RegistryFixture } from './helpers.js'

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json'
const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json'
const DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json'

/** The Accept headers skopeo 1.9 sends on a manifest pull, one header each. */
const SKOPEO_ACCEPT = [
  OCI_MANIFEST, OCI_INDEX, DOCKER_LIST, DOCKER_MANIFEST,
  'application/vnd.docker.distribution.manifest.v1+prettyjws', 'application/vnd.docker.distribution.manifest.v1+json'
]

const HTTPD_V1 = 'sha256:b00a22a43573e6deb217672d8fad3294e1a02e7d984c5a072d2044b18f24928c'
const HTTPD_V1_CONFIG = { digest: 'sha256:11cf634045183836747073e3aea959d01fdaf4fd55c8b9c022738e62123c439c', size: 434 }
const HTTPD_V1_LAYER = { digest: 'sha256:6605c25f659b195ee6cf445c35a56180b3a2f26db15740fb46de7076b7f728b2', size: 6073 }
const BUSYBOX_INDEX = 'sha256:603d8711a8f573ba3cc239fe2cf9e88fa11bd1b7e233be98db07d2f2a3c4782b'
const BUSYBOX_AMD64 = 'sha256:15cdd45bae16e02d67b6126196337f6ac2e3fd5cb5ae43c9b5f53c2816a93d79'
const BUSYBOX_ARM64 = 'sha256:89f5a47f98b36d5b49826fe6a45522394f15f45fd43bfc6e6d12a248f372c756'
const BUSYBOX_ARM64_CONFIG = 'sha256:572fb59db4ccc3d2ef64d9c7b20f16dc18d0da3723724db210679ac8bb17e683'
const BUSYBOX_ARM64_LAYER = 'sha256:98e757988850b9b6be1d0f96036929f76caf28d5c783cbae6238f720bc23aff2'
const BUSYBOX_AMD64_CONFIG = 'sha256:4b6905a8598001b7d205272de43cb3e68f9451966085ec2e9315b74dc3e28ad5'
const BUSYBOX_AMD64_LAYER = 'sha256:0bf36be11406bc3d56538a05318bbf7263a4f78c1b67e91a206087d7bfa2ce36'

async function waitFor (check: () => Promise<boolean> | boolean, timeoutMs = 5_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check()) {
      return true
    }
    await new Promise(resolve => setTimeout(resolve, 10))
  }
  return check()
}

function ociManifest (extra: Record<string, unknown> = {}): Buffer {
  return Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...HTTPD_V1_CONFIG },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...HTTPD_V1_LAYER }],
    ...extra
  }))
}

describe('registry manifests', () => {
  let registry: RegistryFixture

  beforeEach(async () => {
    registry = await startRegistry({ resolveTimeoutMs: 300, fetchTimeoutMs: 300 })
    for (const [tag, descriptor] of await loadFixture(registry.backend.store, 'micro-httpd')) {
      registry.backend.setTag('demo/httpd', tag, descriptor)
    }
  })

  afterEach(async () => {
    await registry.stop()
  })

  describe('pull', () => {
    it('GET by tag returns the manifest bytes', async () => {
      const response = await send(registry.port, 'GET', '/v2/demo/httpd/manifests/v1', { headers: { Accept: SKOPEO_ACCEPT } })

      assert.equal(response.status, 200)
      assert.deepEqual(response.body, await fixtureBlob('micro-httpd', HTTPD_V1))
      assert.equal(response.headers['content-type'], OCI_MANIFEST)
      assert.equal(response.headers['docker-content-digest'], HTTPD_V1)
      assert.equal(response.headers['content-length'], '346')
    })

    it('HEAD by tag sends headers only', async () => {
      const response = await send(registry.port, 'HEAD', '/v2/demo/httpd/manifests/v1')

      assert.equal(response.status, 200)
      assert.equal(response.body.byteLength, 0)
      assert.equal(response.headers['docker-content-digest'], HTTPD_V1)
      assert.equal(response.headers['content-length'], '346')
      assert.equal(response.headers['content-type'], OCI_MANIFEST)
    })

    it('GET by digest infers the media type', async () => {
      const response = await send(registry.port, 'GET', `/v2/demo/httpd/manifests/${HTTPD_V1}`)

      assert.equal(response.status, 200)
      assert.equal(response.headers['content-type'], OCI_MANIFEST)
      assert.equal(digestOf(response.body), HTTPD_V1)
    })

    it('GET by digest works under any repository', async () => {
      const response = await send(registry.port, 'GET', `/v2/other/name/manifests/${HTTPD_V1}`)

      assert.equal(response.status, 200)
      assert.equal(response.headers['docker-content-digest'], HTTPD_V1)
    })

    it('comma-joined Accept is honoured', async () => {
      const response = await send(registry.port, 'GET', '/v2/demo/httpd/manifests/v1', { headers: { Accept: `${DOCKER_MANIFEST}, ${OCI_MANIFEST}` } })

      assert.equal(response.status, 200)
      assert.equal(response.headers['content-type'], OCI_MANIFEST)
    })

    it('index served when index accepted', async () => {
      for (const [tag, descriptor] of await loadFixture(registry.backend.store, 'busybox')) {
        registry.backend.setTag('demo/busybox', tag, descriptor)
      }

      const response = await send(registry.port, 'GET', '/v2/demo/busybox/manifests/1.35', { headers: { Accept: SKOPEO_ACCEPT } })

      assert.equal(response.status, 200)
      assert.equal(response.headers['content-type'], OCI_INDEX)
      assert.equal(response.headers['docker-content-digest'], BUSYBOX_INDEX)
    })

    it('index without index accepted serves own platform', async () => {
      for (const [tag, descriptor] of await loadFixture(registry.backend.store, 'busybox')) {
        registry.backend.setTag('demo/busybox', tag, descriptor)
      }

      const response = await send(registry.port, 'GET', '/v2/demo/busybox/manifests/1.35', { headers: { Accept: OCI_MANIFEST } })

      assert.equal(response.status, 200)
      assert.equal(response.headers['content-type'], OCI_MANIFEST)
      const expected = process.arch === 'arm64' ? BUSYBOX_ARM64 : BUSYBOX_AMD64
      assert.equal(response.headers['docker-content-digest'], expected)
    })

    it('nested index without index accepted serves own platform', async () => {
      for (const [tag, descriptor] of await loadFixture(registry.backend.store, 'busybox')) {
        registry.backend.setTag('demo/busybox', tag, descriptor)
      }
      const inner = { mediaType: OCI_INDEX, digest: BUSYBOX_INDEX, size: (await registry.backend.store.read(BUSYBOX_INDEX)).byteLength }
      const outer = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [inner] }))
      const outerDigest = await registry.backend.store.put(outer)
      registry.backend.setTag('demo/busybox', 'nested', { mediaType: OCI_INDEX, digest: outerDigest, size: outer.byteLength })

      const response = await send(registry.port, 'GET', '/v2/demo/busybox/manifests/nested', { headers: { Accept: OCI_MANIFEST } })

      assert.equal(response.status, 200)
      assert.equal(response.headers['content-type'], OCI_MANIFEST)
      const expected = process.arch === 'arm64' ? BUSYBOX_ARM64 : BUSYBOX_AMD64
      assert.equal(response.headers['docker-content-digest'], expected)
    })

    it('tag only on peers is resolved and fetched', async () => {
      const meshStore = registry.backend.meshStore
      assert.ok(meshStore != null)
      for (const [tag, descriptor] of await loadFixture(meshStore, 'busybox')) {
        registry.backend.setTag('demo/busybox', tag, descriptor, 'mesh')
      }

      const response = await send(registry.port, 'GET', '/v2/demo/busybox/manifests/1.35-arm64')

      assert.equal(response.status, 200)
      assert.equal(response.headers['docker-content-digest'], BUSYBOX_ARM64)
      assert.equal(registry.backend.fetched[0], BUSYBOX_ARM64)
      assert.equal(await registry.backend.store.has(BUSYBOX_ARM64), true)
    })

    it('manifest pull prefetches its blobs once', async () => {
      const meshStore = registry.backend.meshStore
      assert.ok(meshStore != null)
      for (const [tag, descriptor] of await loadFixture(meshStore, 'busybox')) {
        registry.backend.setTag('demo/busybox', tag, descriptor, 'mesh')
      }
      registry.backend.meshDelayMs = 200

      const manifest = await send(registry.port, 'GET', '/v2/demo/busybox/manifests/1.35-arm64')
      const prefetchesAfterManifest = registry.server.prefetches
      const layer = await send(registry.port, 'GET', `/v2/demo/busybox/blobs/${BUSYBOX_ARM64_LAYER}`)
      const config = await send(registry.port, 'GET', `/v2/demo/busybox/blobs/${BUSYBOX_ARM64_CONFIG}`)

      assert.equal(manifest.status, 200)
      assert.equal(prefetchesAfterManifest, 2, 'config and layer fetches start with the manifest answer')
      assert.equal(layer.status, 200)
      assert.equal(config.status, 200)
      assert.deepEqual([...registry.backend.fetched].sort(), [BUSYBOX_ARM64, BUSYBOX_ARM64_CONFIG, BUSYBOX_ARM64_LAYER].sort(), 'each blob is fetched once')
    })

    it('index pull prefetches only this platform\'s blobs', async () => {
      const meshStore = registry.backend.meshStore
      assert.ok(meshStore != null)
      for (const [tag, descriptor] of await loadFixture(meshStore, 'busybox')) {
        registry.backend.setTag('demo/busybox', tag, descriptor, 'mesh')
      }
      const blobsOf: Record<string, string[]> = { amd64: [BUSYBOX_AMD64_CONFIG, BUSYBOX_AMD64_LAYER], arm64: [BUSYBOX_ARM64_CONFIG, BUSYBOX_ARM64_LAYER] }
      const local = localPlatform()
      const expected = local.os === 'linux' ? blobsOf[local.architecture] ?? [] : []
      const others = Object.values(blobsOf).flat().filter(digest => !expected.includes(digest))

      const fetched = registry.backend.fetched as string[]

      const index = await send(registry.port, 'GET', '/v2/demo/busybox/manifests/1.35', { headers: { Accept: SKOPEO_ACCEPT } })
      const settled = await waitFor(() => [BUSYBOX_AMD64, BUSYBOX_ARM64, ...expected].every(digest => fetched.includes(digest)) && registry.server.prefetches === 0)

      assert.equal(index.status, 200)
      assert.equal(settled, true, `both child manifests and the blobs of the ${local.os}/${local.architecture} image are prefetched`)
      assert.deepEqual(others.filter(digest => fetched.includes(digest)), [], 'no other platform\'s blobs are fetched')
    })

    it('nested index pull prefetches this platform\'s blobs', async () => {
      const meshStore = registry.backend.meshStore
      assert.ok(meshStore != null)
      for (const [tag, descriptor] of await loadFixture(meshStore, 'busybox')) {
        registry.backend.setTag('demo/busybox', tag, descriptor, 'mesh')
      }
      const inner = { mediaType: OCI_INDEX, digest: BUSYBOX_INDEX, size: (await meshStore.read(BUSYBOX_INDEX)).byteLength }
      const outer = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [inner] }))
      const outerDigest = await meshStore.put(outer)
      registry.backend.setTag('demo/busybox', 'nested', { mediaType: OCI_INDEX, digest: outerDigest, size: outer.byteLength }, 'mesh')
      const blobsOf: Record<string, string[]> = { amd64: [BUSYBOX_AMD64_CONFIG, BUSYBOX_AMD64_LAYER], arm64: [BUSYBOX_ARM64_CONFIG, BUSYBOX_ARM64_LAYER] }
      const local = localPlatform()
      const expected = local.os === 'linux' ? blobsOf[local.architecture] ?? [] : []
      const others = Object.values(blobsOf).flat().filter(digest => !expected.includes(digest))
      const fetched = registry.backend.fetched as string[]

      const index = await send(registry.port, 'GET', '/v2/demo/busybox/manifests/nested', { headers: { Accept: SKOPEO_ACCEPT } })
      const settled = await waitFor(() => [BUSYBOX_INDEX, BUSYBOX_AMD64, BUSYBOX_ARM64, ...expected].every(digest => fetched.includes(digest)) && registry.server.prefetches === 0)

      assert.equal(index.status, 200)
      assert.equal(settled, true, `the inner index, both child manifests and the blobs of the ${local.os}/${local.architecture} image are prefetched`)
      assert.deepEqual(others.filter(digest => fetched.includes(digest)), [], 'no other platform\'s blobs are fetched')
    })

    it('manifest in memory is served and names itself as parent', async () => {
      const meshStore = registry.backend.meshStore
      assert.ok(meshStore != null)
      for (const [tag, descriptor] of await loadFixture(meshStore, 'busybox')) {
        registry.backend.setTag('demo/busybox', tag, descriptor, 'mesh')
      }
      registry.backend.memoryStoreDelayMs = 300

      const response = await send(registry.port, 'GET', '/v2/demo/busybox/manifests/1.35-arm64')
      const settled = await waitFor(async () => registry.server.prefetches === 0 && registry.backend.fetched.length >= 3)

      assert.equal(response.status, 200)
      assert.deepEqual(response.body, await fixtureBlob('busybox', BUSYBOX_ARM64))
      assert.equal(settled, true)
      assert.equal(registry.backend.fetchParents.get(BUSYBOX_ARM64_CONFIG), BUSYBOX_ARM64)
      assert.equal(registry.backend.fetchParents.get(BUSYBOX_ARM64_LAYER), BUSYBOX_ARM64)
    })

    it('slow peers give MANIFEST_UNKNOWN within the resolve timeout', async () => {
      registry.backend.meshDelayMs = 10_000
      const startedMs = Date.now()

      const response = await send(registry.port, 'GET', '/v2/demo/httpd/manifests/v9')

      assert.equal(response.status, 404)
      assert.equal(response.code, 'MANIFEST_UNKNOWN')
      assert.ok(Date.now() - startedMs < 2_000, `answered after ${Date.now() - startedMs} ms`)
    })

    it('containerd ns parameter maps to NS/NAME', async () => {
      const v1 = registry.backend.tags.get('demo/httpd')?.get('v1')
      assert.ok(v1 != null)
      registry.backend.setTag('mirror.test/demo/httpd', 'v1', v1)

      const mapped = await send(registry.port, 'HEAD', '/v2/demo/httpd/manifests/v1?ns=mirror.test')
      const unmapped = await send(registry.port, 'HEAD', '/v2/demo/httpd/manifests/v2?ns=mirror.test')

      assert.equal(mapped.status, 200)
      assert.equal(mapped.headers['docker-content-digest'], HTTPD_V1)
      assert.equal(unmapped.status, 404)
    })
  })

  describe('push', () => {
    it('PUT by tag stores and publishes', async () => {
      const body = ociManifest({ annotations: { note: 'pushed' } })
      const digest = digestOf(body)

      const response = await send(registry.port, 'PUT', '/v2/demo/httpd/manifests/v3', { headers: { 'Content-Type': OCI_MANIFEST }, body })

      assert.equal(response.status, 201)
      assert.equal(response.headers.location, `/v2/demo/httpd/manifests/${digest}`)
      assert.equal(response.headers['docker-content-digest'], digest)
      assert.deepEqual(registry.backend.published, [{ repository: 'demo/httpd', tag: 'v3', descriptor: { mediaType: OCI_MANIFEST, digest, size: body.byteLength } }])
      assert.deepEqual(Buffer.from(await registry.backend.store.read(digest)), body)

      const pulled = await send(registry.port, 'GET', '/v2/demo/httpd/manifests/v3')
      assert.deepEqual(pulled.body, body)
    })

    it('PUT by digest stores without publishing', async () => {
      const body = ociManifest({ annotations: { note: 'by digest' } })
      const digest = digestOf(body)

      const response = await send(registry.port, 'PUT', `/v2/demo/httpd/manifests/${digest}`, { headers: { 'Content-Type': OCI_MANIFEST }, body })

      assert.equal(response.status, 201)
      assert.equal(await registry.backend.store.has(digest), true)
      assert.deepEqual(registry.backend.published, [])
    })

    it('PUT without Content-Type takes the body type', async () => {
      const body = ociManifest({ annotations: { note: 'no content type' } })

      const response = await send(registry.port, 'PUT', '/v2/demo/httpd/manifests/v3', { body })

      assert.equal(response.status, 201, response.body.toString())
      assert.equal(registry.backend.published[0]?.descriptor.mediaType, OCI_MANIFEST)
    })

    it('PUT as application/json takes the body type', async () => {
      const body = ociManifest({ annotations: { note: 'json' } })

      const response = await send(registry.port, 'PUT', '/v2/demo/httpd/manifests/v3', { headers: { 'Content-Type': 'application/json; charset=utf-8' }, body })

      assert.equal(response.status, 201, response.body.toString())
      assert.equal(registry.backend.published[0]?.descriptor.mediaType, OCI_MANIFEST)
    })

    it('PUT without mediaType takes the Content-Type', async () => {
      const fields = JSON.parse(ociManifest().toString()) as Record<string, unknown>
      delete fields.mediaType
      const body = Buffer.from(JSON.stringify(fields))

      const response = await send(registry.port, 'PUT', '/v2/demo/httpd/manifests/v3', { headers: { 'Content-Type': OCI_MANIFEST }, body })

      assert.equal(response.status, 201, response.body.toString())
      assert.equal(registry.backend.published[0]?.descriptor.mediaType, OCI_MANIFEST)
    })

    it('PUT of a Docker manifest without mediaType is rejected', async () => {
      // Docker's schema 2 requires the field, and skopeo cannot pull such a manifest.
      const fields = JSON.parse(ociManifest().toString()) as Record<string, unknown>
      delete fields.mediaType
      const body = Buffer.from(JSON.stringify({ ...fields, config: { ...(fields.config as object), mediaType: 'application/vnd.docker.container.image.v1+json' } }))

      const response = await send(registry.port, 'PUT', '/v2/demo/httpd/manifests/v3', { headers: { 'Content-Type': DOCKER_MANIFEST }, body })

      assert.equal(response.status, 400)
      assert.match(response.body.toString(), /MANIFEST_INVALID/)
      assert.match(response.body.toString(), /must contain/)
      assert.equal(registry.backend.published.length, 0)
    })

    it('PUT of a manifest with a byte order mark is rejected', async () => {
      const body = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), ociManifest()])

      const response = await send(registry.port, 'PUT', '/v2/demo/httpd/manifests/v3', { headers: { 'Content-Type': OCI_MANIFEST }, body })

      assert.equal(response.status, 400)
      assert.match(response.body.toString(), /byte order mark/)
      assert.equal(registry.backend.published.length, 0)
    })

    it('PUT with a parameter in Content-Type', async () => {
      const body = ociManifest({ annotations: { note: 'charset' } })

      const response = await send(registry.port, 'PUT', '/v2/demo/httpd/manifests/v3', { headers: { 'Content-Type': `${OCI_MANIFEST}; charset=utf-8` }, body })

      assert.equal(response.status, 201, response.body.toString())
    })

    it('PUT Docker schema 2 manifest keeps its type', async () => {
      const body = Buffer.from(JSON.stringify({
        schemaVersion: 2,
        mediaType: DOCKER_MANIFEST,
        config: { mediaType: 'application/vnd.docker.container.image.v1+json', ...HTTPD_V1_CONFIG },
        layers: [{ mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', ...HTTPD_V1_LAYER }]
      }))

      const response = await send(registry.port, 'PUT', '/v2/demo/httpd/manifests/docker', { headers: { 'Content-Type': DOCKER_MANIFEST }, body })
      const pulled = await send(registry.port, 'GET', '/v2/demo/httpd/manifests/docker', { headers: { Accept: DOCKER_MANIFEST } })

      assert.equal(response.status, 201)
      assert.equal(pulled.headers['content-type'], DOCKER_MANIFEST)
    })

    it('PUT of index requires its child manifests', async () => {
      const body = Buffer.from(JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_INDEX,
        manifests: [{ mediaType: OCI_MANIFEST, digest: BUSYBOX_AMD64, size: 349, platform: { os: 'linux', architecture: 'amd64' } }]
      }))

      const missing = await send(registry.port, 'PUT', '/v2/demo/busybox/manifests/1.35', { headers: { 'Content-Type': OCI_INDEX }, body })
      await registry.backend.store.put(await fixtureBlob('busybox', BUSYBOX_AMD64), BUSYBOX_AMD64)
      const present = await send(registry.port, 'PUT', '/v2/demo/busybox/manifests/1.35', { headers: { 'Content-Type': OCI_INDEX }, body })

      assert.equal(missing.status, 400)
      assert.equal(missing.code, 'MANIFEST_BLOB_UNKNOWN')
      assert.equal(present.status, 201)
    })

    it('PUT fetches missing blobs from the mesh', async () => {
      const meshStore = registry.backend.meshStore
      assert.ok(meshStore != null)
      await loadFixture(meshStore, 'busybox')
      const body = Buffer.from(JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_INDEX,
        manifests: [{ mediaType: OCI_MANIFEST, digest: BUSYBOX_ARM64, size: 349 }]
      }))

      const response = await send(registry.port, 'PUT', '/v2/demo/busybox/manifests/arm', { headers: { 'Content-Type': OCI_INDEX }, body })

      assert.equal(response.status, 201)
      assert.deepEqual(registry.backend.fetched, [BUSYBOX_ARM64])
    })

    it('PUT waits until fetched children are stored', async () => {
      const meshStore = registry.backend.meshStore
      assert.ok(meshStore != null)
      await loadFixture(meshStore, 'busybox')
      registry.backend.memoryStoreDelayMs = 300
      const body = Buffer.from(JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_INDEX,
        manifests: [{ mediaType: OCI_MANIFEST, digest: BUSYBOX_ARM64, size: 349 }]
      }))

      const response = await send(registry.port, 'PUT', '/v2/demo/busybox/manifests/arm', { headers: { 'Content-Type': OCI_INDEX }, body })

      assert.equal(response.status, 201)
      assert.equal(await registry.backend.store.has(BUSYBOX_ARM64), true)
    })

    it('PUT with subject returns OCI-Subject', async () => {
      const body = ociManifest({ subject: { mediaType: OCI_MANIFEST, digest: HTTPD_V1, size: 346 } })

      const response = await send(registry.port, 'PUT', `/v2/demo/httpd/manifests/${digestOf(body)}`, { headers: { 'Content-Type': OCI_MANIFEST }, body })

      assert.equal(response.status, 201)
      assert.equal(response.headers['oci-subject'], HTTPD_V1)
    })

    it('PUT with ns parameter publishes NS/NAME', async () => {
      const body = ociManifest()

      const response = await send(registry.port, 'PUT', '/v2/demo/httpd/manifests/v5?ns=mirror.test', { headers: { 'Content-Type': OCI_MANIFEST }, body })

      assert.equal(response.status, 201)
      assert.equal(response.headers.location, `/v2/demo/httpd/manifests/${digestOf(body)}?ns=mirror.test`)
      assert.equal(registry.backend.published[0]?.repository, 'mirror.test/demo/httpd')
    })
  })

  describe('delete', () => {
    it('DELETE by tag removes the tag', async () => {
      const response = await send(registry.port, 'DELETE', '/v2/demo/httpd/manifests/v2')

      assert.equal(response.status, 202)
      assert.deepEqual(await registry.backend.listTags('demo/httpd'), ['v1'])
    })

    it('DELETE by digest removes every tag on it', async () => {
      const v1 = registry.backend.tags.get('demo/httpd')?.get('v1')
      assert.ok(v1 != null)
      registry.backend.setTag('demo/httpd', 'latest', v1)

      const response = await send(registry.port, 'DELETE', `/v2/demo/httpd/manifests/${HTTPD_V1}`)

      assert.equal(response.status, 202)
      assert.deepEqual(await registry.backend.listTags('demo/httpd'), ['v2'])
      assert.equal(await registry.backend.store.has(HTTPD_V1), true, 'the shared manifest blob must stay for other repositories')
    })
  })
})
