/**
 * The HTTP floor: a plain Node `http` server on loopback that serves the blob
 * files of OCI image layouts, and a client that keeps one HTTP/1.1 connection
 * alive across requests. It does what any static file server does and nothing
 * kilomesh does (no verification, no store), so it is the least a transfer of
 * the same bytes over loopback can cost in Node.
 */
import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import { Agent, createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import type { AbortOptions } from '@libp2p/interface'

/** Time an idle keep-alive connection stays open; longer than any pause between rounds. */
const KEEP_ALIVE_TIMEOUT_MS = 60_000

const HEX_DIGEST = /^[0-9a-f]{64}$/

export interface BlobHttpServer {
  /** Base URL, such as http://127.0.0.1:34567. */
  url: string
  /** TCP connections accepted so far; a keep-alive client opens exactly one. */
  connectionCount: () => number
  close: () => Promise<void>
}

/** Serves `GET /blobs/sha256/HEX` from the first of `layouts` that contains the file. */
export async function startBlobHttpServer (layouts: string[]): Promise<BlobHttpServer> {
  let connections = 0
  const server: Server = createServer((req, res) => {
    void serveBlob(layouts, req, res)
  })
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS
  server.on('connection', () => { connections++ })

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => { resolve() })
  })
  const address = server.address()
  if (address == null || typeof address === 'string') {
    throw new Error(`HTTP floor server bound an unexpected address ${JSON.stringify(address)}`)
  }

  return {
    url: `http://127.0.0.1:${address.port}`,
    connectionCount: () => connections,
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>(resolve => { server.close(() => { resolve() }) })
    }
  }
}

async function serveBlob (layouts: string[], req: IncomingMessage, res: ServerResponse): Promise<void> {
  const hex = req.url?.startsWith('/blobs/sha256/') === true ? req.url.slice('/blobs/sha256/'.length) : ''
  if (req.method !== 'GET' || !HEX_DIGEST.test(hex)) {
    res.writeHead(404).end()
    return
  }

  for (const layout of layouts) {
    const path = join(layout, 'blobs', 'sha256', hex)
    const info = await stat(path).catch(() => undefined)
    if (info == null) {
      continue
    }

    res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': info.size })
    try {
      await pipeline(createReadStream(path), res)
    } catch {
      // The client went away mid-body; the socket is closed with it.
    }
    return
  }
  res.writeHead(404).end()
}

/** An HTTP/1.1 client that sends every request over one keep-alive connection. */
export class KeepAliveClient {
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 1 })

  constructor (private readonly baseUrl: string) {}

  /** Sends `GET path` and returns the response once its status is 200. */
  async get (path: string, options?: AbortOptions): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      const req = request(`${this.baseUrl}${path}`, { agent: this.agent, signal: options?.signal }, response => {
        if (response.statusCode !== 200) {
          response.resume()
          reject(new Error(`GET ${path} returned HTTP ${response.statusCode}`))
          return
        }
        resolve(response)
      })
      req.once('error', reject)
      req.end()
    })
  }

  /** Sends `GET path` and returns the whole body, checking it against Content-Length. */
  async getBytes (path: string, options?: AbortOptions): Promise<Buffer> {
    const response = await this.get(path, options)
    const chunks: Buffer[] = []
    for await (const chunk of response) {
      chunks.push(chunk as Buffer)
    }

    const body = Buffer.concat(chunks)
    const expected = Number(response.headers['content-length'])
    if (body.byteLength !== expected) {
      throw new Error(`GET ${path} returned ${body.byteLength} bytes, but Content-Length said ${expected}`)
    }
    return body
  }

  close (): void {
    this.agent.destroy()
  }
}
