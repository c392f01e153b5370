import { strict as assert } from 'node:assert'
import { createHash } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { AmbiguousImageError, InvalidImageSourceError } from '../../../node/image/errors.js'
import { importImage } from '../../../node/image/import.js'
import { parseManifest } from '../../../node/image/manifest.js'
import { OCI_CONFIG, OCI_LAYER_TAR, OCI_LAYER_TAR_GZIP, OCI_MANIFEST } from '../../../node/image/media-types.js'
import { FIXTURES, TemporaryFolders, createStore, packTar, storedDigests, temporaryLeftovers } from './helpers.js'
import type { OciDigest } from '../../../protocol/digest.js'
import type { BlobStore } from '../../../node/store/blob-store.js'

const MICRO_V1 = 'sha256:b00a22a43573e6deb217672d8fad3294e1a02e7d984c5a072d2044b18f24928c'
const MICRO_V2 = 'sha256:0ea58ed57cbc25be2db9222d31e8a50e31e55e489df4b15d0380714122999f10'
const MICRO_CONFIG = 'sha256:11cf634045183836747073e3aea959d01fdaf4fd55c8b9c022738e62123c439c'
const MICRO_LAYER_GZIP = 'sha256:6605c25f659b195ee6cf445c35a56180b3a2f26db15740fb46de7076b7f728b2'
const MICRO_LAYER_TAR = 'sha256:d420832d8e3d4955c67cf7037d8e2d42ad18dbce838e77166c1ff4063ced955a'
const BUSYBOX_INDEX = 'sha256:603d8711a8f573ba3cc239fe2cf9e88fa11bd1b7e233be98db07d2f2a3c4782b'
const BUSYBOX_ARM64 = 'sha256:89f5a47f98b36d5b49826fe6a45522394f15f45fd43bfc6e6d12a248f372c756'

const MICRO_V1_BLOBS = [MICRO_CONFIG, MICRO_LAYER_GZIP, MICRO_V1]
const BUSYBOX_ALL_BLOBS = [
  '0bf36be11406bc3d56538a05318bbf7263a4f78c1b67e91a206087d7bfa2ce36', '15cdd45bae16e02d67b6126196337f6ac2e3fd5cb5ae43c9b5f53c2816a93d79',
  '4b6905a8598001b7d205272de43cb3e68f9451966085ec2e9315b74dc3e28ad5', '572fb59db4ccc3d2ef64d9c7b20f16dc18d0da3723724db210679ac8bb17e683',
  '603d8711a8f573ba3cc239fe2cf9e88fa11bd1b7e233be98db07d2f2a3c4782b', '89f5a47f98b36d5b49826fe6a45522394f15f45fd43bfc6e6d12a248f372c756',
  '98e757988850b9b6be1d0f96036929f76caf28d5c783cbae6238f720bc23aff2'
].map(hex => `sha256:${hex}`)

function sha256 (bytes: Uint8Array): OciDigest {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`
}

/** Checks that every stored blob's bytes hash to its digest, read back through the store's verified read. */
async function assertStoreIntact (store: BlobStore): Promise<void> {
  for (const digest of await storedDigests(store)) {
    assert.equal(sha256(await store.read(digest as OciDigest)), digest)
  }
}

describe('image/import', () => {
  const folders = new TemporaryFolders()
  afterEach(async () => folders.cleanup())

  const cases: Array<{ source: string, root: string, refName?: string, blobs: string[] }> = [
    { source: 'micro-httpd:v1', root: MICRO_V1, refName: 'v1', blobs: MICRO_V1_BLOBS },
    { source: 'micro-httpd:v2', root: MICRO_V2, refName: 'v2', blobs: ['sha256:7c7c06a71bd052741ef6a57efb0fa47d95fd407ac41444208fafd33dc3097045', MICRO_V2, 'sha256:b0c72be8dc87fcbf9902b2ec07d60c04cdc243e0cdb3d2d034b19e0267a938d4'] },
    { source: `micro-httpd:${MICRO_V1}`, root: MICRO_V1, refName: 'v1', blobs: MICRO_V1_BLOBS },
    { source: 'busybox:1.35', root: BUSYBOX_INDEX, refName: '1.35', blobs: BUSYBOX_ALL_BLOBS },
    { source: 'busybox:1.35-arm64', root: BUSYBOX_ARM64, refName: '1.35-arm64', blobs: ['sha256:572fb59db4ccc3d2ef64d9c7b20f16dc18d0da3723724db210679ac8bb17e683', BUSYBOX_ARM64, 'sha256:98e757988850b9b6be1d0f96036929f76caf28d5c783cbae6238f720bc23aff2'] },
    { source: 'micro-httpd-v1.oci.tar', root: MICRO_V1, refName: 'v1', blobs: MICRO_V1_BLOBS },
    { source: 'micro-httpd-v1.oci.tar:v1', root: MICRO_V1, refName: 'v1', blobs: MICRO_V1_BLOBS }
  ]

  for (const { source, root, refName, blobs } of cases) {
    it(`imports ${source.replace(/sha256:[0-9a-f]+/, 'DIGEST')}`, async () => {
      const store = await createStore(folders)

      const result = await importImage(store, join(FIXTURES, source))

      assert.equal(result.descriptor.digest, root)
      assert.equal(result.refName, refName)
      assert.equal(result.blobCount, blobs.length)
      assert.equal(result.storedBlobCount, blobs.length)
      assert.deepEqual(await storedDigests(store), [...blobs].sort())
      assert.equal(result.sizeBytes, (await store.list()).reduce((total, info) => total + info.sizeBytes, 0))
      assert.deepEqual(await temporaryLeftovers(store), [])
      await assertStoreIntact(store)
    })
  }

  it('imported layout blobs are byte-identical to the source', async () => {
    const store = await createStore(folders)
    await importImage(store, join(FIXTURES, 'busybox:1.35'))

    for (const digest of BUSYBOX_ALL_BLOBS) {
      const source = await readFile(join(FIXTURES, 'busybox', 'blobs', 'sha256', digest.slice(7)))
      assert.deepEqual(Buffer.from(await store.read(digest as OciDigest)), source, digest)
    }
  })

  for (const source of ['micro-httpd-v1.docker.tar', 'micro-httpd-v1.docker.tar:example.org/micro/httpd:v1', 'micro-httpd-v1.docker.tar:v1']) {
    it(`converts docker archive ${source.slice('micro-httpd-v1.docker.tar'.length) || 'without reference'}`, async () => {
      const store = await createStore(folders)

      const result = await importImage(store, join(FIXTURES, source))

      assert.equal(result.refName, 'example.org/micro/httpd:v1')
      assert.equal(result.descriptor.mediaType, OCI_MANIFEST)
      const manifestBytes = await store.read(result.descriptor.digest)
      assert.equal(sha256(manifestBytes), result.descriptor.digest)
      assert.equal(manifestBytes.byteLength, result.descriptor.size)

      const manifest = parseManifest(manifestBytes)
      assert.equal(manifest.kind, 'image')
      assert.deepEqual(manifest.kind === 'image' ? manifest.config : undefined, { mediaType: OCI_CONFIG, digest: MICRO_CONFIG, size: 434 })
      assert.deepEqual(manifest.kind === 'image' ? manifest.layers : undefined, [{ mediaType: OCI_LAYER_TAR, digest: MICRO_LAYER_TAR, size: 19968 }])
      assert.deepEqual(await storedDigests(store), [MICRO_CONFIG, result.descriptor.digest, MICRO_LAYER_TAR].sort())
      assert.deepEqual(await temporaryLeftovers(store), [])
      await assertStoreIntact(store)
    })
  }

  it('converts docker archive with a gzip layer', async () => {
    // The OCI fixture's gzip layer decompresses to the tar that the config's diff_ids name.
    const config = await readFile(join(FIXTURES, 'micro-httpd', 'blobs', 'sha256', MICRO_CONFIG.slice(7)))
    const layer = await readFile(join(FIXTURES, 'micro-httpd', 'blobs', 'sha256', MICRO_LAYER_GZIP.slice(7)))
    const archive = join(await folders.create(), 'gzip-layer.tar')
    await writeFile(archive, await packTar([
      { name: 'manifest.json', body: JSON.stringify([{ Config: `${MICRO_CONFIG.slice(7)}.json`, RepoTags: ['demo/httpd:gz'], Layers: ['layer/layer.tar'] }]) },
      { name: `${MICRO_CONFIG.slice(7)}.json`, body: config },
      { name: 'layer/layer.tar', body: layer }
    ]))
    const store = await createStore(folders)

    const result = await importImage(store, archive)

    const manifest = parseManifest(await store.read(result.descriptor.digest))
    assert.deepEqual(manifest.kind === 'image' ? manifest.layers : undefined, [{ mediaType: OCI_LAYER_TAR_GZIP, digest: MICRO_LAYER_GZIP, size: 6073 }])
    assert.equal(result.refName, 'demo/httpd:gz')
    assert.deepEqual(await storedDigests(store), [MICRO_CONFIG, result.descriptor.digest, MICRO_LAYER_GZIP].sort())
  })

  it('imports a gzip-compressed OCI archive', async () => {
    const archive = join(await folders.create(), 'micro.tar.gz')
    await writeFile(archive, gzipSync(await readFile(join(FIXTURES, 'micro-httpd-v1.oci.tar'))))
    const store = await createStore(folders)

    const result = await importImage(store, `${archive}:v1`)

    assert.equal(result.descriptor.digest, MICRO_V1)
    assert.deepEqual(await storedDigests(store), [...MICRO_V1_BLOBS].sort())
  })

  it('second import of the same image stores nothing new', async () => {
    const store = await createStore(folders)
    await importImage(store, join(FIXTURES, 'micro-httpd:v1'))

    const again = await importImage(store, join(FIXTURES, 'micro-httpd-v1.oci.tar'))

    assert.equal(again.blobCount, 3)
    assert.equal(again.storedBlobCount, 0)
  })

  it('layout without tag fails listing its tags', async () => {
    const store = await createStore(folders)

    await assert.rejects(importImage(store, join(FIXTURES, 'micro-httpd')), (err: Error) => {
      assert.ok(err instanceof AmbiguousImageError, `expected AmbiguousImageError, got ${err.name}`)
      assert.deepEqual(err.refNames, ['v1', 'v2'])
      assert.match(err.message, /contains 2 images: add ":TAG" to choose one of v1, v2/)
      return true
    })
    assert.deepEqual(await storedDigests(store), [])
  })

  it('unknown tag fails listing the tags', async () => {
    const store = await createStore(folders)

    await assert.rejects(importImage(store, join(FIXTURES, 'busybox:1.36')), (err: Error) => {
      assert.ok(err instanceof InvalidImageSourceError)
      assert.match(err.message, /has no image named "1.36": choose one of 1.35-amd64, 1.35-arm64, 1.35/)
      return true
    })
  })

  it('docker archive with an unknown reference lists its tags', async () => {
    const store = await createStore(folders)
    await assert.rejects(importImage(store, join(FIXTURES, 'micro-httpd-v1.docker.tar:other:v1')), /no image named "other:v1"; choose one of example.org\/micro\/httpd:v1/)
  })

  it('docker archive with two images needs a reference', async () => {
    const config = await readFile(join(FIXTURES, 'micro-httpd', 'blobs', 'sha256', MICRO_CONFIG.slice(7)))
    const layer = await readFile(join(FIXTURES, 'micro-httpd', 'blobs', 'sha256', MICRO_LAYER_GZIP.slice(7)))
    const archive = join(await folders.create(), 'two.tar')
    await writeFile(archive, await packTar([
      { name: 'manifest.json', body: JSON.stringify([{ Config: 'c.json', RepoTags: ['demo/a:v1'], Layers: ['l.tar'] }, { Config: 'c.json', RepoTags: ['demo/b:v1'], Layers: ['l.tar'] }]) },
      { name: 'c.json', body: config },
      { name: 'l.tar', body: layer }
    ]))
    const store = await createStore(folders)

    await assert.rejects(importImage(store, archive), (err: Error) => {
      assert.ok(err instanceof AmbiguousImageError)
      assert.deepEqual(err.refNames, ['demo/a:v1', 'demo/b:v1'])
      return true
    })
    await assert.rejects(importImage(store, `${archive}:v1`), /the tag "v1" is ambiguous/)
    assert.equal((await importImage(store, `${archive}:demo/b:v1`)).refName, 'demo/b:v1')
  })

  it('missing source fails naming the accepted forms', async () => {
    const store = await createStore(folders)
    await assert.rejects(importImage(store, join(FIXTURES, 'no-such-image:v1')), (err: Error) => {
      assert.ok(err instanceof InvalidImageSourceError)
      assert.match(err.message, /not found: give a layout folder DIR\[:TAG\], an OCI archive FILE.tar\[:TAG\] or a docker save archive/)
      return true
    })
  })

  it('source ending in a colon fails', async () => {
    const store = await createStore(folders)
    await assert.rejects(importImage(store, `${join(FIXTURES, 'micro-httpd')}:`), /ends with ":" but names no tag/)
  })
})
