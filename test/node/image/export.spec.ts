import { strict as assert } from 'node:assert'
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { initDataDir } from '../../../node/config/init.js'
import { InvalidExportDestinationError, NoMatchingPlatformError } from '../../../node/image/errors.js'
import { exportImage, listImageBlobs } from '../../../node/image/export.js'
import { importImage } from '../../../node/image/import.js'
import { OCI_INDEX, OCI_MANIFEST } from '../../../node/image/media-types.js'
import { BlobNotFoundError } from '../../../node/store/errors.js'
import { OciLayout } from '../../../node/store/layout.js'
import { FIXTURES, TemporaryFolders, copyFixture, createStore, isInstalled, run } from './helpers.js'
import type { Platform } from '../../../node/image/manifest.js'
import type { OciDigest } from '../../../protocol/digest.js'

const BUSYBOX_INDEX = 'sha256:603d8711a8f573ba3cc239fe2cf9e88fa11bd1b7e233be98db07d2f2a3c4782b'
const BUSYBOX_AMD64 = 'sha256:15cdd45bae16e02d67b6126196337f6ac2e3fd5cb5ae43c9b5f53c2816a93d79'
const BUSYBOX_ARM64 = 'sha256:89f5a47f98b36d5b49826fe6a45522394f15f45fd43bfc6e6d12a248f372c756'
const AMD64_BLOBS = [BUSYBOX_AMD64, 'sha256:4b6905a8598001b7d205272de43cb3e68f9451966085ec2e9315b74dc3e28ad5', 'sha256:0bf36be11406bc3d56538a05318bbf7263a4f78c1b67e91a206087d7bfa2ce36']
const ARM64_BLOBS = [BUSYBOX_ARM64, 'sha256:572fb59db4ccc3d2ef64d9c7b20f16dc18d0da3723724db210679ac8bb17e683', 'sha256:98e757988850b9b6be1d0f96036929f76caf28d5c783cbae6238f720bc23aff2']
const MICRO_V1 = 'sha256:b00a22a43573e6deb217672d8fad3294e1a02e7d984c5a072d2044b18f24928c'
const MICRO_V2 = 'sha256:0ea58ed57cbc25be2db9222d31e8a50e31e55e489df4b15d0380714122999f10'

async function blobNames (layout: string): Promise<string[]> {
  return (await readdir(join(layout, 'blobs', 'sha256'))).sort()
}

describe('image/export', () => {
  const folders = new TemporaryFolders()
  afterEach(async () => folders.cleanup())

  const platformCases: Array<{ platform: Platform | 'all', root: string, mediaType: string, blobs: string[], rootPlatform?: Platform }> = [
    { platform: 'all', root: BUSYBOX_INDEX, mediaType: OCI_INDEX, blobs: [BUSYBOX_INDEX, ...AMD64_BLOBS, ...ARM64_BLOBS] },
    { platform: { os: 'linux', architecture: 'amd64' }, root: BUSYBOX_AMD64, mediaType: OCI_MANIFEST, blobs: AMD64_BLOBS, rootPlatform: { os: 'linux', architecture: 'amd64' } },
    { platform: { os: 'linux', architecture: 'arm64' }, root: BUSYBOX_ARM64, mediaType: OCI_MANIFEST, blobs: ARM64_BLOBS, rootPlatform: { os: 'linux', architecture: 'arm64' } }
  ]

  for (const { platform, root, mediaType, blobs, rootPlatform } of platformCases) {
    const label = platform === 'all' ? 'all' : `${platform.os}/${platform.architecture}`
    it(`busybox index for platform ${label} exports byte-identical blobs`, async () => {
      const store = await createStore(folders)
      const imported = await importImage(store, join(FIXTURES, 'busybox:1.35'))
      const destination = join(await folders.create(), 'out')

      const written = await exportImage(store, imported.descriptor, destination, 'busybox:1.35', { platform })

      assert.equal(written.digest, root)
      assert.equal(written.mediaType, mediaType)
      assert.deepEqual(written.platform, rootPlatform)
      assert.deepEqual(await blobNames(destination), blobs.map(digest => digest.slice(7)).sort())
      for (const digest of blobs) {
        const hex = digest.slice(7)
        assert.deepEqual(await readFile(join(destination, 'blobs', 'sha256', hex)), await readFile(join(FIXTURES, 'busybox', 'blobs', 'sha256', hex)), digest)
      }

      const index = await new OciLayout(destination).readIndex()
      assert.equal(index.manifests.length, 1)
      assert.deepEqual(index.manifests[0], written)
      assert.equal(written.annotations?.['org.opencontainers.image.ref.name'], 'busybox:1.35')
      assert.deepEqual(JSON.parse(await readFile(join(destination, 'oci-layout'), 'utf8')), { imageLayoutVersion: '1.0.0' })
    })
  }

  it('export into an existing layout keeps its other refs', async () => {
    const store = await createStore(folders)
    const v1 = await importImage(store, join(FIXTURES, 'micro-httpd:v1'))
    const v2 = await importImage(store, join(FIXTURES, 'micro-httpd:v2'))
    const destination = await copyFixture(folders, 'busybox')

    await exportImage(store, v1.descriptor, destination, 'micro:v1')
    await exportImage(store, v2.descriptor, destination, 'micro:v2')

    const refs = await new OciLayout(destination).refs()
    assert.deepEqual([...refs.keys()], ['1.35-amd64', '1.35-arm64', '1.35', 'micro:v1', 'micro:v2'])
    assert.equal(refs.get('micro:v1')?.digest, MICRO_V1)
    assert.equal(refs.get('micro:v2')?.digest, MICRO_V2)
    assert.equal(refs.get('1.35')?.digest, BUSYBOX_INDEX)
    assert.equal((await blobNames(destination)).length, 7 + 6)
  })

  it('export twice leaves the layout unchanged', async () => {
    const store = await createStore(folders)
    const imported = await importImage(store, join(FIXTURES, 'micro-httpd:v1'))
    const destination = join(await folders.create(), 'out')

    await exportImage(store, imported.descriptor, destination, 'v1')
    const index = await readFile(join(destination, 'index.json'))
    await exportImage(store, imported.descriptor, destination, 'v1')

    assert.deepEqual(await readFile(join(destination, 'index.json')), index)
    assert.equal((await readdir(join(destination, 'blobs', 'sha256'))).length, 3)
  })

  it('export replaces a wrong blob in the destination', async () => {
    const store = await createStore(folders)
    const imported = await importImage(store, join(FIXTURES, 'micro-httpd:v1'))
    const destination = join(await folders.create(), 'out')
    await new OciLayout(destination).init()
    const layerPath = join(destination, 'blobs', 'sha256', '6605c25f659b195ee6cf445c35a56180b3a2f26db15740fb46de7076b7f728b2')
    await writeFile(layerPath, Buffer.alloc(6073))

    await exportImage(store, imported.descriptor, destination, 'v1')

    assert.deepEqual(await readFile(layerPath), await readFile(join(FIXTURES, 'micro-httpd', 'blobs', 'sha256', '6605c25f659b195ee6cf445c35a56180b3a2f26db15740fb46de7076b7f728b2')))
  })

  it('export rejects an agent data directory', async () => {
    const store = await createStore(folders)
    const imported = await importImage(store, join(FIXTURES, 'micro-httpd:v1'))
    const destination = await folders.create()
    await initDataDir(destination)
    const indexBefore = await readFile(join(destination, 'index.json'))

    await assert.rejects(exportImage(store, imported.descriptor, destination, 'v1'), (err: Error) => {
      assert.ok(err instanceof InvalidExportDestinationError)
      assert.match(err.message, /is a kilomesh agent's data directory/)
      return true
    })
    assert.deepEqual(await readFile(join(destination, 'index.json')), indexBefore)
  })

  it('export rejects a folder that is not a layout', async () => {
    const store = await createStore(folders)
    const imported = await importImage(store, join(FIXTURES, 'micro-httpd:v1'))
    const destination = await folders.create()
    await writeFile(join(destination, 'notes.txt'), 'keep me')
    const file = join(destination, 'notes.txt')

    await assert.rejects(exportImage(store, imported.descriptor, destination, 'v1'), (err: Error) => {
      assert.ok(err instanceof InvalidExportDestinationError)
      assert.match(err.message, /neither empty nor an OCI image layout/)
      return true
    })
    await assert.rejects(exportImage(store, imported.descriptor, file, 'v1'), /is a file; give a new or empty folder/)
    assert.deepEqual(await readdir(destination), ['notes.txt'])
  })

  it('export for an absent platform lists the available ones', async () => {
    const store = await createStore(folders)
    const imported = await importImage(store, join(FIXTURES, 'busybox:1.35'))
    const destination = join(await folders.create(), 'out')

    await assert.rejects(exportImage(store, imported.descriptor, destination, 'x', { platform: { os: 'linux', architecture: 'riscv64' } }), (err: Error) => {
      assert.ok(err instanceof NoMatchingPlatformError)
      assert.deepEqual(err.availablePlatforms, ['linux/amd64', 'linux/arm64'])
      return true
    })
  })

  describe('listImageBlobs', () => {
    it('lists the root first and each platform on request', async () => {
      const store = await createStore(folders)
      const imported = await importImage(store, join(FIXTURES, 'busybox:1.35'))

      const all = await listImageBlobs(store, imported.descriptor)
      const arm64 = await listImageBlobs(store, imported.descriptor, { platform: { os: 'linux', architecture: 'arm64' } })

      assert.equal(all[0]?.digest, BUSYBOX_INDEX)
      assert.deepEqual(all.map(blob => blob.digest).sort(), [BUSYBOX_INDEX, ...AMD64_BLOBS, ...ARM64_BLOBS].sort())
      assert.deepEqual(arm64.map(blob => blob.digest), [BUSYBOX_INDEX, ...ARM64_BLOBS])
    })

    it('throws BlobNotFoundError for a missing layer', async () => {
      const store = await createStore(folders)
      const imported = await importImage(store, join(FIXTURES, 'busybox:1.35'))
      await store.delete(ARM64_BLOBS[2] as OciDigest)

      await assert.rejects(listImageBlobs(store, imported.descriptor), (err: Error) => {
        assert.ok(err instanceof BlobNotFoundError)
        assert.match(err.message, /blob sha256:98e75.* \(referenced by sha256:89f5a.*\) is not in the store/)
        return true
      })
      assert.equal((await listImageBlobs(store, imported.descriptor, { platform: { os: 'linux', architecture: 'amd64' } })).length, 4)
    })

    it('throws BlobNotFoundError for a missing manifest', async () => {
      const store = await createStore(folders)
      const imported = await importImage(store, join(FIXTURES, 'busybox:1.35'))
      await store.delete(BUSYBOX_AMD64)

      await assert.rejects(listImageBlobs(store, imported.descriptor), BlobNotFoundError)
    })
  })

  describe('with skopeo', function () {
    const skopeo = isInstalled('skopeo')
    const suffix = skopeo ? '' : ' (skipped: skopeo is not installed)'

    it(`docker archive export is readable by skopeo${suffix}`, async function () {
      if (!skopeo) {
        this.skip()
      }
      const store = await createStore(folders)
      const imported = await importImage(store, join(FIXTURES, 'micro-httpd-v1.docker.tar'))
      const destination = join(await folders.create(), 'out')
      await exportImage(store, imported.descriptor, destination, 'micro:v1')

      const inspected = JSON.parse(await run('skopeo', ['inspect', `oci:${destination}:micro:v1`])) as { Digest: string, Layers: string[], Architecture: string }
      assert.equal(inspected.Digest, imported.descriptor.digest)
      assert.deepEqual(inspected.Layers, ['sha256:d420832d8e3d4955c67cf7037d8e2d42ad18dbce838e77166c1ff4063ced955a'])
      assert.equal(inspected.Architecture, 'amd64')

      // A copy reads and checks every blob, so it fails on any wrong byte.
      const copy = join(await folders.create(), 'copy')
      await run('skopeo', ['copy', `oci:${destination}:micro:v1`, `dir:${copy}`])
      assert.deepEqual(await readFile(join(copy, 'd420832d8e3d4955c67cf7037d8e2d42ad18dbce838e77166c1ff4063ced955a')), await readFile(join(destination, 'blobs', 'sha256', 'd420832d8e3d4955c67cf7037d8e2d42ad18dbce838e77166c1ff4063ced955a')))
    })

    it(`multi-platform export is copied whole by skopeo --all${suffix}`, async function () {
      if (!skopeo) {
        this.skip()
      }
      const store = await createStore(folders)
      const imported = await importImage(store, join(FIXTURES, 'busybox:1.35'))
      const destination = join(await folders.create(), 'out')
      await exportImage(store, imported.descriptor, destination, 'busybox:1.35')

      const copy = join(await folders.create(), 'copy')
      await mkdir(copy)
      await run('skopeo', ['copy', '--all', `oci:${destination}:busybox:1.35`, `oci:${copy}:busybox:1.35`])
      assert.deepEqual(await blobNames(copy), await blobNames(destination))
    })
  })
})
