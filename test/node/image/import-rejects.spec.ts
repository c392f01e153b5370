import { strict as assert } from 'node:assert'
import { createHash, randomBytes } from 'node:crypto'
import { access, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { gunzipSync } from 'node:zlib'
import { InvalidImageSourceError, InvalidManifestError, UnsafeArchiveEntryError } from '../../../node/image/errors.js'
import { importImage } from '../../../node/image/import.js'
import { OCI_CONFIG, OCI_LAYER_TAR_GZIP, OCI_MANIFEST } from '../../../node/image/media-types.js'
import { InvalidDataDirectoryError } from '../../../node/store/errors.js'
import { DigestMismatchError } from '../../../protocol/errors.js'
import { MAX_MANIFEST_BYTES } from '../../../protocol/constants.js'
import { FIXTURES, TemporaryFolders, copyFixture, createStore, packTar, storedDigests, temporaryLeftovers, type TarEntry } from './helpers.js'

const MICRO_V1 = 'b00a22a43573e6deb217672d8fad3294e1a02e7d984c5a072d2044b18f24928c'
const MICRO_CONFIG = '11cf634045183836747073e3aea959d01fdaf4fd55c8b9c022738e62123c439c'
const MICRO_LAYER_GZIP = '6605c25f659b195ee6cf445c35a56180b3a2f26db15740fb46de7076b7f728b2'
const MICRO_LAYER_TAR = 'd420832d8e3d4955c67cf7037d8e2d42ad18dbce838e77166c1ff4063ced955a'

// A path that an escaping entry would create; it must never exist after the import.
const OUTSIDE = `/tmp/kilomesh-escape-${randomBytes(6).toString('hex')}`

function hexOf (bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex')
}

async function fixtureBlob (hex: string): Promise<Buffer> {
  return readFile(join(FIXTURES, 'micro-httpd', 'blobs', 'sha256', hex))
}

/** Flips the last byte, keeping the size, so only the hash can tell. */
function corrupt (bytes: Buffer): Buffer {
  const copy = Buffer.from(bytes)
  copy[copy.length - 1] = (copy[copy.length - 1] ?? 0) ^ 0xff
  return copy
}

/** Writes `manifest` as a blob of a copy of the micro-httpd layout and makes it the only image, tagged v1. */
async function layoutWithManifest (folders: TemporaryFolders, manifest: Uint8Array | string): Promise<string> {
  const root = await copyFixture(folders, 'micro-httpd')
  const bytes = typeof manifest === 'string' ? Buffer.from(manifest) : manifest
  await writeFile(join(root, 'blobs', 'sha256', hexOf(bytes)), bytes)
  await writeFile(join(root, 'index.json'), JSON.stringify({
    schemaVersion: 2,
    manifests: [{ mediaType: OCI_MANIFEST, digest: `sha256:${hexOf(bytes)}`, size: bytes.byteLength, annotations: { 'org.opencontainers.image.ref.name': 'v1' } }]
  }))
  return `${root}:v1`
}

function manifestWithLayer (digest: string): string {
  return JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: OCI_CONFIG, digest: `sha256:${MICRO_CONFIG}`, size: 434 },
    layers: [{ mediaType: OCI_LAYER_TAR_GZIP, digest, size: 6073 }]
  })
}

/** Entries of an OCI archive of micro-httpd v1, for tests that alter one of them. */
async function ociArchiveEntries (): Promise<TarEntry[]> {
  return [
    { name: 'oci-layout', body: '{"imageLayoutVersion":"1.0.0"}' },
    { name: 'index.json', body: JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: OCI_MANIFEST, digest: `sha256:${MICRO_V1}`, size: 346, annotations: { 'org.opencontainers.image.ref.name': 'v1' } }] }) },
    { name: `blobs/sha256/${MICRO_V1}`, body: await fixtureBlob(MICRO_V1) },
    { name: `blobs/sha256/${MICRO_CONFIG}`, body: await fixtureBlob(MICRO_CONFIG) },
    { name: `blobs/sha256/${MICRO_LAYER_GZIP}`, body: await fixtureBlob(MICRO_LAYER_GZIP) }
  ]
}

async function withLayerEntry (entry: Omit<TarEntry, 'name'>): Promise<TarEntry[]> {
  return (await ociArchiveEntries()).map(other => other.name.endsWith(MICRO_LAYER_GZIP) ? { name: other.name, ...entry } : other)
}

/** Entries of a docker save archive of micro-httpd v1 in the older layout, with the layer behind a symbolic link. */
async function dockerArchiveEntries (layer: Uint8Array, configName = `${MICRO_CONFIG}.json`): Promise<TarEntry[]> {
  return [
    { name: 'manifest.json', body: JSON.stringify([{ Config: configName, RepoTags: ['demo/httpd:v1'], Layers: ['abc/layer.tar'] }]) },
    { name: configName, body: await fixtureBlob(MICRO_CONFIG) },
    { name: `${MICRO_LAYER_TAR}.tar`, body: layer },
    { name: 'abc/layer.tar', type: 'symlink', linkname: `../${MICRO_LAYER_TAR}.tar` }
  ]
}

/** Returns the uncompressed layer of micro-httpd v1, which the config's diff_ids name. */
async function uncompressedLayer (): Promise<Buffer> {
  return gunzipSync(await fixtureBlob(MICRO_LAYER_GZIP))
}

async function archiveFile (folders: TemporaryFolders, entries: TarEntry[] | Buffer): Promise<string> {
  const path = join(await folders.create(), 'image.tar')
  await writeFile(path, Buffer.isBuffer(entries) ? entries : await packTar(entries))
  return path
}

async function exists (path: string): Promise<boolean> {
  return access(path).then(() => true, () => false)
}

describe('image/import rejects', () => {
  const folders = new TemporaryFolders()
  afterEach(async () => folders.cleanup())

  type ErrorClass = new (...args: never[]) => Error
  const cases: Array<{ name: string, source: (folders: TemporaryFolders) => Promise<string>, error: ErrorClass, message: RegExp }> = [
    {
      name: 'layer whose bytes do not match its name',
      source: async folders => {
        const root = await copyFixture(folders, 'micro-httpd')
        const path = join(root, 'blobs', 'sha256', MICRO_LAYER_GZIP)
        await writeFile(path, corrupt(await readFile(path)))
        return `${root}:v1`
      },
      error: DigestMismatchError,
      message: new RegExp(`blob sha256:${MICRO_LAYER_GZIP} in .* hashes to sha256:[0-9a-f]{64}; the source is corrupt`)
    },
    {
      name: 'config whose bytes do not match its name',
      source: async folders => {
        const root = await copyFixture(folders, 'micro-httpd')
        const path = join(root, 'blobs', 'sha256', MICRO_CONFIG)
        await writeFile(path, corrupt(await readFile(path)))
        return `${root}:v1`
      },
      error: DigestMismatchError,
      message: new RegExp(`blob sha256:${MICRO_CONFIG} in .* hashes to`)
    },
    {
      name: 'manifest whose bytes do not match its name',
      source: async folders => {
        const root = await copyFixture(folders, 'micro-httpd')
        const path = join(root, 'blobs', 'sha256', MICRO_V1)
        await writeFile(path, corrupt(await readFile(path)))
        return `${root}:v1`
      },
      error: DigestMismatchError,
      message: /manifest sha256:b00a2.* hashes to sha256:/
    },
    {
      name: 'missing layer',
      source: async folders => {
        const root = await copyFixture(folders, 'micro-httpd')
        await rm(join(root, 'blobs', 'sha256', MICRO_LAYER_GZIP))
        return `${root}:v1`
      },
      error: InvalidImageSourceError,
      message: new RegExp(`is missing blob sha256:${MICRO_LAYER_GZIP} \\(layers\\[0\\] of manifest sha256:${MICRO_V1}\\)`)
    },
    {
      name: 'layer longer than its descriptor',
      source: async folders => {
        const root = await copyFixture(folders, 'micro-httpd')
        const path = join(root, 'blobs', 'sha256', MICRO_LAYER_GZIP)
        await writeFile(path, Buffer.concat([await readFile(path), Buffer.from([0])]))
        return `${root}:v1`
      },
      error: InvalidImageSourceError,
      message: /has 6074 bytes, but layers\[0\] of manifest .* gives its size as 6073/
    },
    {
      name: 'manifest over 4 MiB',
      source: async folders => layoutWithManifest(folders, JSON.stringify({ ...JSON.parse(manifestWithLayer(`sha256:${MICRO_LAYER_GZIP}`)), annotations: { pad: 'x'.repeat(MAX_MANIFEST_BYTES) } })),
      error: InvalidManifestError,
      message: /more than the limit of 4194304 bytes/
    },
    {
      name: 'manifest that is not JSON',
      source: async folders => layoutWithManifest(folders, '{"schemaVersion": 2, "config": '),
      error: InvalidManifestError,
      message: /not valid UTF-8 JSON/
    },
    {
      name: 'descriptor digest with a path traversal',
      source: async folders => layoutWithManifest(folders, manifestWithLayer('sha256:../../etc/passwd')),
      error: InvalidManifestError,
      message: /invalid layers\[0\]\.digest "sha256:..\/..\/etc\/passwd"/
    },
    {
      name: 'descriptor digest in uppercase hex',
      source: async folders => layoutWithManifest(folders, manifestWithLayer(`sha256:${MICRO_LAYER_GZIP.toUpperCase()}`)),
      error: InvalidManifestError,
      message: /invalid layers\[0\]\.digest/
    },
    {
      name: 'index.json with a path traversal digest',
      source: async folders => {
        const root = await copyFixture(folders, 'micro-httpd')
        await writeFile(join(root, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: OCI_MANIFEST, digest: 'sha256:../../../etc/passwd', size: 1 }] }))
        return root
      },
      error: InvalidDataDirectoryError,
      message: /invalid manifests\[0\]\.digest/
    },
    {
      name: 'archive blob whose bytes do not match its name',
      source: async folders => archiveFile(folders, await withLayerEntry({ body: corrupt(await fixtureBlob(MICRO_LAYER_GZIP)) })),
      error: DigestMismatchError,
      message: /hashes to sha256:[0-9a-f]{64}; the source is corrupt/
    },
    {
      name: 'tar entry ../evil',
      source: async folders => archiveFile(folders, [...await ociArchiveEntries(), { name: '../evil', body: 'x' }]),
      error: UnsafeArchiveEntryError,
      message: /has an entry "..\/evil" with a ".." component/
    },
    {
      name: 'tar entry with .. inside the path',
      source: async folders => archiveFile(folders, [{ name: 'blobs/../../../evil', body: 'x' }]),
      error: UnsafeArchiveEntryError,
      message: /with a ".." component/
    },
    {
      name: 'absolute tar entry path',
      source: async folders => archiveFile(folders, [{ name: OUTSIDE, body: 'x' }, ...await ociArchiveEntries()]),
      error: UnsafeArchiveEntryError,
      message: /has an entry with the absolute path "\/tmp\/kilomesh-escape-/
    },
    {
      name: 'symlink leaving the archive',
      source: async folders => archiveFile(folders, await withLayerEntry({ type: 'symlink', linkname: '../../../../../../../../etc/passwd' })),
      error: UnsafeArchiveEntryError,
      message: /symbolic link .* which points outside the archive/
    },
    {
      name: 'symlink with an absolute target',
      source: async folders => archiveFile(folders, await withLayerEntry({ type: 'symlink', linkname: '/etc/passwd' })),
      error: UnsafeArchiveEntryError,
      message: /links must be relative and stay inside the archive/
    },
    {
      name: 'hard link leaving the archive',
      source: async folders => archiveFile(folders, await withLayerEntry({ type: 'link', linkname: '../outside' })),
      error: UnsafeArchiveEntryError,
      message: /with a ".." component/
    },
    {
      name: 'symlink loop',
      source: async folders => archiveFile(folders, [
        ...(await ociArchiveEntries()).filter(entry => entry.name !== 'index.json'),
        { name: 'index.json', type: 'symlink', linkname: 'loop-a' },
        { name: 'loop-a', type: 'symlink', linkname: 'loop-b' },
        { name: 'loop-b', type: 'symlink', linkname: 'loop-a' }
      ]),
      error: UnsafeArchiveEntryError,
      message: /too many levels of links/
    },
    {
      name: 'truncated tar',
      source: async folders => archiveFile(folders, (await readFile(join(FIXTURES, 'micro-httpd-v1.oci.tar'))).subarray(0, 5000)),
      error: InvalidImageSourceError,
      message: /cannot read archive .*: it is truncated or not a tar file/
    },
    {
      name: 'file that is not a tar',
      source: async folders => archiveFile(folders, randomBytes(4096)),
      error: InvalidImageSourceError,
      message: /cannot read archive .*: it is truncated or not a tar file/
    },
    {
      name: 'tar that is no image',
      source: async folders => archiveFile(folders, [{ name: 'hello.txt', body: 'hello' }]),
      error: InvalidImageSourceError,
      message: /is neither an OCI archive \(oci-layout and index.json\) nor a docker save archive \(manifest.json\)/
    },
    {
      name: 'docker layer unlike its diff_id',
      source: async folders => archiveFile(folders, await dockerArchiveEntries(corrupt(await uncompressedLayer()))),
      error: DigestMismatchError,
      message: /layer abc\/layer.tar in .* hashes to sha256:[0-9a-f]{64}, not the sha256:d4208/
    },
    {
      name: 'docker config unlike its name',
      source: async folders => archiveFile(folders, await dockerArchiveEntries(await uncompressedLayer(), `${MICRO_LAYER_TAR}.json`)),
      error: DigestMismatchError,
      message: /config .* hashes to sha256:11cf6.*, not the sha256:d4208/
    },
    {
      name: 'docker symlink leaving the archive',
      source: async folders => archiveFile(folders, (await dockerArchiveEntries(await uncompressedLayer())).map(entry => entry.type === 'symlink' ? { ...entry, linkname: '../../etc/passwd' } : entry)),
      error: UnsafeArchiveEntryError,
      message: /points outside the archive/
    }
  ]

  for (const { name, source, error, message } of cases) {
    it(`${name}, storing nothing`, async () => {
      const store = await createStore(folders)
      const input = await source(folders)

      await assert.rejects(importImage(store, input), (err: Error) => {
        assert.ok(err instanceof error, `expected ${error.name}, got ${err.name}: ${err.message}`)
        assert.match(err.message, message)
        return true
      })

      assert.deepEqual(await storedDigests(store), [])
      assert.deepEqual(await temporaryLeftovers(store), [])
      assert.equal(await exists(OUTSIDE), false)
      assert.equal(await exists(join(store.root, 'evil')), false)
    })
  }

  it('valid docker archive built like the rejected ones imports', async () => {
    // Guards the cases above: they fail because of their one defect, not because the builder is wrong.
    const store = await createStore(folders)
    const result = await importImage(store, await archiveFile(folders, await dockerArchiveEntries(await uncompressedLayer())))

    assert.equal(result.refName, 'demo/httpd:v1')
    assert.equal(result.blobCount, 3)
  })

  it('valid OCI archive built like the rejected ones imports', async () => {
    const store = await createStore(folders)
    const result = await importImage(store, await archiveFile(folders, await ociArchiveEntries()))

    assert.equal(result.descriptor.digest, `sha256:${MICRO_V1}`)
  })
})
