import { expect } from 'chai'
import { randomBytes } from 'node:crypto'
import { mkdtemp, open, rm, utimes } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { MAX_CACHED_BLOB_BYTES } from '../../../node/store/blob-cache.js'
import { BlobStore } from '../../../node/store/blob-store.js'
import { CorruptBlobError } from '../../../node/store/errors.js'
import type { OciDigest } from '../../../protocol/digest.js'

/** Overwrites one byte of a stored file in place, as bit rot or an outside edit would. */
async function flipByte (path: string, position: number): Promise<void> {
  const handle = await open(path, 'r+')
  try {
    const byte = Buffer.alloc(1)
    await handle.read(byte, 0, 1, position)
    byte[0] = (byte[0] ?? 0) ^ 0xff
    await handle.write(byte, 0, 1, position)
  } finally {
    await handle.close()
  }
}

/**
 * Reads `stream`, flipping a byte of the file at `path` after the first
 * chunk. Returns the bytes received and the error the read ended with.
 */
async function readFlippingOnce (stream: AsyncIterable<Uint8Array>, path: string, position: number): Promise<{ receivedBytes: number, failure: unknown }> {
  let receivedBytes = 0
  try {
    for await (const chunk of stream) {
      if (receivedBytes === 0) {
        await flipByte(path, position)
      }
      receivedBytes += chunk.byteLength
    }
  } catch (err) {
    return { receivedBytes, failure: err }
  }
  return { receivedBytes, failure: undefined }
}

describe('store read check', () => {
  let root: string
  let store: BlobStore
  // Larger than the cache takes, so reads go to the file.
  const bytes = randomBytes(MAX_CACHED_BLOB_BYTES + 300 * 1024)
  let digest: OciDigest

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'km-read-check-'))
    const writer = new BlobStore(root)
    await writer.init()
    digest = await writer.put(bytes)
    // A second store on the same folder, so that the blob is not in its cache.
    store = new BlobStore(root)
    await store.init()
  })

  afterEach(async () => {
    await rm(root, { recursive: true, force: true })
  })

  it('open read stops a changed blob', async () => {
    const blob = await store.open(digest)
    expect(blob).to.not.equal(undefined)
    const chunkBytes = 256 * 1024
    let position = 0
    let failure: unknown

    try {
      while (position < bytes.byteLength) {
        if (position === chunkBytes) {
          await flipByte(store.pathOf(digest), bytes.byteLength - 10)
        }
        const chunk = await blob?.read(position, Math.min(chunkBytes, bytes.byteLength - position))
        position += chunk?.byteLength ?? 0
      }
    } catch (err) {
      failure = err
    } finally {
      await blob?.close()
    }

    expect(failure).to.be.instanceOf(CorruptBlobError)
    expect(position).to.be.lessThan(bytes.byteLength)
    expect(await store.has(digest)).to.equal(false)
  })

  it('readStream stops a changed blob', async () => {
    const { stream } = await store.readStream(digest)

    const { receivedBytes, failure } = await readFlippingOnce(stream, store.pathOf(digest), bytes.byteLength - 10)

    expect(failure).to.be.instanceOf(CorruptBlobError)
    expect(receivedBytes).to.be.lessThan(bytes.byteLength)
    expect(await store.has(digest)).to.equal(false)
  })

  it('readStream of a range stops a changed blob', async () => {
    // An older mtime, so that the edit below changes it even on a coarse file system clock.
    const hourAgo = new Date(Date.now() - 3_600_000)
    await utimes(store.pathOf(digest), hourAgo, hourAgo)
    const { stream } = await store.readStream(digest, { offset: 1000, end: 600_000 })

    // The flipped byte is outside the range, so only the mtime shows the change.
    const { receivedBytes, failure } = await readFlippingOnce(stream, store.pathOf(digest), bytes.byteLength - 10)

    expect(failure).to.be.instanceOf(CorruptBlobError)
    expect(receivedBytes).to.be.lessThan(600_001 - 1000)
    expect(await store.has(digest)).to.equal(false)
  })

  it('readStream of a range allows touch', async () => {
    const { stream } = await store.readStream(digest, { offset: 1000, end: 600_000 })
    const chunks: Buffer[] = []

    for await (const chunk of stream) {
      await store.touch(digest)
      chunks.push(Buffer.from(chunk))
    }

    expect(Buffer.concat(chunks).equals(bytes.subarray(1000, 600_001))).to.equal(true)
    expect(await store.has(digest)).to.equal(true)
  })
})
