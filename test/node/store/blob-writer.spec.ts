import { expect } from 'chai'
import { randomBytes } from 'node:crypto'
import { readdir, readFile, rm, stat, mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { digestOf } from '../../../protocol/digest.js'
import { DigestMismatchError } from '../../../protocol/errors.js'
import { BlobStore } from '../../../node/store/blob-store.js'
import { MAX_CACHED_BLOB_BYTES } from '../../../node/store/blob-cache.js'
import { MAX_PENDING_WRITE_BYTES } from '../../../node/store/blob-writer.js'
import { BlobNotFoundError, CorruptBlobError } from '../../../node/store/errors.js'
import { expectRejection } from '../../utils/assert.js'

describe('store blob writer and open', () => {
  let root: string
  let store: BlobStore

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'km-writer-'))
    store = new BlobStore(root)
    await store.init()
  })

  afterEach(async () => {
    await rm(root, { recursive: true, force: true })
  })

  it('writer stores many small chunks in order', async () => {
    // More chunks than one writev call takes, of uneven sizes.
    const chunks = Array.from({ length: 1500 }, (_, i) => randomBytes(1 + (i * 37) % 700))
    const bytes = Buffer.concat(chunks)
    const digest = digestOf(bytes)
    const writer = await store.createWriter(digest, bytes.byteLength)

    for (const chunk of chunks) {
      await writer.write(chunk)
    }
    expect(writer.offset).to.equal(bytes.byteLength)
    await writer.commit()

    expect(Buffer.compare(await readFile(store.pathOf(digest)), bytes)).to.equal(0)
  })

  it('writer stores a blob larger than its queue', async () => {
    const bytes = randomBytes(MAX_PENDING_WRITE_BYTES * 2 + 12345)
    const digest = digestOf(bytes)
    const writer = await store.createWriter(digest, bytes.byteLength)

    for (let offset = 0; offset < bytes.byteLength; offset += 64 * 1024) {
      await writer.write(bytes.subarray(offset, offset + 64 * 1024))
    }
    const stored = await writer.commitBlob()

    expect(stored.digest).to.equal(digest)
    expect(stored.sizeBytes).to.equal(bytes.byteLength)
    expect(stored.mtimeMs).to.equal((await stat(store.pathOf(digest))).mtimeMs)
    expect(Buffer.compare(await readFile(store.pathOf(digest)), bytes)).to.equal(0)
  })

  it('writer rejects queued bytes that do not match', async () => {
    const bytes = randomBytes(300 * 1024)
    const digest = digestOf(bytes)
    const writer = await store.createWriter(digest, bytes.byteLength)
    const altered = Buffer.from(bytes)
    altered[1000] = (altered[1000] ?? 0) ^ 1

    await writer.write(altered)

    await expectRejection(writer.commit(), DigestMismatchError)
    expect(await store.has(digest)).to.equal(false)
    expect(await readdir(store.temporaryFolder)).to.deep.equal([])
  })

  it('writer rejects writes after abort', async () => {
    const writer = await store.createWriter()
    await writer.write(randomBytes(1000))

    await writer.abort()

    await expectRejection(writer.write(randomBytes(10)), Error, /closed/)
    expect(await readdir(store.temporaryFolder)).to.deep.equal([])
  })

  it('open reads a blob at positions', async () => {
    const bytes = randomBytes(5000)
    const digest = await store.put(bytes)

    const blob = await store.open(digest)
    try {
      expect(blob?.sizeBytes).to.equal(5000)
      expect(Buffer.compare(Buffer.from(await blob?.read(100, 200) ?? []), bytes.subarray(100, 300))).to.equal(0)
      expect((await blob?.read(4900, 500))?.byteLength).to.equal(100)
    } finally {
      await blob?.close()
    }
  })

  it('open returns undefined for a missing blob', async () => {
    expect(await store.open(digestOf(randomBytes(10)))).to.equal(undefined)
  })

  it('open removes a blob corrupted on disk', async () => {
    const bytes = randomBytes(5000)
    const digest = await store.put(bytes)
    const fresh = new BlobStore(root)
    await writeFile(fresh.pathOf(digest), randomBytes(5000))

    await expectRejection(fresh.open(digest), CorruptBlobError)

    expect(await fresh.has(digest)).to.equal(false)
  })

  it('open hashes a large blob again after an outside change', async () => {
    const bytes = randomBytes(MAX_CACHED_BLOB_BYTES + 5000)
    const digest = await store.put(bytes)
    const first = await store.open(digest)
    await first?.close()

    // A new mtime and size make the store check the bytes again.
    await writeFile(store.pathOf(digest), randomBytes(4000))

    await expectRejection(store.open(digest), CorruptBlobError)
  })

  it('open serves a small blob from memory', async () => {
    const bytes = randomBytes(3000)
    const digest = await store.put(bytes)
    await writeFile(store.pathOf(digest), randomBytes(3000))

    // The cache contains the bytes that were verified when the blob was stored.
    const blob = await store.open(digest)
    expect(Buffer.compare(Buffer.from(await blob?.read(0, 3000) ?? []), bytes)).to.equal(0)
    expect(Buffer.compare(Buffer.from(await store.read(digest)), bytes)).to.equal(0)
  })

  it('delete removes a cached blob', async () => {
    const digest = await store.put(randomBytes(3000))
    expect(await store.open(digest)).to.not.equal(undefined)

    await store.delete(digest)

    expect(await store.open(digest)).to.equal(undefined)
    await expectRejection(store.read(digest), BlobNotFoundError)
  })

  it('read copies cached bytes', async () => {
    const bytes = randomBytes(100)
    const digest = await store.put(bytes)

    const first = await store.read(digest)
    first[0] = (first[0] ?? 0) ^ 0xff

    expect(Buffer.compare(Buffer.from(await store.read(digest)), bytes)).to.equal(0)
  })
})
