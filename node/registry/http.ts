/** Small helpers over node:http for reading bounded request bodies and writing responses. */
import { RegistryError, type RegistryErrorName } from './errors.js'
import type { IncomingMessage, ServerResponse } from 'node:http'

/**
 * Returns the `Content-Length` of a request, or undefined when it has none
 * (a chunked body). Node.js already rejects a malformed value, so this only
 * has to read it.
 */
export function contentLengthOf (req: IncomingMessage): number | undefined {
  const value = req.headers['content-length']
  if (value == null) {
    return undefined
  }

  const length = Number(value)
  if (!Number.isSafeInteger(length) || length < 0) {
    throw new RegistryError('SIZE_INVALID', `invalid Content-Length ${JSON.stringify(value)}: expected a byte count`)
  }
  return length
}

/**
 * Returns true when the request carries a body that no handler has read.
 * Node may have parsed a small body completely before the handler runs, so
 * `req.complete` alone would report such a body as read.
 */
export function hasUnreadBody (req: IncomingMessage): boolean {
  return !req.readableEnded && declaresBody(req)
}

/**
 * Returns true while bytes of the request body may still arrive on the
 * connection. An error response then closes the connection, because the
 * next request would start in the middle of this body.
 */
export function bodyStillArriving (req: IncomingMessage): boolean {
  return !req.complete && declaresBody(req)
}

function declaresBody (req: IncomingMessage): boolean {
  const length = req.headers['content-length']
  return (length != null && length !== '0') || req.headers['transfer-encoding'] != null
}

/**
 * Yields the chunks of a request body and throws `tooLarge` as soon as the
 * total passes `maxBytes`, so an oversized body is never written out whole.
 */
export async function * limitBody (req: IncomingMessage, maxBytes: number, tooLarge: RegistryErrorName, what: string): AsyncGenerator<Uint8Array> {
  let receivedBytes = 0
  for await (const chunk of req) {
    const bytes = chunk as Buffer
    receivedBytes += bytes.byteLength
    if (receivedBytes > maxBytes) {
      throw new RegistryError(tooLarge, `${what} is larger than the limit of ${maxBytes} bytes`)
    }
    yield bytes
  }
}

/** Reads a whole request body into memory, refusing more than `maxBytes`. */
export async function readBody (req: IncomingMessage, maxBytes: number, tooLarge: RegistryErrorName, what: string): Promise<Buffer> {
  const declaredBytes = contentLengthOf(req)
  if (declaredBytes != null && declaredBytes > maxBytes) {
    throw new RegistryError(tooLarge, `${what} of ${declaredBytes} bytes is larger than the limit of ${maxBytes} bytes`)
  }

  const chunks: Buffer[] = []
  for await (const chunk of limitBody(req, maxBytes, tooLarge, what)) {
    chunks.push(chunk as Buffer)
  }
  return Buffer.concat(chunks)
}

/** Sends a JSON body with its length; a HEAD request gets the same headers and no body. */
export function sendJson (res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}, head = false): void {
  const body = Buffer.from(JSON.stringify(value))
  res.statusCode = status
  for (const [name, headerValue] of Object.entries(headers)) {
    res.setHeader(name, headerValue)
  }
  if (!res.hasHeader('Content-Type')) {
    res.setHeader('Content-Type', 'application/json')
  }
  res.setHeader('Content-Length', body.byteLength)
  res.end(head ? undefined : body)
}

/** Sends a response with no body, such as 201 Created or 202 Accepted. */
export function sendEmpty (res: ServerResponse, status: number, headers: Record<string, string> = {}): void {
  res.statusCode = status
  for (const [name, value] of Object.entries(headers)) {
    res.setHeader(name, value)
  }
  res.setHeader('Content-Length', 0)
  res.end()
}
