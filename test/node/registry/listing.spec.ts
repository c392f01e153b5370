/** Tag lists, the catalog and referrers, with pagination. */
import { strict as assert } from 'node:assert'
import { digestOf } from '../../../protocol/digest.js'
import { loadFixture, send, startRegistry, type RegistryFixture } from './helpers.js'
import type { Descriptor } from '../../../node/image/manifest.js'

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json'
const HTTPD_V1 = 'sha256:b00a22a43573e6deb217672d8fad3294e1a02e7d984c5a072d2044b18f24928c'
const EMPTY_CONFIG = { mediaType: 'application/vnd.oci.empty.v1+json', digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a', size: 2 }

interface TagList { name: string, tags: string[] }

/** Builds an OCI 1.1 artifact manifest that refers to `subject`. */
function artifact (artifactType: string, subject: string, note: string): Buffer {
  return Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    artifactType,
    config: EMPTY_CONFIG,
    layers: [EMPTY_CONFIG],
    subject: { mediaType: OCI_MANIFEST, digest: subject, size: 346 },
    annotations: { note }
  }))
}

describe('registry listings', () => {
  let registry: RegistryFixture
  let v1: Descriptor

  beforeEach(async () => {
    registry = await startRegistry()
    const tags = await loadFixture(registry.backend.store, 'micro-httpd')
    v1 = tags.get('v1') as Descriptor
    for (const tag of ['v1', 'v2', 'v3', 'latest', 'edge']) {
      registry.backend.setTag('demo/httpd', tag, v1)
    }
    registry.backend.setTag('demo/busybox', '1.35', v1)
    registry.backend.setTag('mirror.test/demo/httpd', 'v1', v1)
    await registry.backend.store.put(Buffer.from('{}'), EMPTY_CONFIG.digest as Descriptor['digest'])
  })

  afterEach(async () => {
    await registry.stop()
  })

  describe('tags', () => {
    it('lists all tags sorted', async () => {
      const response = await send(registry.port, 'GET', '/v2/demo/httpd/tags/list')

      assert.equal(response.status, 200)
      assert.deepEqual(response.json<TagList>(), { name: 'demo/httpd', tags: ['edge', 'latest', 'v1', 'v2', 'v3'] })
      assert.equal(response.headers.link, undefined)
    })

    it('pages follow the Link header', async () => {
      const first = await send(registry.port, 'GET', '/v2/demo/httpd/tags/list?n=2')
      const link = /^<([^>]+)>; rel="next"$/.exec(String(first.headers.link))?.[1]
      assert.ok(link != null, `no next link in ${String(first.headers.link)}`)
      const second = await send(registry.port, 'GET', link)
      const third = await send(registry.port, 'GET', '/v2/demo/httpd/tags/list?n=2&last=v1')

      assert.deepEqual(first.json<TagList>().tags, ['edge', 'latest'])
      assert.equal(link, '/v2/demo/httpd/tags/list?n=2&last=latest')
      assert.deepEqual(second.json<TagList>().tags, ['v1', 'v2'])
      assert.deepEqual(third.json<TagList>().tags, ['v2', 'v3'])
      assert.equal(third.headers.link, undefined)
    })

    it('deleted tag leaves the list', async () => {
      await send(registry.port, 'DELETE', '/v2/demo/httpd/manifests/edge')

      const response = await send(registry.port, 'GET', '/v2/demo/httpd/tags/list')

      assert.deepEqual(response.json<TagList>().tags, ['latest', 'v1', 'v2', 'v3'])
    })

    it('ns parameter lists NS/NAME', async () => {
      const response = await send(registry.port, 'GET', '/v2/demo/httpd/tags/list?ns=mirror.test')

      assert.deepEqual(response.json<TagList>(), { name: 'demo/httpd', tags: ['v1'] })
    })
  })

  describe('catalog', () => {
    it('lists repositories sorted', async () => {
      const response = await send(registry.port, 'GET', '/v2/_catalog')

      assert.equal(response.status, 200)
      assert.deepEqual(response.json(), { repositories: ['demo/busybox', 'demo/httpd', 'mirror.test/demo/httpd'] })
    })

    it('pages with n and last', async () => {
      const first = await send(registry.port, 'GET', '/v2/_catalog?n=1')
      const rest = await send(registry.port, 'GET', '/v2/_catalog?n=5&last=demo/busybox')

      assert.deepEqual(first.json(), { repositories: ['demo/busybox'] })
      assert.equal(first.headers.link, '</v2/_catalog?n=1&last=demo%2Fbusybox>; rel="next"')
      assert.deepEqual(rest.json(), { repositories: ['demo/httpd', 'mirror.test/demo/httpd'] })
    })
  })

  describe('referrers', () => {
    it('lists pushed referrers of a subject', async () => {
      const signature = artifact('application/vnd.example.signature', HTTPD_V1, 'signed')
      const sbom = artifact('application/vnd.example.sbom', HTTPD_V1, 'sbom')
      for (const body of [signature, sbom]) {
        const pushed = await send(registry.port, 'PUT', `/v2/demo/httpd/manifests/${digestOf(body)}`, { headers: { 'Content-Type': OCI_MANIFEST }, body })
        assert.equal(pushed.status, 201)
      }

      const response = await send(registry.port, 'GET', `/v2/demo/httpd/referrers/${HTTPD_V1}`)
      const index = response.json<{ schemaVersion: number, mediaType: string, manifests: Array<{ digest: string, artifactType: string, annotations: Record<string, string> }> }>()

      assert.equal(response.status, 200)
      assert.equal(response.headers['content-type'], OCI_INDEX)
      assert.equal(index.mediaType, OCI_INDEX)
      assert.deepEqual(index.manifests.map(entry => entry.digest).sort(), [digestOf(signature), digestOf(sbom)].sort())
      assert.deepEqual(index.manifests.map(entry => entry.artifactType).sort(), ['application/vnd.example.sbom', 'application/vnd.example.signature'])
      assert.deepEqual(index.manifests.map(entry => entry.annotations.note).sort(), ['sbom', 'signed'])
    })

    it('artifactType filter is applied and reported', async () => {
      const signature = artifact('application/vnd.example.signature', HTTPD_V1, 'signed')
      const sbom = artifact('application/vnd.example.sbom', HTTPD_V1, 'sbom')
      await registry.backend.store.put(signature, digestOf(signature))
      await registry.backend.store.put(sbom, digestOf(sbom))

      const response = await send(registry.port, 'GET', `/v2/demo/httpd/referrers/${HTTPD_V1}?artifactType=application/vnd.example.sbom`)
      const index = response.json<{ manifests: Array<{ digest: string }> }>()

      assert.equal(response.headers['oci-filters-applied'], 'artifactType')
      assert.deepEqual(index.manifests.map(entry => entry.digest), [digestOf(sbom)])
    })

    it('referrer stored outside the API is found', async () => {
      const signature = artifact('application/vnd.example.signature', HTTPD_V1, 'from a peer')
      await send(registry.port, 'GET', `/v2/demo/httpd/referrers/${HTTPD_V1}`)
      await registry.backend.store.put(signature, digestOf(signature))

      const response = await send(registry.port, 'GET', `/v2/demo/httpd/referrers/${HTTPD_V1}`)

      assert.deepEqual(response.json<{ manifests: Array<{ digest: string }> }>().manifests.map(entry => entry.digest), [digestOf(signature)])
    })

    it('subject without referrers gets an empty index', async () => {
      const response = await send(registry.port, 'GET', `/v2/demo/httpd/referrers/sha256:${'1'.repeat(64)}`)

      assert.equal(response.status, 200)
      assert.deepEqual(response.json(), { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] })
    })
  })
})
