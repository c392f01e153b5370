/** The agent side of the control API: an HTTP server on the data directory's Unix socket. */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { rm } from 'node:fs/promises'
import { logger } from '@libp2p/logger'
import { multiaddr } from '@multiformats/multiaddr'
import { parseBootstrapAddress } from '../config/config.js'
import { publishImage } from '../agent/publish.js'
import { pullImage } from '../agent/pull.js'
import { imagesView, peersView, statusView } from '../agent/status.js'
import { parsePlatform } from '../image/platform.js'
import { CONTROL_PREFIX, MAX_CONTROL_BODY_BYTES, type ConnectRequest, type PublishRequest, type PullEvent, type PullRequest } from './protocol.js'
import type { Agent } from '../agent/agent.js'

const log = logger('kilomesh:control')

/** Longest Unix socket path Linux accepts (sun_path is 108 bytes including the NUL). */
const MAX_SOCKET_PATH_BYTES = 107

/** Default and largest pull time limit, in seconds. */
const DEFAULT_PULL_TIMEOUT_SECONDS = 300
const MAX_PULL_TIMEOUT_SECONDS = 24 * 3600

class RequestError extends Error {
  constructor (readonly status: number, message: string, readonly errorName = 'BadRequestError') {
    super(message)
  }
}

/** HTTP status for each named error the agent raises. */
const STATUS_BY_ERROR: Record<string, number> = {
  InvalidReferenceError: 400,
  InvalidDigestError: 400,
  InvalidConfigError: 400,
  InvalidManifestError: 400,
  InvalidImageSourceError: 400,
  TagNotFoundError: 404,
  NoSourceError: 404,
  BlobNotFoundError: 404,
  PullTimeoutError: 504
}

export class ControlServer {
  private server?: Server

  constructor (private readonly agent: Agent) {}

  async start (): Promise<void> {
    const socket = this.agent.context.paths.controlSocket
    if (Buffer.byteLength(socket) > MAX_SOCKET_PATH_BYTES) {
      throw new Error(`control socket path ${socket} is longer than the ${MAX_SOCKET_PATH_BYTES} bytes Linux allows; use a shorter --dir`)
    }

    // A socket file left by a crashed agent would make listen fail with EADDRINUSE.
    await rm(socket, { force: true })
    const server = createServer((request, response) => { void this.route(request, response) })
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

  private async route (request: IncomingMessage, response: ServerResponse): Promise<void> {
    const path = (request.url ?? '').split('?')[0] ?? ''
    const context = this.agent.context
    try {
      const route = `${request.method ?? 'GET'} ${path}`
      switch (route) {
        case `GET ${CONTROL_PREFIX}/status`:
          sendJson(response, 200, await statusView(context, this.agent.registryAddress))
          return
        case `GET ${CONTROL_PREFIX}/peers`:
          sendJson(response, 200, peersView(context))
          return
        case `GET ${CONTROL_PREFIX}/images`:
          sendJson(response, 200, await imagesView(context))
          return
        case `POST ${CONTROL_PREFIX}/publish`: {
          const body = await readJson<PublishRequest>(request)
          requireString(body.reference, 'reference')
          requireString(body.from, 'from')
          sendJson(response, 200, await publishImage(context, body.reference, body.from))
          return
        }
        case `POST ${CONTROL_PREFIX}/pull`:
          await this.pull(await readJson<PullRequest>(request), response)
          return
        case `POST ${CONTROL_PREFIX}/connect`: {
          const body = await readJson<ConnectRequest>(request)
          const address = parseBootstrapAddress(body.multiaddr, 'peer address')
          await context.node.dial(multiaddr(address), { signal: AbortSignal.timeout(10_000) })
          context.connectivity.keep(address)
          sendJson(response, 200, { connected: address })
          return
        }
        default:
          throw new RequestError(404, `no control endpoint ${route}; the CLI and the agent may be different versions`, 'NotFoundError')
      }
    } catch (err: any) {
      const status = err instanceof RequestError ? err.status : (STATUS_BY_ERROR[err.name] ?? 500)
      if (status >= 500) {
        log.error('control request %s %s failed: %e', request.method, path, err)
      }
      if (!response.headersSent) {
        sendJson(response, status, { error: { name: err.name ?? 'Error', message: err.message ?? String(err) } })
      } else {
        response.end()
      }
    }
  }

  /** Streams progress lines while pulling, then one result or error line. */
  private async pull (body: Partial<PullRequest>, response: ServerResponse): Promise<void> {
    requireString(body.reference, 'reference')
    const timeoutSeconds = body.timeoutSeconds ?? DEFAULT_PULL_TIMEOUT_SECONDS
    if (typeof timeoutSeconds !== 'number' || !(timeoutSeconds > 0) || timeoutSeconds > MAX_PULL_TIMEOUT_SECONDS) {
      throw new RequestError(400, `invalid timeout ${JSON.stringify(timeoutSeconds)}: give a number of seconds above 0 and at most ${MAX_PULL_TIMEOUT_SECONDS}`)
    }
    const platform = body.platform == null ? undefined : parsePlatform(body.platform)

    response.writeHead(200, { 'content-type': 'application/x-ndjson' })
    const write = (event: PullEvent): void => { response.write(`${JSON.stringify(event)}\n`) }
    let lastProgressMs = 0

    try {
      const result = await pullImage(this.agent.context, body.reference, {
        to: body.to,
        platform,
        signal: AbortSignal.timeout(timeoutSeconds * 1000),
        onProgress: progress => {
          // At most ten progress lines a second, plus the last one of each blob.
          const now = Date.now()
          if (now - lastProgressMs >= 100 || progress.receivedBytes === progress.totalBytes) {
            lastProgressMs = now
            write({ type: 'progress', ...progress })
          }
        }
      })
      write({ type: 'result', result })
    } catch (err: any) {
      log('pull of %s failed: %e', body.reference, err)
      write({ type: 'error', error: { name: err.name ?? 'Error', message: err.message ?? String(err) } })
    }
    response.end()
  }
}

function sendJson (response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body)
  response.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
  response.end(text)
}

function requireString (value: unknown, field: string): asserts value is string {
  if (typeof value !== 'string' || value === '') {
    throw new RequestError(400, `missing or invalid field "${field}": expected a non-empty string`)
  }
}

async function readJson<T> (request: IncomingMessage): Promise<Partial<T>> {
  const chunks: Buffer[] = []
  let length = 0
  for await (const chunk of request) {
    length += (chunk as Buffer).byteLength
    if (length > MAX_CONTROL_BODY_BYTES) {
      throw new RequestError(413, `control request body is larger than ${MAX_CONTROL_BODY_BYTES} bytes`)
    }
    chunks.push(chunk as Buffer)
  }

  try {
    const value: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'))
    if (value == null || typeof value !== 'object') {
      throw new Error('not an object')
    }
    return value
  } catch (err: any) {
    throw new RequestError(400, `control request body is not a JSON object: ${err.message}`)
  }
}
