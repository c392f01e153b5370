/**
 * The `Range` request header for blob downloads, single ranges only (RFC
 * 9110, section 14). A request for several ranges gets the whole blob, which
 * the RFC allows and which spares a multipart body that no OCI client asks for.
 */
import { RegistryError } from './errors.js'

/** An inclusive byte range inside a blob. */
export interface ByteRange {
  start: number
  end: number
}

/**
 * Parses `bytes=START-END`, `bytes=START-` or `bytes=-SUFFIX` against a blob
 * size. Returns undefined to serve the whole blob (no header, another unit,
 * several ranges) and throws RANGE_INVALID (416) when the range lies outside
 * the blob.
 */
export function parseRange (header: string | undefined, sizeBytes: number): ByteRange | undefined {
  if (header == null) {
    return undefined
  }

  const match = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header)
  if (match == null) {
    return undefined
  }

  const [, first = '', last = ''] = match
  const unsatisfiable = (): RegistryError => new RegistryError(
    'RANGE_INVALID',
    `range ${JSON.stringify(header.slice(0, 60))} lies outside the blob of ${sizeBytes} bytes`,
    { 'Content-Range': `bytes */${sizeBytes}` }
  )

  if (first === '' && last === '') {
    return undefined
  }

  if (first === '') {
    const suffixBytes = Number(last)
    if (suffixBytes === 0 || sizeBytes === 0) {
      throw unsatisfiable()
    }
    return { start: Math.max(0, sizeBytes - suffixBytes), end: sizeBytes - 1 }
  }

  const start = Number(first)
  if (last !== '' && Number(last) < start) {
    // RFC 9110 says to ignore a syntactically invalid range.
    return undefined
  }

  // The pattern allows digits only, so a start too large for a safe integer
  // is still a valid position, just beyond any blob.
  if (start >= sizeBytes) {
    throw unsatisfiable()
  }
  const end = last === '' ? sizeBytes - 1 : Math.min(Number(last), sizeBytes - 1)

  return { start, end }
}
