/** The control API route type, and helpers for its handlers. */
import type { Agent } from '../agent/agent.js'
import type { IncomingMessage, ServerResponse } from 'node:http'

/** A request error with the HTTP status to respond with. */
export class RequestError extends Error {
  constructor (readonly status: number, message: string, readonly errorName = 'BadRequestError') {
    super(message)
  }
}

export interface RouteRequest {
  agent: Agent
  /** Parsed JSON body of a POST, or an empty object. */
  body: Record<string, unknown>
  query: URLSearchParams
  request: IncomingMessage
  response: ServerResponse
}

/**
 * One control endpoint. `handle` returns the JSON value to send with status
 * 200, or undefined when it wrote the response itself (streaming responses).
 */
export interface ControlRoute {
  method: 'GET' | 'POST'
  /** Path below the version prefix, such as "/status". */
  path: string
  handle: (request: RouteRequest) => Promise<unknown>
}

/** Returns a required non-empty string field of a request body. */
export function requireString (body: Record<string, unknown>, field: string): string {
  const value = body[field]
  if (typeof value !== 'string' || value === '') {
    throw new RequestError(400, `missing or invalid field "${field}": expected a non-empty string`)
  }
  return value
}

/** Returns an optional string field of a request body. */
export function optionalString (body: Record<string, unknown>, field: string): string | undefined {
  const value = body[field]
  if (value == null) {
    return undefined
  }
  if (typeof value !== 'string') {
    throw new RequestError(400, `invalid field "${field}": expected a string`)
  }
  return value
}

/** Returns an optional boolean field of a request body. */
export function optionalBoolean (body: Record<string, unknown>, field: string): boolean | undefined {
  const value = body[field]
  if (value == null) {
    return undefined
  }
  if (typeof value !== 'boolean') {
    throw new RequestError(400, `invalid field "${field}": expected true or false`)
  }
  return value
}
