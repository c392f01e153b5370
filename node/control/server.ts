/** The agent side of the control API: an HTTP server on the data directory's Unix socket. */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { rm } from 'node:fs/promises'
import { logger } from '@libp2p/logger'
import { CONTROL_PREFIX, MAX_CONTROL_BODY_BYTES } from './protocol.js'
import { RequestError, type ControlRoute } from './route.js'
import { CONTROL_ROUTES } from './routes/index.js'
import type { Agent } from '../agent/agent.js'

const log = logger('kilomesh:control')

/** Longest Unix socket path Linux accepts (sun_path is 108 bytes including the NUL). */
const MAX_SOCKET_PATH_BYTES = 107

/** HTTP status for each named error the agent raises; anything else is a 500. */
const STATUS_BY_ERROR: Record<string, number> = {
  InvalidReferenceError: 400,
  InvalidDigestError: 400,
  InvalidConfigError: 400,
  InvalidManifestError: 400,
  InvalidImageSourceError: 400,
  InvalidPlatformError: 400,
  AmbiguousImageError: 400,
  UnsafeArchiveEntryError: 400,
  InvalidExportDestinationError: 400,
  NoMatchingPlatformError: 404,
  TagNotFoundError: 404,
  NoSourceError: 404,
  BlobNotFoundError: 404,
  PullTimeoutError: 504,
  // The agent works, but the peer it dialled is on another private network.
  SwarmKeyMismatchError: 502,
  DialFailedError: 502,
  NoPreviousVersionError: 409
}

export class ControlServer {
  private server?: Server
  private readonly routes = new Map<string, ControlRoute>()

  constructor (private readonly agent: Agent, routes: ControlRoute[] = CONTROL_ROUTES) {
    for (const route of routes) {
      this.routes.set(`${route.method} ${CONTROL_PREFIX}${route.path}`, route)
    }
  }

  async start (): Promise<void> {
    const socket = this.agent.context.paths.controlSocket
    if (Buffer.byteLength(socket) > MAX_SOCKET_PATH_BYTES) {
      throw new Error(`control socket path ${socket} is longer than the ${MAX_SOCKET_PATH_BYTES} bytes Linux allows; use a shorter --dir`)
    }

    // A socket file left by a crashed agent would make listen fail with EADDRINUSE.
    await rm(socket, { force: true })
    const server = createServer((request, response) => { void this.dispatch(request, response) })
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(socket, () => { server.off('error', reject); resolve() })
    })
    this.server = server
  }

  async stop (): Promise<void> {
    const server = this.server
    if (server == null) {
      return
    }
    this.server = undefined
    server.closeAllConnections()
    await new Promise<void>(resolve => { server.close(() => { resolve() }) })
    await rm(this.agent.context.paths.controlSocket, { force: true })
  }

  private async dispatch (request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://control')
    const key = `${request.method ?? 'GET'} ${url.pathname}`

    try {
      const route = this.routes.get(key)
      if (route == null) {
        throw new RequestError(404, `no control endpoint ${key}; the CLI and the agent may be different versions`, 'NotFoundError')
      }

      const body = route.method === 'POST' ? await readJson(request) : {}
      const result = await route.handle({ agent: this.agent, body, query: url.searchParams, request, response })
      if (result !== undefined) {
        sendJson(response, 200, result)
      }
    } catch (err: any) {
      const status = err instanceof RequestError ? err.status : (STATUS_BY_ERROR[err.name] ?? 500)
      if (status >= 500) {
        log.error('control request %s failed: %e', key, err)
      }
      if (!response.headersSent) {
        sendJson(response, status, { error: { name: err.name ?? 'Error', message: err.message ?? String(err) } })
      } else {
        response.end()
      }
    }
  }
}

function sendJson (response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body)
  response.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
  response.end(text)
}

async function readJson (request: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = []
  let length = 0
  for await (const chunk of request) {
    length += (chunk as Buffer).byteLength
    if (length > MAX_CONTROL_BODY_BYTES) {
      throw new RequestError(413, `control request body is larger than ${MAX_CONTROL_BODY_BYTES} bytes`)
    }
    chunks.push(chunk as Buffer)
  }

  if (length === 0) {
    return {}
  }

  try {
    const value: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'))
    if (value == null || typeof value !== 'object' || Array.isArray(value)) {
      throw new Error('not an object')
    }
    return value as Record<string, unknown>
  } catch (err: any) {
    throw new RequestError(400, `control request body is not a JSON object: ${err.message}`)
  }
}
