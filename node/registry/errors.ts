/**
 * Errors of the registry API: one table of every failure the API reports,
 * each with its OCI error code, HTTP status and default message, and the
 * single place that renders them as the OCI JSON error body.
 *
 * @see https://github.com/opencontainers/distribution-spec/blob/main/spec.md#error-codes
 */
import { DigestMismatchError, InvalidDigestError, InvalidReferenceError } from '../../protocol/errors.js'
import { BlobNotFoundError, BlobTooLargeError, CorruptBlobError } from '../store/errors.js'
import type { ServerResponse } from 'node:http'

/** One row of the error table. */
export interface RegistryErrorKind {
  /** OCI error code sent in the body; clients branch on it. */
  code: string
  status: number
  /** Message sent when the failure has no more specific one. */
  message: string
}

/**
 * Every failure of the registry API. The codes are the OCI distribution
 * spec's, plus RANGE_INVALID, PAGINATION_NUMBER_INVALID, TAG_INVALID,
 * UNAVAILABLE and UNKNOWN as the reference registry (distribution) sends them.
 */
export const REGISTRY_ERRORS = {
  BLOB_UNKNOWN: { code: 'BLOB_UNKNOWN', status: 404, message: 'blob unknown to registry' },
  BLOB_UPLOAD_INVALID: { code: 'BLOB_UPLOAD_INVALID', status: 400, message: 'blob upload invalid' },
  BLOB_UPLOAD_BUSY: { code: 'BLOB_UPLOAD_INVALID', status: 409, message: 'another request is writing to this upload' },
  BLOB_UPLOAD_UNKNOWN: { code: 'BLOB_UPLOAD_UNKNOWN', status: 404, message: 'blob upload unknown to registry' },
  UPLOAD_RANGE_INVALID: { code: 'BLOB_UPLOAD_INVALID', status: 416, message: 'chunk does not start at the end of the upload' },
  BLOB_TOO_LARGE: { code: 'SIZE_INVALID', status: 413, message: 'blob is larger than this registry accepts' },
  DIGEST_INVALID: { code: 'DIGEST_INVALID', status: 400, message: 'provided digest did not match uploaded content' },
  SIZE_INVALID: { code: 'SIZE_INVALID', status: 400, message: 'provided length did not match content length' },
  MANIFEST_BLOB_UNKNOWN: { code: 'MANIFEST_BLOB_UNKNOWN', status: 400, message: 'manifest references a blob unknown to registry' },
  MANIFEST_INVALID: { code: 'MANIFEST_INVALID', status: 400, message: 'manifest invalid' },
  MANIFEST_TOO_LARGE: { code: 'SIZE_INVALID', status: 413, message: 'manifest is larger than this registry accepts' },
  MANIFEST_UNKNOWN: { code: 'MANIFEST_UNKNOWN', status: 404, message: 'manifest unknown to registry' },
  NAME_INVALID: { code: 'NAME_INVALID', status: 400, message: 'invalid repository name' },
  NAME_UNKNOWN: { code: 'NAME_UNKNOWN', status: 404, message: 'repository name not known to registry' },
  TAG_INVALID: { code: 'TAG_INVALID', status: 400, message: 'invalid tag' },
  RANGE_INVALID: { code: 'RANGE_INVALID', status: 416, message: 'requested range not satisfiable' },
  PAGINATION_NUMBER_INVALID: { code: 'PAGINATION_NUMBER_INVALID', status: 400, message: 'invalid number of results requested' },
  ROUTE_UNKNOWN: { code: 'UNSUPPORTED', status: 404, message: 'unknown path in the OCI distribution API' },
  URL_TOO_LONG: { code: 'UNSUPPORTED', status: 414, message: 'request URL is too long' },
  MALFORMED_REQUEST: { code: 'UNSUPPORTED', status: 400, message: 'malformed HTTP request' },
  HEADERS_TOO_LARGE: { code: 'UNSUPPORTED', status: 431, message: 'request headers are too large' },
  METHOD_NOT_ALLOWED: { code: 'UNSUPPORTED', status: 405, message: 'method not allowed on this path' },
  TOO_MANY_UPLOADS: { code: 'TOOMANYREQUESTS', status: 429, message: 'too many uploads in progress' },
  UNAVAILABLE: { code: 'UNAVAILABLE', status: 503, message: 'registry is shutting down or the request was cancelled' },
  UNKNOWN: { code: 'UNKNOWN', status: 500, message: 'internal error' }
} as const satisfies Record<string, RegistryErrorKind>

/** Name of a row in {@link REGISTRY_ERRORS}. */
export type RegistryErrorName = keyof typeof REGISTRY_ERRORS

/** A failure to report to the client as an OCI error. */
export class RegistryError extends Error {
  static override readonly name = 'RegistryError'
  override readonly name = 'RegistryError'
  readonly kind: RegistryErrorKind

  constructor (
    readonly errorName: RegistryErrorName,
    message?: string,
    /** Extra headers for the error response, such as `Allow` or `Content-Range`. */
    readonly headers: Record<string, string> = {}
  ) {
    const kind = REGISTRY_ERRORS[errorName]
    super(message ?? kind.message)
    this.kind = kind
  }
}

/** The registry server could not start: its address is taken, or its TLS files are unreadable. */
export class RegistryStartError extends Error {
  static override readonly name = 'RegistryStartError'
  override readonly name = 'RegistryStartError'
}

/** A blob that was being sent to a client as it arrived from a peer stopped arriving, or did not match its digest. */
export class BlobTransferError extends Error {
  static override readonly name = 'BlobTransferError'
  override readonly name = 'BlobTransferError'
}

/**
 * Maps an error thrown by the store or the protocol helpers to its OCI
 * error. Anything unexpected becomes UNKNOWN, which the caller logs.
 */
export function toRegistryError (err: unknown): RegistryError {
  if (err instanceof RegistryError) {
    return err
  }

  const message = err instanceof Error ? err.message : String(err)
  const name = err instanceof Error ? err.name : ''

  switch (name) {
    case InvalidDigestError.name:
    case DigestMismatchError.name:
      return new RegistryError('DIGEST_INVALID', message)
    case InvalidReferenceError.name:
      return new RegistryError('NAME_INVALID', message)
    case BlobTooLargeError.name:
      return new RegistryError('BLOB_TOO_LARGE', message)
    case BlobNotFoundError.name:
    case CorruptBlobError.name:
      return new RegistryError('BLOB_UNKNOWN', message)
    case 'AbortError':
      return new RegistryError('UNAVAILABLE', message)
    default:
      return new RegistryError('UNKNOWN', message)
  }
}

/** Renders the OCI JSON error body of `error`. */
export function errorBody (error: RegistryError): Buffer {
  return Buffer.from(JSON.stringify({
    errors: [{ code: error.kind.code, message: error.message }]
  }))
}

/**
 * Sends an OCI JSON error body. When the headers already left (a failure in
 * the middle of a body), the only honest signal left is to cut the
 * connection, so the client sees a short read instead of a truncated blob
 * that looks complete.
 */
export function sendError (res: ServerResponse, error: RegistryError, options: { closeConnection?: boolean, head?: boolean } = {}): void {
  if (res.headersSent) {
    res.destroy()
    return
  }

  const body = errorBody(error)
  res.statusCode = error.kind.status
  for (const [name, value] of Object.entries(error.headers)) {
    res.setHeader(name, value)
  }
  res.setHeader('Content-Type', 'application/json')
  res.setHeader('Content-Length', body.byteLength)

  // An unread request body would otherwise be read to its end before the
  // next request, which for an oversized upload is the very thing refused.
  if (options.closeConnection === true) {
    res.setHeader('Connection', 'close')
  }

  res.end(options.head === true ? undefined : body)
}
