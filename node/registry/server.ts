/**
 * The OCI distribution API of a kilomesh agent, served with node:http (or
 * node:https with a certificate) over a {@link RegistryBackend}. Pulls of
 * tags and blobs that are not local go through the backend to the mesh.
 * Pushes store blobs in the content store and publish tags to the mesh.
 *
 * @example
 * ```ts
 * const server = new RegistryServer(backend, { host: '127.0.0.1', port: 5000, uploadFolder: join(dir, 'uploads') })
 * const { port } = await server.start()
 * // skopeo copy oci:./image:v1 docker://127.0.0.1:5000/demo/httpd:v1 --dest-tls-verify=false
 * await server.stop()
 * ```
 *
 * @see https://github.com/opencontainers/distribution-spec/blob/main/spec.md
 */
import { readFile } from 'node:fs/promises'
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import { logger } from '@libp2p/logger'
import { DEFAULT_FETCH_TIMEOUT_MS, DEFAULT_MAX_UPLOAD_BYTES, DEFAULT_MAX_UPLOADS, DEFAULT_RESOLVE_TIMEOUT_MS, DEFAULT_UPLOAD_TTL_MS } from './constants.js'
import { errorBody, RegistryError, RegistryStartError, sendError, toRegistryError } from './errors.js'
import { bodyStillArriving } from './http.js'
import { dispatch } from './dispatch.js'
import { Prefetcher } from './prefetch.js'
import { ReferrersIndex } from './referrers-index.js'
import { parseRoute } from './route.js'
import { UploadSessions } from './upload-sessions.js'
import { anySignal } from '../net/signals.js'
import type { RegistryBackend } from './backend.js'
import type { RegistryContext } from './context.js'
import type { AbortOptions } from '@libp2p/interface'
import type { AddressInfo, Socket } from 'node:net'

const log = logger('kilomesh:registry')

/** Settings of a registry server. */
export interface RegistryInit {
  /** Address to listen on; loopback keeps the API on this device. */
  host: string
  /** TCP port; 0 picks a free one, which `start` returns. */
  port: number
  /** PEM certificate and key files; without them the API is plain HTTP. */
  tls?: { certFile: string, keyFile: string }
  /** Folder for uploads in progress, inside the data directory (DIR/uploads) so they share its filesystem. */
  uploadFolder: string
  /** @default DEFAULT_MAX_UPLOAD_BYTES (256 MiB) */
  maxUploadBytes?: number
  /** Idle time after which an upload is dropped. @default DEFAULT_UPLOAD_TTL_MS (1 hour) */
  uploadTtlMs?: number
  /** Time to resolve a tag that is not local by asking peers. @default DEFAULT_RESOLVE_TIMEOUT_MS (5 s) */
  resolveTimeoutMs?: number
  /** Time to fetch a blob that is not local through the mesh. @default DEFAULT_FETCH_TIMEOUT_MS (60 s) */
  fetchTimeoutMs?: number
  /** Uploads in progress at once. @default DEFAULT_MAX_UPLOADS (64) */
  maxUploads?: number
}

/** Byte that starts every TLS record of type handshake, and so every ClientHello. */
const TLS_HANDSHAKE_BYTE = 0x16

export class RegistryServer {
  private readonly context: RegistryContext
  private server?: Server
  private shutdown?: AbortController
  private readonly sockets = new Set<Socket>()

  constructor (private readonly backend: RegistryBackend, private readonly init: RegistryInit) {
    this.context = {
      backend,
      uploads: new UploadSessions(backend.store, {
        folder: init.uploadFolder,
        maxUploadBytes: init.maxUploadBytes ?? DEFAULT_MAX_UPLOAD_BYTES,
        uploadTtlMs: init.uploadTtlMs ?? DEFAULT_UPLOAD_TTL_MS,
        maxUploads: init.maxUploads ?? DEFAULT_MAX_UPLOADS
      }),
      referrers: new ReferrersIndex(backend.store),
      prefetcher: new Prefetcher(backend, init.fetchTimeoutMs ?? DEFAULT_FETCH_TIMEOUT_MS, () => this.shutdown?.signal),
      limits: {
        maxUploadBytes: init.maxUploadBytes ?? DEFAULT_MAX_UPLOAD_BYTES,
        resolveTimeoutMs: init.resolveTimeoutMs ?? DEFAULT_RESOLVE_TIMEOUT_MS,
        fetchTimeoutMs: init.fetchTimeoutMs ?? DEFAULT_FETCH_TIMEOUT_MS
      }
    }
  }

  /** Background fetches in flight, for tests and status. */
  get prefetches (): number {
    return this.context.prefetcher.size
  }

  /** Uploads in progress, for tests and status. */
  get uploads (): UploadSessions {
    return this.context.uploads
  }

  /** Starts listening; returns the bound address. Calling it again returns the same address. */
  async start (options?: AbortOptions): Promise<{ host: string, port: number }> {
    if (this.server != null) {
      return this.address()
    }

    options?.signal?.throwIfAborted()
    const tls = this.init.tls == null ? undefined : await this.readTlsFiles(this.init.tls)
    await this.context.uploads.start()
    this.shutdown = new AbortController()

    const handler = (req: IncomingMessage, res: ServerResponse): void => { void this.handle(req, res) }
    const server = tls == null ? createHttpServer(handler) : createHttpsServer(tls, handler)

    server.on('connection', (socket: Socket) => {
      this.sockets.add(socket)
      socket.once('close', () => this.sockets.delete(socket))
    })
    server.on('clientError', (err: Error & { code?: string }, socket: Socket) => { this.rejectMalformed(err, socket) })

    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen(this.init.port, this.init.host, () => {
          server.off('error', reject)
          resolve()
        })
      })
    } catch (err: any) {
      await this.context.uploads.stop()
      this.shutdown.abort()
      const where = `${this.init.host}:${this.init.port}`
      if (err.code === 'EADDRINUSE') {
        throw new RegistryStartError(`registry address ${where} is already in use: stop the process that listens there, or choose another address with --registry HOST:PORT`)
      }
      throw new RegistryStartError(`registry could not listen on ${where}: ${err.message}`)
    }

    this.server = server
    const address = this.address()
    log('registry listening on %s://%s:%d', this.init.tls == null ? 'http' : 'https', address.host, address.port)
    return address
  }

  /** Stops listening, cuts open connections and drops uploads in progress. Safe to call more than once. */
  async stop (): Promise<void> {
    const server = this.server
    if (server == null) {
      return
    }

    this.server = undefined
    this.shutdown?.abort()
    await new Promise<void>(resolve => {
      server.close(() => { resolve() })
      for (const socket of this.sockets) {
        socket.destroy()
      }
    })
    await this.context.uploads.stop()
    log('registry stopped')
  }

  private async readTlsFiles (files: { certFile: string, keyFile: string }): Promise<{ cert: Buffer, key: Buffer }> {
    try {
      return { cert: await readFile(files.certFile), key: await readFile(files.keyFile) }
    } catch (err: any) {
      throw new RegistryStartError(`registry could not read its TLS certificate ${files.certFile} or key ${files.keyFile}: ${err.message}`)
    }
  }

  private address (): { host: string, port: number } {
    const address = this.server?.address() as AddressInfo | null | undefined
    if (address == null) {
      throw new Error('registry server is not listening')
    }
    return { host: address.address, port: address.port }
  }

  /**
   * Rejects a request that node:http could not parse. Clients such as skopeo
   * first try TLS on a plain-HTTP port, and their ClientHello fails to parse
   * at its first byte. They get a 400 and a closed connection at once, so
   * they fall back to plain HTTP.
   */
  private rejectMalformed (err: Error & { code?: string, rawPacket?: Buffer }, socket: Socket): void {
    // A response cut on purpose (a blob whose transfer failed after its
    // headers) ends here too, with the socket already destroyed.
    if (socket.destroyed && err.code?.startsWith('HPE_') !== true) {
      log.trace('connection closed with %s', err.code ?? err.message)
      return
    }

    const tls = err.rawPacket?.[0] === TLS_HANDSHAKE_BYTE
    log('rejected %s from %s - %s', tls ? 'a TLS handshake on the plain-HTTP port' : 'a malformed request', socket.remoteAddress, err.code ?? err.message)

    if (socket.writable && err.code !== 'ECONNRESET') {
      const error = err.code === 'HPE_HEADER_OVERFLOW'
        ? new RegistryError('HEADERS_TOO_LARGE', `request headers are larger than this server reads (${err.code}); send fewer or shorter headers`)
        : new RegistryError('MALFORMED_REQUEST', `malformed HTTP request (${err.code ?? err.message}); send HTTP/1.1 with a Host header${tls ? ', and plain HTTP: this port does not speak TLS' : ''}`)
      const body = errorBody(error)
      const reason = error.kind.status === 431 ? 'Request Header Fields Too Large' : 'Bad Request'
      socket.end(`HTTP/1.1 ${error.kind.status} ${reason}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${body.byteLength}\r\n\r\n${body.toString()}`)
    }
    socket.destroySoon()
  }

  private async handle (req: IncomingMessage, res: ServerResponse): Promise<void> {
    const startedMs = Date.now()
    const controller = new AbortController()
    const onClose = (): void => {
      if (!res.writableFinished) {
        controller.abort()
      }
    }
    res.once('close', onClose)
    const signal = anySignal([controller.signal, this.shutdown?.signal ?? controller.signal])

    try {
      const route = parseRoute(req.url ?? '/')
      await dispatch({ context: this.context, req, res, route, signal })
    } catch (err) {
      if (controller.signal.aborted) {
        // The client went away, so there is no one left to send an error to.
        log('%s %s ended when the client closed the connection - %e', req.method, req.url, err)
        res.destroy()
        return
      }

      const error = toRegistryError(err)
      if (error.kind.status >= 500 && !(err instanceof RegistryError)) {
        log.error('%s %s failed - %e', req.method, req.url, err)
      }
      sendError(res, error, { closeConnection: bodyStillArriving(req), head: req.method === 'HEAD' })
    }

    const chunked = req.headers['transfer-encoding'] != null ? ' (chunked body)' : ''
    log.trace('%s %s%s -> %d in %d ms', req.method, req.url, chunked, res.statusCode, Date.now() - startedMs)
  }
}
