/**
 * `GET`, `HEAD` and `DELETE /v2/<name>/blobs/<digest>`. Blobs live in one
 * content store for every repository, so the repository in the path only
 * has to be a valid name.
 */
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { logger } from '@libp2p/logger'
import { parseDigest, type OciDigest } from '../../protocol/digest.js'
import { ensureLocal, type MethodHandlers, type RegistryRequest } from './context.js'
import { RegistryError } from './errors.js'
import { parseRange } from './range.js'
import type { ArrivingBlob } from './arriving-blob.js'
import type { BlobStore } from '../store/blob-store.js'

const log = logger('kilomesh:registry:blobs')

/** Content type of every blob response. The blob's media type is in the manifest that references it, not in the store. */
const BLOB_CONTENT_TYPE = 'application/octet-stream'

function blobUnknown (digest: OciDigest, looked: string): RegistryError {
  return new RegistryError('BLOB_UNKNOWN', `blob ${digest} is not ${looked}: push it first, or publish an image that contains it from an agent in reach`)
}

/** Sets the headers of a blob response, whole or one byte range, and returns the range to send. */
function writeBlobHeaders (request: RegistryRequest, digest: OciDigest, sizeBytes: number): { start: number, end: number } | undefined {
  const { req, res } = request
  const range = parseRange(req.headers.range, sizeBytes)

  res.setHeader('Content-Type', BLOB_CONTENT_TYPE)
  res.setHeader('Docker-Content-Digest', digest)
  res.setHeader('Accept-Ranges', 'bytes')
  res.setHeader('ETag', `"${digest}"`)
  res.setHeader('Cache-Control', 'max-age=31536000, immutable')

  if (range == null) {
    res.statusCode = 200
    res.setHeader('Content-Length', sizeBytes)
  } else {
    res.statusCode = 206
    res.setHeader('Content-Length', range.end - range.start + 1)
    res.setHeader('Content-Range', `bytes ${range.start}-${range.end}/${sizeBytes}`)
  }
  return range
}

/**
 * Serves a blob, whole or one byte range. A GET of a blob that is not local
 * fetches it through the mesh first. A HEAD only looks at the local store:
 * clients push with a HEAD per blob to learn whether to upload it, and a
 * mesh lookup there would hold up every push of a new blob for the whole
 * fetch timeout.
 */
async function serveBlob (request: RegistryRequest, digestText: string): Promise<void> {
  const { req, res, signal } = request
  const store = request.context.backend.store
  const digest = parseDigest(digestText)

  if (req.method === 'HEAD') {
    if (!await store.has(digest)) {
      throw blobUnknown(digest, 'in this agent\'s store')
    }

    // A client that finds the blob here skips uploading it and references it
    // in a manifest soon; marking it used keeps garbage collection off it.
    await store.touch(digest).catch(() => {})
    const info = await store.verify(digest, { signal })
    writeBlobHeaders(request, digest, info.sizeBytes)
    res.end()
    return
  }

  // A small blob in the store's memory cache is served from there, as the
  // blob protocol serves it: no stat, open, read or hash per request.
  const cached = store.cachedBytes(digest)
  if (cached != null) {
    sendBytes(request, digest, cached)
    await markUsed(store, digest)
    return
  }

  // Only a whole blob is passed on as it arrives; a range waits for the check.
  let fetched = await ensureLocal(request, digest, {}, { stream: req.headers.range == null })
  if (fetched?.arriving != null) {
    if (await sendArriving(request, fetched.arriving)) {
      return
    }
    fetched = await ensureLocal(request, digest)
  }
  if (fetched == null) {
    throw blobUnknown(digest, 'in this agent\'s store and no peer in reach returned it in time')
  }

  // A blob fetched into memory was checked against its digest by the
  // backend, so it is served before the store has finished writing it.
  if (fetched.bytes != null) {
    sendBytes(request, digest, fetched.bytes)
    return
  }

  const info = await store.verify(digest, { signal })
  const range = writeBlobHeaders(request, digest, info.sizeBytes)
  const { stream } = await store.readStream(digest, range == null ? { signal } : { signal, offset: range.start, end: range.end })
  try {
    await pipeline(stream, res)
  } finally {
    // Least-recently-used eviction reads the blob's mtime, so a pull counts
    // as a use, even one whose client closed the connection before the
    // response ended. Marking it after the response keeps the client from
    // waiting for it.
    await markUsed(store, digest)
  }
}

/** Sends a verified blob held in memory, whole or the requested range. */
function sendBytes (request: RegistryRequest, digest: OciDigest, bytes: Uint8Array): void {
  const range = writeBlobHeaders(request, digest, bytes.byteLength)
  request.res.end(range == null ? bytes : bytes.subarray(range.start, range.end + 1))
}

/** Marks a served blob as used for eviction, logging a failure. */
async function markUsed (store: BlobStore, digest: OciDigest): Promise<void> {
  await store.touch(digest).catch((err: Error) => { log('could not mark %s as used - %e', digest, err) })
}

/**
 * Sends a whole blob as it arrives from a peer. The headers go out with
 * the first bytes, so a transfer that fails before them returns false and
 * the caller fetches the blob another way. A failure after them throws,
 * and the server cuts the connection: the client sees a short body.
 */
async function sendArriving (request: RegistryRequest, arriving: ArrivingBlob): Promise<boolean> {
  const chunks = arriving.chunks(request.signal)
  let first: IteratorResult<Uint8Array>
  try {
    first = await chunks.next()
  } catch (err) {
    request.signal.throwIfAborted()
    log('%s failed before its first bytes reached the client, fetching it again - %e', arriving.digest, err)
    return false
  }

  writeBlobHeaders(request, arriving.digest, arriving.sizeBytes)
  await pipeline(Readable.from((async function * () {
    if (first.done !== true) {
      yield first.value
    }
    yield * chunks
  })(), { objectMode: false }), request.res)
  return true
}

/** Handlers of `/v2/<name>/blobs/<digest>`. */
export const blobHandlers: MethodHandlers<'blob'> = {
  GET: async (request, resource) => {
    await serveBlob(request, resource.digest)
  },

  // Deleting from the shared content store would break every other
  // repository and tag that uses the blob. Unused blobs leave through the
  // store's quota and garbage collection instead.
  DELETE: async (_request, resource) => {
    throw new RegistryError('METHOD_NOT_ALLOWED', `blob ${resource.digest.slice(0, 80)} cannot be deleted through the registry: blobs are shared by every repository and removed by garbage collection once no pinned tag uses them; delete the tag or manifest instead`, { Allow: 'GET, HEAD' })
  }
}
