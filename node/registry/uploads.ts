/**
 * Blob uploads: `POST /v2/<name>/blobs/uploads/` (with `?digest=` for a
 * monolithic upload, with `?mount=&from=` for a cross-repository mount),
 * then `PATCH` chunks with or without `Content-Range` (chunked transfer
 * encoding included), `PUT ...?digest=` to complete, `GET` for the status
 * and `DELETE` to cancel.
 *
 * @see https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pushing-blobs
 */
import { parseDigest, type OciDigest } from '../../protocol/digest.js'
import { parseRepository } from '../../protocol/reference.js'
import { RegistryError } from './errors.js'
import { contentLengthOf, hasUnreadBody, limitBody, sendEmpty } from './http.js'
import { repositoryPath, type RepositoryName } from './route.js'
import type { MethodHandlers, RegistryRequest } from './context.js'
import type { UploadSession } from './upload-sessions.js'

/** Formats the `Range` header of an upload: the bytes received, `0-0` when there are none, as the reference registry sends it. */
function uploadRange (session: UploadSession): string {
  return `0-${Math.max(0, session.sizeBytes - 1)}`
}

function uploadHeaders (name: RepositoryName, session: UploadSession): Record<string, string> {
  return {
    Location: repositoryPath(name, `blobs/uploads/${session.id}`),
    Range: uploadRange(session),
    'Docker-Upload-UUID': session.id
  }
}

function blobCreated (request: RegistryRequest, name: RepositoryName, digest: OciDigest): void {
  sendEmpty(request.res, 201, {
    Location: repositoryPath(name, `blobs/${digest}`),
    'Docker-Content-Digest': digest
  })
}

/** Parses a chunk's `Content-Range`: `START-END`, also with a `bytes ` or `bytes=` prefix and a `/TOTAL` suffix. */
function parseContentRange (header: string): { start: number, end: number } {
  const match = /^\s*(?:bytes[ =])?\s*(\d{1,15})-(\d{1,15})(?:\/(?:\d+|\*))?\s*$/i.exec(header)
  const start = Number(match?.[1])
  const end = Number(match?.[2])
  if (match == null || end < start) {
    throw new RegistryError('UPLOAD_RANGE_INVALID', `invalid Content-Range ${JSON.stringify(header.slice(0, 60))}: expected START-END with END >= START, for example "0-1023"`)
  }
  return { start, end }
}

/**
 * Appends the request body to an upload, after checking its
 * `Content-Range` (when given) against the bytes already received and its
 * declared length against the size limit.
 */
async function appendBody (request: RegistryRequest, session: UploadSession): Promise<void> {
  const { req, signal, context } = request
  const declaredBytes = contentLengthOf(req)
  const header = req.headers['content-range']
  let expectedBytes: number | undefined

  if (header != null) {
    const range = parseContentRange(header)
    if (range.start !== session.sizeBytes) {
      throw new RegistryError('UPLOAD_RANGE_INVALID', `chunk starts at byte ${range.start}, but upload ${session.id} has ${session.sizeBytes} bytes: send the chunk that starts at ${session.sizeBytes}`, { Range: uploadRange(session) })
    }

    expectedBytes = range.end - range.start + 1
    if (declaredBytes != null && declaredBytes !== expectedBytes) {
      throw new RegistryError('SIZE_INVALID', `Content-Range ${header} covers ${expectedBytes} bytes, but Content-Length is ${declaredBytes}`)
    }
  }

  // An upload that outgrows the limit can never complete, so it is dropped
  // with its partial file instead of holding an upload slot until it expires.
  try {
    if (declaredBytes != null && session.sizeBytes + declaredBytes > context.limits.maxUploadBytes) {
      throw new RegistryError('BLOB_TOO_LARGE', `chunk of ${declaredBytes} bytes would grow upload ${session.id} past the limit of ${context.limits.maxUploadBytes} bytes; the upload is cancelled`)
    }
    await context.uploads.append(session, req, { signal, expectedBytes: expectedBytes ?? declaredBytes })
  } catch (err) {
    if (err instanceof RegistryError && err.errorName === 'BLOB_TOO_LARGE') {
      await context.uploads.cancel(session).catch(() => {})
    }
    throw err
  }
}

/** Stores a blob sent whole with `POST ...?digest=`, straight into the content store. */
async function uploadMonolithic (request: RegistryRequest, name: RepositoryName, digest: OciDigest): Promise<void> {
  const { req, signal, context } = request
  const maxBytes = context.limits.maxUploadBytes
  const declaredBytes = contentLengthOf(req)
  if (declaredBytes != null && declaredBytes > maxBytes) {
    throw new RegistryError('BLOB_TOO_LARGE', `blob of ${declaredBytes} bytes is larger than the limit of ${maxBytes} bytes`)
  }

  await context.backend.store.putStream(limitBody(req, maxBytes, 'BLOB_TOO_LARGE', 'blob'), digest, { signal, expectedSizeBytes: declaredBytes })
  blobCreated(request, name, digest)
}

/** Handlers of `/v2/<name>/blobs/uploads/`. */
export const uploadsHandlers: MethodHandlers<'uploads'> = {
  POST: async (request, resource) => {
    const { context, req, route, res } = request
    const name = resource.repository

    const mount = route.query.get('mount')
    if (mount != null) {
      const digest = parseDigest(mount, 'mount digest')
      const from = route.query.get('from')
      if (from != null && from !== '') {
        parseRepository(from)
      }

      // One content store serves every repository, so any local blob can be
      // mounted. A blob that is not local gets a normal upload, as the spec
      // requires, instead of a mesh lookup that would delay the push.
      if (await context.backend.store.has(digest)) {
        // Marked used so garbage collection keeps it until the manifest that mounts it arrives.
        await context.backend.store.touch(digest).catch(() => {})
        blobCreated(request, name, digest)
        return
      }
    }

    const digestParameter = route.query.get('digest')
    if (digestParameter != null) {
      await uploadMonolithic(request, name, parseDigest(digestParameter))
      return
    }

    const session = await context.uploads.create(name.repository)
    if (hasUnreadBody(req)) {
      await appendBody(request, session)
    }
    sendEmpty(res, 202, uploadHeaders(name, session))
  }
}

/** Handlers of `/v2/<name>/blobs/uploads/<id>`. */
export const uploadHandlers: MethodHandlers<'upload'> = {
  GET: async (request, resource) => {
    const session = request.context.uploads.get(resource.uploadId, resource.repository.repository)
    sendEmpty(request.res, 204, uploadHeaders(resource.repository, session))
  },

  PATCH: async (request, resource) => {
    const session = request.context.uploads.get(resource.uploadId, resource.repository.repository)
    await appendBody(request, session)
    sendEmpty(request.res, 202, uploadHeaders(resource.repository, session))
  },

  PUT: async (request, resource) => {
    const { context, req, route, signal } = request
    const session = context.uploads.get(resource.uploadId, resource.repository.repository)

    const digestParameter = route.query.get('digest')
    if (digestParameter == null) {
      throw new RegistryError('DIGEST_INVALID', `completing upload ${session.id} needs the blob digest: PUT ...?digest=sha256:<hex>`)
    }
    const digest = parseDigest(digestParameter)

    if (hasUnreadBody(req)) {
      await appendBody(request, session)
    }

    await context.uploads.complete(session, digest, { signal })
    blobCreated(request, resource.repository, digest)
  },

  DELETE: async (request, resource) => {
    const session = request.context.uploads.get(resource.uploadId, resource.repository.repository)
    await request.context.uploads.cancel(session)
    sendEmpty(request.res, 204)
  }
}
