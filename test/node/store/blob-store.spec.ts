import { expect } from 'chai'
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { digestOf } from '../../../protocol/digest.js'
import { DigestMismatchError } from '../../../protocol/errors.js'
import { BlobStore } from '../../../node/store/blob-store.js'
import { BlobTooLargeError, CorruptBlobError } from '../../../node/store/errors.js'
import { expectRejection } from '../../utils/assert.js'

describe('store blob store', () => {
  let root: string
  let store: BlobStore

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'km-store-'))
    store = new BlobStore(root)
    await store.init()
  })

  afterEach(async () => {
    await rm(root, { recursive: true, force: true })
  })

  const bytes = new TextEncoder().encode('kilomesh blob')
  const digest = digestOf(bytes)

  it('stores and reads back verified bytes', async () => {
    expect(await store.put(bytes, digest)).to.equal(digest)

    expect(Buffer.from(await store.read(digest)).toString()).to.equal('kilomesh blob')
    expect((await store.stat(digest))?.sizeBytes).to.equal(bytes.byteLength)
  })

  it('never stores bytes under a digest they do not match', async () => {
    const wrong = digestOf(new TextEncoder().encode('other'))

    await expectRejection(store.put(bytes, wrong), DigestMismatchError)

    expect(await store.has(wrong)).to.equal(false)
    expect(await readdir(store.temporaryFolder)).to.deep.equal([])
  })

  it('putVerified stores bytes the caller hashed', async () => {
    expect(await store.putVerified(bytes, digest)).to.equal(digest)
    const fresh = new BlobStore(root)

    expect(Buffer.from(await fresh.read(digest)).toString()).to.equal('kilomesh blob')
  })

  it('putVerified trusts the caller until a disk read', async () => {
    const claimed = digestOf(new TextEncoder().encode('other'))

    // Without a hash of its own, the store takes the claimed digest.
    expect(await store.putVerified(bytes, claimed)).to.equal(claimed)
    const fresh = new BlobStore(root)

    // A read from the disk hashes the file and finds the mismatch.
    await expectRejection(fresh.read(claimed), CorruptBlobError)
    expect(await fresh.has(claimed)).to.equal(false)
  })

  it('rejects more bytes than the expected size', async () => {
    const writer = await store.createWriter(digest, 4)

    await expectRejection(writer.write(bytes), BlobTooLargeError)
    await writer.abort()
    expect(await store.has(digest)).to.equal(false)
  })

  it('removes a corrupted blob instead of serving it', async () => {
    await store.put(bytes, digest)
    const fresh = new BlobStore(root)
    await writeFile(fresh.pathOf(digest), 'tampered on disk')

    await expectRejection(fresh.read(digest), CorruptBlobError)
    expect(await fresh.has(digest)).to.equal(false)
  })

  it('touch does not hide a corruption', async () => {
    await store.put(bytes, digest)
    await writeFile(store.pathOf(digest), 'tampered after verification')

    await store.touch(digest)

    await expectRejection(store.read(digest), CorruptBlobError)
  })

  it('streams from an offset', async () => {
    await store.put(bytes, digest)

    const { stream, sizeBytes } = await store.readStream(digest, { offset: 9 })
    const chunks: Buffer[] = []
    for await (const chunk of stream) {
      chunks.push(Buffer.from(chunk))
    }

    expect(sizeBytes).to.equal(bytes.byteLength)
    expect(Buffer.concat(chunks).toString()).to.equal('blob')
  })

  it('removes partial writes left by a crash on init', async () => {
    const writer = await store.createWriter(digest)
    await writer.write(bytes.subarray(0, 3))

    await new BlobStore(root).init()

    expect(await readdir(store.temporaryFolder)).to.deep.equal([])
    expect(await store.has(digest)).to.equal(false)
    // The crashed writer's file handle is still open in this process.
    await writer.abort()
  })

  it('lists stored blobs and deletes them', async () => {
    await store.put(bytes, digest)

    expect((await store.list()).map(blob => blob.digest)).to.deep.equal([digest])
    expect(await store.delete(digest)).to.equal(true)
    expect(await store.list()).to.deep.equal([])
  })
})
