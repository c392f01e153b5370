import { strict as assert } from 'node:assert'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { MAX_MANIFEST_BYTES } from '../../../protocol/constants.js'
import { InvalidManifestError } from '../../../node/image/errors.js'
import { childDescriptors, parseDescriptor, parseManifest } from '../../../node/image/manifest.js'
import {
  DOCKER_CONFIG, DOCKER_LAYER_TAR_GZIP, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_CONFIG, OCI_INDEX,
  OCI_LAYER_TAR_GZIP, OCI_MANIFEST, isIndexMediaType, isManifestMediaType, normalizeMediaType
} from '../../../node/image/media-types.js'
import { FIXTURES } from './helpers.js'

const CONFIG_DIGEST = 'sha256:11cf634045183836747073e3aea959d01fdaf4fd55c8b9c022738e62123c439c'
const LAYER_DIGEST = 'sha256:6605c25f659b195ee6cf445c35a56180b3a2f26db15740fb46de7076b7f728b2'
const MANIFEST_DIGEST = 'sha256:b00a22a43573e6deb217672d8fad3294e1a02e7d984c5a072d2044b18f24928c'

function encode (value: unknown): Uint8Array {
  return new TextEncoder().encode(typeof value === 'string' ? value : JSON.stringify(value))
}

function imageManifest (overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: OCI_CONFIG, digest: CONFIG_DIGEST, size: 434 },
    layers: [{ mediaType: OCI_LAYER_TAR_GZIP, digest: LAYER_DIGEST, size: 6073 }],
    ...overrides
  }
}

function withLayer (layer: Record<string, unknown>): Record<string, unknown> {
  return imageManifest({ layers: [layer] })
}

async function fixtureBlob (layout: string, digest: string): Promise<Uint8Array> {
  return readFile(join(FIXTURES, layout, 'blobs', 'sha256', digest.slice('sha256:'.length)))
}

describe('image/manifest', () => {
  describe('parseManifest accepts', () => {
    it('fixture manifest without mediaType, given the hint', async () => {
      const manifest = parseManifest(await fixtureBlob('micro-httpd', MANIFEST_DIGEST), OCI_MANIFEST)

      assert.equal(manifest.kind, 'image')
      assert.equal(manifest.mediaType, OCI_MANIFEST)
      assert.equal(manifest.kind === 'image' ? manifest.config.digest : undefined, CONFIG_DIGEST)
      assert.deepEqual(manifest.kind === 'image' ? manifest.layers.map(layer => layer.digest) : [], [LAYER_DIGEST])
    })

    it('fixture manifest without mediaType or hint, by its shape', async () => {
      const manifest = parseManifest(await fixtureBlob('micro-httpd', MANIFEST_DIGEST))
      assert.equal(manifest.mediaType, OCI_MANIFEST)
    })

    it('fixture index with its platforms', async () => {
      const index = parseManifest(await fixtureBlob('busybox', 'sha256:603d8711a8f573ba3cc239fe2cf9e88fa11bd1b7e233be98db07d2f2a3c4782b'))

      assert.equal(index.kind, 'index')
      assert.equal(index.mediaType, OCI_INDEX)
      assert.deepEqual(index.kind === 'index' ? index.manifests.map(entry => entry.platform) : [], [
        { os: 'linux', architecture: 'amd64' },
        { os: 'linux', architecture: 'arm64' }
      ])
    })

    it('hint with parameters and upper case, as HTTP sends it', () => {
      const manifest = parseManifest(encode(imageManifest()), 'Application/vnd.oci.image.manifest.v1+json; charset=utf-8')
      assert.equal(manifest.mediaType, OCI_MANIFEST)
    })

    it('Docker schema 2 manifest and manifest list', () => {
      const manifest = parseManifest(encode({
        schemaVersion: 2,
        mediaType: DOCKER_MANIFEST,
        config: { mediaType: DOCKER_CONFIG, digest: CONFIG_DIGEST, size: 434 },
        layers: [{ mediaType: DOCKER_LAYER_TAR_GZIP, digest: LAYER_DIGEST, size: 6073 }]
      }))
      assert.equal(manifest.kind, 'image')
      assert.equal(manifest.mediaType, DOCKER_MANIFEST)

      const list = parseManifest(encode({
        schemaVersion: 2,
        mediaType: DOCKER_MANIFEST_LIST,
        manifests: [{ mediaType: DOCKER_MANIFEST, digest: MANIFEST_DIGEST, size: 346, platform: { os: 'linux', architecture: 'arm', variant: 'v7' } }]
      }))
      assert.equal(list.kind, 'index')
      assert.deepEqual(list.kind === 'index' ? list.manifests[0]?.platform : undefined, { os: 'linux', architecture: 'arm', variant: 'v7' })
    })

    it('manifest of exactly the size limit', () => {
      const base = encode(imageManifest({ annotations: { pad: '' } }))
      const padded = encode(imageManifest({ annotations: { pad: 'x'.repeat(MAX_MANIFEST_BYTES - base.byteLength) } }))

      assert.equal(padded.byteLength, MAX_MANIFEST_BYTES)
      assert.equal(parseManifest(padded).kind, 'image')
    })
  })

  describe('parseManifest rejects', () => {
    const cases: Array<{ name: string, bytes: () => Uint8Array, hint?: string, message: RegExp }> = [
      { name: 'manifest over 4 MiB', bytes: () => encode(imageManifest({ annotations: { pad: 'x'.repeat(MAX_MANIFEST_BYTES) } })), message: /larger than the limit of 4194304 bytes/ },
      { name: 'bad JSON', bytes: () => encode('{"schemaVersion": 2,'), message: /not valid UTF-8 JSON/ },
      { name: 'invalid UTF-8', bytes: () => new Uint8Array([0x7b, 0xff, 0x7d]), message: /not valid UTF-8 JSON/ },
      { name: 'JSON array', bytes: () => encode([]), message: /must be a JSON object, got an array/ },
      { name: 'schema version 1', bytes: () => encode({ schemaVersion: 1, name: 'x', tag: 'y', fsLayers: [] }), message: /schema 1 manifests are not supported/ },
      { name: 'missing schema version', bytes: () => encode(imageManifest({ schemaVersion: undefined })), message: /invalid schemaVersion undefined/ },
      { name: 'body type unlike hint', bytes: () => encode(imageManifest()), hint: DOCKER_MANIFEST, message: /does not match "application\/vnd.docker/ },
      { name: 'unsupported media type', bytes: () => encode(imageManifest({ mediaType: 'application/vnd.oci.artifact.manifest.v1+json' })), message: /unsupported manifest mediaType/ },
      { name: 'path traversal digest', bytes: () => encode(withLayer({ mediaType: OCI_LAYER_TAR_GZIP, digest: 'sha256:../../etc/passwd', size: 1 })), message: /invalid layers\[0\]\.digest "sha256:..\/..\/etc\/passwd"/ },
      { name: 'uppercase hex digest', bytes: () => encode(withLayer({ mediaType: OCI_LAYER_TAR_GZIP, digest: LAYER_DIGEST.toUpperCase().replace('SHA256', 'sha256'), size: 1 })), message: /invalid layers\[0\]\.digest/ },
      { name: 'sha512 digest', bytes: () => encode(withLayer({ mediaType: OCI_LAYER_TAR_GZIP, digest: `sha512:${'a'.repeat(128)}`, size: 1 })), message: /expected "sha256:" followed by 64 lowercase hex/ },
      { name: 'short digest', bytes: () => encode(withLayer({ mediaType: OCI_LAYER_TAR_GZIP, digest: 'sha256:abc', size: 1 })), message: /invalid layers\[0\]\.digest/ },
      { name: 'negative size', bytes: () => encode(withLayer({ mediaType: OCI_LAYER_TAR_GZIP, digest: LAYER_DIGEST, size: -1 })), message: /invalid layers\[0\]\.size -1/ },
      { name: 'fractional size', bytes: () => encode(withLayer({ mediaType: OCI_LAYER_TAR_GZIP, digest: LAYER_DIGEST, size: 1.5 })), message: /invalid layers\[0\]\.size 1\.5/ },
      { name: 'unsafe integer size', bytes: () => encode(withLayer({ mediaType: OCI_LAYER_TAR_GZIP, digest: LAYER_DIGEST, size: 2 ** 53 })), message: /invalid layers\[0\]\.size/ },
      { name: 'size as string', bytes: () => encode(withLayer({ mediaType: OCI_LAYER_TAR_GZIP, digest: LAYER_DIGEST, size: '6073' })), message: /invalid layers\[0\]\.size/ },
      { name: 'descriptor without media type', bytes: () => encode(withLayer({ digest: LAYER_DIGEST, size: 6073 })), message: /invalid layers\[0\]\.mediaType/ },
      { name: 'malformed media type', bytes: () => encode(withLayer({ mediaType: 'not a type', digest: LAYER_DIGEST, size: 6073 })), message: /expected TYPE\/SUBTYPE/ },
      { name: 'missing config', bytes: () => encode(imageManifest({ config: undefined })), message: /invalid config: expected a descriptor object/ },
      { name: 'layers not an array', bytes: () => encode(imageManifest({ layers: {} })), message: /invalid layers: expected an array/ },
      { name: 'image manifest with manifests', bytes: () => encode(imageManifest({ manifests: [] })), message: /must not contain "manifests"/ },
      { name: 'index with layers', bytes: () => encode({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [], layers: [] }), message: /must not contain "config" or "layers"/ },
      { name: 'platform without os', bytes: () => encode({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ mediaType: OCI_MANIFEST, digest: MANIFEST_DIGEST, size: 346, platform: { architecture: 'amd64' } }] }), message: /invalid manifests\[0\]\.platform\.os/ },
      { name: 'non-string annotation', bytes: () => encode(imageManifest({ config: { mediaType: OCI_CONFIG, digest: CONFIG_DIGEST, size: 434, annotations: { a: 1 } } })), message: /annotation values must be strings/ },
      { name: 'unknown kind without media type', bytes: () => encode({ schemaVersion: 2 }), message: /its kind is unknown/ }
    ]

    for (const { name, bytes, hint, message } of cases) {
      it(name, () => {
        assert.throws(() => parseManifest(bytes(), hint), (err: Error) => {
          assert.ok(err instanceof InvalidManifestError, `expected InvalidManifestError, got ${err.name}: ${err.message}`)
          assert.match(err.message, message)
          return true
        })
      })
    }
  })

  describe('parseDescriptor', () => {
    it('keeps platform and annotations', () => {
      const descriptor = parseDescriptor({ mediaType: OCI_MANIFEST, digest: MANIFEST_DIGEST, size: 346, platform: { os: 'linux', architecture: 'arm', variant: 'v7' }, annotations: { a: 'b' } })
      assert.deepEqual(descriptor, { mediaType: OCI_MANIFEST, digest: MANIFEST_DIGEST, size: 346, platform: { os: 'linux', architecture: 'arm', variant: 'v7' }, annotations: { a: 'b' } })
    })

    it('names the field in its error', () => {
      assert.throws(() => parseDescriptor({ mediaType: OCI_MANIFEST, digest: 'sha256:x', size: 1 }, 'manifests[3]'), /invalid manifests\[3\]\.digest "sha256:x"/)
    })
  })

  describe('childDescriptors', () => {
    it('image returns config then layers, not subject', () => {
      const manifest = parseManifest(encode(imageManifest({ subject: { mediaType: OCI_MANIFEST, digest: MANIFEST_DIGEST, size: 346 } })))

      assert.equal(manifest.kind === 'image' ? manifest.subject?.digest : undefined, MANIFEST_DIGEST)
      assert.deepEqual(childDescriptors(manifest).map(child => child.digest), [CONFIG_DIGEST, LAYER_DIGEST])
    })

    it('index returns its manifests', async () => {
      const index = parseManifest(await fixtureBlob('busybox', 'sha256:603d8711a8f573ba3cc239fe2cf9e88fa11bd1b7e233be98db07d2f2a3c4782b'))
      assert.deepEqual(childDescriptors(index).map(child => child.digest), [
        'sha256:15cdd45bae16e02d67b6126196337f6ac2e3fd5cb5ae43c9b5f53c2816a93d79',
        'sha256:89f5a47f98b36d5b49826fe6a45522394f15f45fd43bfc6e6d12a248f372c756'
      ])
    })
  })

  describe('media types', () => {
    it('classify manifests and indexes', () => {
      assert.ok(isManifestMediaType(OCI_MANIFEST))
      assert.ok(isManifestMediaType(DOCKER_MANIFEST))
      assert.ok(isIndexMediaType(OCI_INDEX))
      assert.ok(isIndexMediaType(DOCKER_MANIFEST_LIST))
      assert.ok(!isManifestMediaType(OCI_INDEX))
      assert.ok(!isIndexMediaType(OCI_CONFIG))
    })

    it('normalizeMediaType strips parameters', () => {
      assert.equal(normalizeMediaType(' Application/JSON ; charset=utf-8'), 'application/json')
    })
  })
})
