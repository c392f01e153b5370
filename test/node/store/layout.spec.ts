import { strict as assert } from 'node:assert'
import { readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { OCI_INDEX, OCI_MANIFEST } from '../../../node/image/media-types.js'
import { InvalidDataDirectoryError } from '../../../node/store/errors.js'
import { OciLayout } from '../../../node/store/layout.js'
import { copyFixture, TemporaryFolders } from '../image/helpers.js'
import type { Descriptor } from '../../../node/image/manifest.js'

const V1: Descriptor = { mediaType: OCI_MANIFEST, digest: 'sha256:b00a22a43573e6deb217672d8fad3294e1a02e7d984c5a072d2044b18f24928c', size: 346 }
const V2: Descriptor = { mediaType: OCI_MANIFEST, digest: 'sha256:0ea58ed57cbc25be2db9222d31e8a50e31e55e489df4b15d0380714122999f10', size: 346 }

/** The parts of a layout file these tests look at. */
interface LayoutJson {
  annotations?: Record<string, string>
  manifests: Array<Record<string, unknown>>
}

async function readJson (path: string): Promise<LayoutJson> {
  return JSON.parse(await readFile(path, 'utf8')) as LayoutJson
}

describe('store/layout', () => {
  const folders = new TemporaryFolders()
  afterEach(async () => folders.cleanup())

  it('init creates marker, index and blob folder', async () => {
    const layout = new OciLayout(join(await folders.create(), 'new', 'layout'))
    await layout.init()

    assert.deepEqual(await readJson(layout.markerPath), { imageLayoutVersion: '1.0.0' })
    assert.deepEqual(await readJson(layout.indexPath), { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] })
    assert.ok((await stat(layout.blobFolder)).isDirectory())
    assert.deepEqual(await layout.readIndex(), { schemaVersion: 2, manifests: [] })
  })

  it('second init changes nothing', async () => {
    const layout = new OciLayout(await folders.create())
    await layout.init()
    await layout.setRef('demo:v1', V1)
    const before = await Promise.all([layout.markerPath, layout.indexPath].map(async path => ({ bytes: await readFile(path), mtimeMs: (await stat(path)).mtimeMs })))

    await layout.init()

    const after = await Promise.all([layout.markerPath, layout.indexPath].map(async path => ({ bytes: await readFile(path), mtimeMs: (await stat(path)).mtimeMs })))
    assert.deepEqual(after, before)
  })

  it('init keeps a layout written by another tool', async () => {
    const root = await copyFixture(folders, 'busybox')
    const before = await readFile(join(root, 'index.json'))

    await new OciLayout(root).init()

    assert.deepEqual(await readFile(join(root, 'index.json')), before)
  })

  const invalidFiles: Array<{ name: string, file: string, content: string, message: RegExp }> = [
    { name: 'marker that is not JSON', file: 'oci-layout', content: 'hello', message: /oci-layout is not valid JSON/ },
    { name: 'marker without version', file: 'oci-layout', content: '{}', message: /has no "imageLayoutVersion" string/ },
    { name: 'index that is not JSON', file: 'index.json', content: '{"schemaVersion":2', message: /invalid OCI image layout index .*not valid UTF-8 JSON/ },
    { name: 'index with a traversal digest', file: 'index.json', content: JSON.stringify({ schemaVersion: 2, manifests: [{ ...V1, digest: 'sha256:../../etc/passwd' }] }), message: /invalid manifests\[0\]\.digest/ },
    { name: 'index that is a manifest', file: 'index.json', content: JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: V1, layers: [] }), message: /does not match "application\/vnd.oci.image.index.v1\+json"/ }
  ]
  for (const { name, file, content, message } of invalidFiles) {
    it(`init rejects ${name} and leaves it unchanged`, async () => {
      const root = await folders.create()
      await new OciLayout(root).init()
      await writeFile(join(root, file), content)

      await assert.rejects(new OciLayout(root).init(), (err: Error) => {
        assert.ok(err instanceof InvalidDataDirectoryError, `expected InvalidDataDirectoryError, got ${err.name}`)
        assert.match(err.message, message)
        return true
      })
      assert.equal(await readFile(join(root, file), 'utf8'), content)
    })
  }

  it('readIndex of a folder without index.json names the fix', async () => {
    await assert.rejects(new OciLayout(await folders.create()).readIndex(), /index.json is missing \(initialise the folder first/)
  })

  it('setRef adds and replaces by ref name', async () => {
    const layout = new OciLayout(await folders.create())
    await layout.init()

    await layout.setRef('demo:v1', V1)
    await layout.setRef('demo:v2', V2)
    await layout.setRef('demo:v1', V2)

    const refs = await layout.refs()
    assert.deepEqual([...refs.keys()].sort(), ['demo:v1', 'demo:v2'])
    assert.equal(refs.get('demo:v1')?.digest, V2.digest)
    assert.equal((await layout.readIndex()).manifests.length, 2)
  })

  it('setRef keeps other refs and unknown fields byte for byte', async () => {
    const root = await copyFixture(folders, 'busybox')
    const original = await readJson(join(root, 'index.json'))
    original.annotations = { 'org.example.kept': 'yes' }
    const first = original.manifests[0]
    assert.ok(first != null)
    first.artifactType = 'application/vnd.example.kept'
    await writeFile(join(root, 'index.json'), JSON.stringify(original))
    const layout = new OciLayout(root)

    await layout.setRef('demo:v1', { ...V1, annotations: { 'org.example.note': 'kept too' } })

    const written = await readJson(join(root, 'index.json'))
    assert.deepEqual(written.manifests.slice(0, 3), original.manifests)
    assert.deepEqual(written.annotations, original.annotations)
    assert.deepEqual(written.manifests[3], { ...V1, annotations: { 'org.example.note': 'kept too', 'org.opencontainers.image.ref.name': 'demo:v1' } })
    assert.deepEqual([...(await layout.refs()).keys()], ['1.35-amd64', '1.35-arm64', '1.35', 'demo:v1'])
  })

  it('concurrent setRef calls keep every entry', async () => {
    const root = await folders.create()
    await new OciLayout(root).init()

    // Separate instances on one folder share the in-process lock.
    await Promise.all(Array.from({ length: 20 }, async (_, i) => new OciLayout(root).setRef(`demo:v${i}`, i % 2 === 0 ? V1 : V2)))

    const refs = await new OciLayout(root).refs()
    assert.equal(refs.size, 20)
    for (let i = 0; i < 20; i++) {
      assert.equal(refs.get(`demo:v${i}`)?.digest, i % 2 === 0 ? V1.digest : V2.digest)
    }
  })

  it('refs sees an index.json that another writer replaced after the last read', async () => {
    const layout = new OciLayout(await folders.create())
    await layout.init()
    await layout.setRef('demo:v1', V1)
    assert.equal((await layout.refs()).get('demo:v1')?.digest, V1.digest)

    // Another instance stands for another process; it replaces the file by a rename.
    await new OciLayout(layout.root).setRef('demo:v1', V2)

    assert.equal((await layout.refs()).get('demo:v1')?.digest, V2.digest)
  })

  it('refs sees an index.json rewritten in place with a different size', async () => {
    const layout = new OciLayout(await folders.create())
    await layout.init()
    await layout.setRef('demo:v1', V1)
    assert.equal((await layout.refs()).size, 1)

    await writeFile(layout.indexPath, JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] }))

    assert.equal((await layout.refs()).size, 0)
  })

  it('removeRef removes only that ref', async () => {
    const layout = new OciLayout(await folders.create())
    await layout.init()
    await layout.setRef('demo:v1', V1)
    await layout.setRef('demo:v2', V2)

    assert.equal(await layout.removeRef('demo:v1'), true)
    assert.equal(await layout.removeRef('demo:v1'), false)
    assert.deepEqual([...(await layout.refs()).keys()], ['demo:v2'])
  })

  it('setRef rejects bad ref names and descriptors', async () => {
    const layout = new OciLayout(await folders.create())
    await layout.init()
    const before = await readFile(layout.indexPath)

    await assert.rejects(layout.setRef('', V1), /invalid image ref name ""/)
    await assert.rejects(layout.setRef('demo:\nv1', V1), /without control characters/)
    await assert.rejects(layout.setRef('demo:v1', { ...V1, digest: 'sha256:../../etc/passwd' }), /invalid descriptor for demo:v1\.digest/)
    await assert.rejects(layout.setRef('demo:v1', { ...V1, size: -1 }), /invalid descriptor for demo:v1\.size -1/)
    assert.deepEqual(await readFile(layout.indexPath), before)
  })

  it('blobPath rejects digests that could leave the folder', () => {
    const layout = new OciLayout('/data')
    assert.equal(layout.blobPath(V1.digest), `/data/blobs/sha256/${V1.digest.slice(7)}`)
    assert.throws(() => layout.blobPath('sha256:../../etc/passwd'), /invalid digest/)
  })
})
