import { expect } from 'chai'
import { mkdtemp, rm, utimes } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { importImage } from '../../../node/image/import.js'
import { listImageBlobs } from '../../../node/image/export.js'
import { BlobStore } from '../../../node/store/blob-store.js'
import { GarbageCollector, referencedDigests, type GarbageCollectorInit } from '../../../node/store/gc.js'
import { OciLayout } from '../../../node/store/layout.js'
import { fixture } from '../../utils/paths.js'
import type { Descriptor } from '../../../node/image/manifest.js'
import type { OciDigest } from '../../../protocol/digest.js'

const MINUTE_MS = 60_000

describe('store garbage collector', function () {
  this.timeout(30_000)
  let root: string
  let store: BlobStore
  let layout: OciLayout
  let v1: Descriptor
  let v2: Descriptor
  let busybox: Descriptor
  /** Blobs of each image, listed before any eviction. */
  const blobsOf = new Map<Descriptor, Array<{ digest: OciDigest, size: number }>>()

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'km-gc-'))
    store = new BlobStore(root)
    await store.init()
    layout = new OciLayout(root)
    await layout.init()

    v1 = (await importImage(store, `${fixture('micro-httpd')}:v1`)).descriptor
    v2 = (await importImage(store, `${fixture('micro-httpd')}:v2`)).descriptor
    busybox = (await importImage(store, `${fixture('busybox')}:1.35-amd64`)).descriptor
    await layout.setRef('demo/httpd:v1', v1)
    await layout.setRef('demo/httpd:v2', v2)
    await layout.setRef('library/busybox:1.35-amd64', busybox)
    for (const image of [v1, v2, busybox]) {
      blobsOf.set(image, await listImageBlobs(store, image))
    }
  })

  afterEach(async () => {
    await rm(root, { recursive: true, force: true })
  })

  async function digestsOf (image: Descriptor): Promise<OciDigest[]> {
    return (blobsOf.get(image) ?? []).map(blob => blob.digest)
  }

  async function bytesOf (image: Descriptor): Promise<number> {
    return (blobsOf.get(image) ?? []).reduce((sum, blob) => sum + blob.size, 0)
  }

  /** Sets the last use of every blob of an image to `minutes` ago. */
  async function lastUsed (image: Descriptor, minutes: number): Promise<void> {
    const when = new Date(Date.now() - minutes * MINUTE_MS)
    for (const digest of await digestsOf(image)) {
      await utimes(store.pathOf(digest), when, when)
    }
  }

  function collector (init: Partial<GarbageCollectorInit> = {}): GarbageCollector {
    return new GarbageCollector({ store, layout, pinnedRoots: async () => [], ...init })
  }

  async function storedBytes (): Promise<number> {
    return (await store.list()).reduce((sum, blob) => sum + blob.sizeBytes, 0)
  }

  it('evicts least recently used blobs first', async () => {
    await lastUsed(busybox, 60)
    await lastUsed(v1, 50)
    await lastUsed(v2, 40)
    // A quota that busybox alone exceeds, and that fits once it is gone.
    const quota = (await storedBytes()) - (await bytesOf(busybox))

    const result = await collector({ maxStorageBytes: quota }).collect()

    const busyboxBlobs = await digestsOf(busybox)
    expect(result.evicted.map(blob => blob.digest).sort()).to.deep.equal([...busyboxBlobs].sort())
    expect(result.freedBytes).to.equal(await bytesOf(busybox))
    expect(result.storedBytesAfter).to.equal(quota)
    expect(result.overQuota).to.equal(false)
    for (const digest of busyboxBlobs) {
      expect(await store.has(digest), digest).to.equal(false)
    }
    expect(await store.has(v1.digest)).to.equal(true)
    expect(await store.has(v2.digest)).to.equal(true)
  })

  it('orders eviction by last use', async () => {
    await lastUsed(busybox, 20)
    await lastUsed(v1, 50)
    await lastUsed(v2, 40)

    const result = await collector({ maxStorageBytes: 0 }).collect()

    const order = result.evicted.map(blob => blob.lastUsedMs)
    expect(order).to.deep.equal([...order].sort((a, b) => a - b))
    expect(result.evicted.slice(0, 3).map(blob => blob.digest).sort()).to.deep.equal((await digestsOf(v1)).sort())
    expect(result.evicted).to.have.length(9)
  })

  it('keeps every blob of pinned images', async () => {
    await lastUsed(busybox, 60)
    await lastUsed(v1, 50)
    await lastUsed(v2, 40)

    const result = await collector({ maxStorageBytes: 0, pinnedRoots: async () => [v1, v2] }).collect()

    expect(result.evicted.map(blob => blob.digest).sort()).to.deep.equal((await digestsOf(busybox)).sort())
    expect(result.pinnedBlobs).to.equal(6)
    expect(result.overQuota).to.equal(true)
    for (const digest of [...await digestsOf(v1), ...await digestsOf(v2)]) {
      expect(await store.has(digest), digest).to.equal(true)
    }
  })

  it('removes index.json refs of evicted images', async () => {
    await lastUsed(busybox, 60)
    await lastUsed(v1, 50)
    await lastUsed(v2, 40)
    const quota = (await storedBytes()) - (await bytesOf(busybox))

    const result = await collector({ maxStorageBytes: quota }).collect()

    expect(result.removedRefs).to.deep.equal(['library/busybox:1.35-amd64'])
    expect([...(await layout.refs()).keys()].sort()).to.deep.equal(['demo/httpd:v1', 'demo/httpd:v2'])
  })

  it('spares blobs used within the grace time', async () => {
    await lastUsed(busybox, 60)
    await lastUsed(v1, 5)
    await lastUsed(v2, 5)

    const result = await collector({ maxStorageBytes: 0, recentUseGraceMs: 10 * MINUTE_MS }).collect()

    expect(result.evicted.map(blob => blob.digest).sort()).to.deep.equal((await digestsOf(busybox)).sort())
    expect(result.recentBlobs).to.equal(6)
    expect(result.overQuota).to.equal(true)
  })

  it('spares a blob used during the run', async () => {
    await lastUsed(busybox, 60)
    await lastUsed(v1, 50)
    await lastUsed(v2, 40)
    let calls = 0
    // The second call comes after the scan and before the first eviction, as a pull touching the blob would.
    const pinnedRoots = async (): Promise<Descriptor[]> => {
      if (++calls === 2) {
        await store.touch(busybox.digest)
      }
      return []
    }

    const result = await collector({ maxStorageBytes: 0, pinnedRoots }).collect()

    expect(calls).to.equal(2)
    expect(result.evicted.map(blob => blob.digest)).to.not.include(busybox.digest)
    expect(await store.has(busybox.digest)).to.equal(true)
  })

  it('spares an image pinned during the run', async () => {
    await lastUsed(busybox, 60)
    await lastUsed(v1, 50)
    await lastUsed(v2, 40)
    let calls = 0
    const pinnedRoots = async (): Promise<Descriptor[]> => ++calls === 1 ? [] : [v1]

    const result = await collector({ maxStorageBytes: 0, pinnedRoots }).collect()

    for (const digest of await digestsOf(v1)) {
      expect(await store.has(digest), digest).to.equal(true)
    }
    expect(result.evicted).to.have.length(6)
  })

  it('calls onEvicted for each evicted blob', async () => {
    await lastUsed(busybox, 60)
    await lastUsed(v1, 50)
    await lastUsed(v2, 40)
    const evicted: OciDigest[] = []

    const result = await collector({ maxStorageBytes: 0, pinnedRoots: async () => [v1, v2], onEvicted: digest => { evicted.push(digest) } }).collect()

    expect(evicted).to.deep.equal(result.evicted.map(blob => blob.digest))
    expect(evicted).to.have.length(3)
  })

  it('keeps evicting when onEvicted throws', async () => {
    await lastUsed(busybox, 60)
    await lastUsed(v1, 50)
    await lastUsed(v2, 40)

    const result = await collector({ maxStorageBytes: 0, pinnedRoots: async () => [v1, v2], onEvicted: () => { throw new Error('listener failure') } }).collect()

    expect(result.evicted).to.have.length(3)
  })

  it('removes nothing in a dry run', async () => {
    await lastUsed(busybox, 60)
    await lastUsed(v1, 50)
    await lastUsed(v2, 40)
    const before = await store.list()

    const result = await collector().collect({ maxStorageBytes: 0, dryRun: true })

    expect(result.dryRun).to.equal(true)
    expect(result.evicted).to.have.length(9)
    expect(result.removedRefs).to.have.length(3)
    expect(await store.list()).to.have.length(before.length)
    expect((await layout.refs()).size).to.equal(3)
  })

  it('evicts nothing without a quota', async () => {
    await lastUsed(busybox, 60)

    const result = await collector().collect()

    expect(result.maxStorageBytes).to.equal(null)
    expect(result.evicted).to.have.length(0)
    expect(result.storedBytesAfter).to.equal(result.storedBytesBefore)
  })

  it('applies a quota given to one run', async () => {
    await lastUsed(busybox, 60)
    await lastUsed(v1, 50)
    await lastUsed(v2, 40)
    const gc = collector({ maxStorageBytes: Number.MAX_SAFE_INTEGER })

    const configured = await gc.collect()
    const oneOff = await gc.collect({ maxStorageBytes: 0 })

    expect(configured.evicted).to.have.length(0)
    expect(oneOff.maxStorageBytes).to.equal(0)
    expect(oneOff.evicted).to.have.length(9)
  })

  it('runs concurrent collections one at a time', async () => {
    await lastUsed(busybox, 60)
    await lastUsed(v1, 50)
    await lastUsed(v2, 40)
    const gc = collector({ maxStorageBytes: 0 })

    const [first, second] = await Promise.all([gc.collect(), gc.collect()])

    expect(first.evicted).to.have.length(9)
    expect(second.evicted).to.have.length(0)
    expect(second.storedBytesBefore).to.equal(0)
  })
})

describe('store referenced digests', function () {
  this.timeout(30_000)
  let root: string
  let store: BlobStore

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'km-gc-walk-'))
    store = new BlobStore(root)
    await store.init()
  })

  afterEach(async () => {
    await rm(root, { recursive: true, force: true })
  })

  it('follows an index down to layers', async () => {
    const index = (await importImage(store, `${fixture('busybox')}:1.35`)).descriptor

    const digests = await referencedDigests(store, [index])

    expect(digests.size).to.equal(7)
    expect(digests.has(index.digest)).to.equal(true)
  })

  it('includes missing children without following them', async () => {
    const index = (await importImage(store, `${fixture('busybox')}:1.35`)).descriptor
    const arm = (await importImage(store, `${fixture('busybox')}:1.35-arm64`)).descriptor
    const armBlobs = (await listImageBlobs(store, arm)).map(blob => blob.digest)
    for (const digest of armBlobs) {
      await store.delete(digest)
    }

    const digests = await referencedDigests(store, [index])

    // The arm64 manifest is named by the index but not stored, so its config and layer are not reached.
    expect(digests.has(arm.digest)).to.equal(true)
    expect(digests.size).to.equal(5)
  })

  it('accepts a root without a media type', async () => {
    const v1 = (await importImage(store, `${fixture('micro-httpd')}:v1`)).descriptor

    const digests = await referencedDigests(store, [{ ...v1, mediaType: '' }])

    expect(digests.size).to.equal(3)
  })

  it('skips a root that is not stored', async () => {
    const digests = await referencedDigests(store, [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${'0'.repeat(64)}`, size: 2 }])

    expect([...digests]).to.deep.equal([`sha256:${'0'.repeat(64)}`])
  })
})
