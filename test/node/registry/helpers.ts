/**
 * Test helpers for the registry API. The backend runs on a real BlobStore,
 * and its "mesh" is a second BlobStore plus a map of tags held by imaginary
 * peers. The server starts on a free loopback port, and the HTTP client can
 * send repeated headers and chunked bodies.
 */
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises'
import { request as httpRequest, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { digestOf, type OciDigest } from '../../../protocol/digest.js'
import { RegistryServer, type RegistryInit } from '../../../node/registry/server.js'
import { timeoutSignal } from '../../../node/net/signals.js'
import { BlobStore } from '../../../node/store/blob-store.js'
import type { FetchBlobOptions, FetchedBlob, RegistryBackend } from '../../../node/registry/backend.js'
import type { Descriptor } from '../../../node/image/manifest.js'
import type { AbortOptions } from '@libp2p/interface'

/** Root of the repository, four levels above dist/test/node/registry/. */
export const REPOSITORY_ROOT = fileURLToPath(new URL('../../../..', import.meta.url))

/** Folder of a test fixture image layout. */
export function fixturePath (name: string): string {
  return join(REPOSITORY_ROOT, 'test', 'fixtures', name)
}

/** A backend on real stores: `store` is the agent's, `meshStore` and `meshTags` stand for what peers hold. */
export class TestBackend implements RegistryBackend {
  readonly tags = new Map<string, Map<string, Descriptor>>()
  readonly meshTags = new Map<string, Map<string, Descriptor>>()
  readonly published: Array<{ repository: string, tag: string, descriptor: Descriptor }> = []
  readonly fetched: OciDigest[] = []
  /** Delay of every mesh lookup, to test the registry's timeouts. */
  meshDelayMs = 0
  /** When set, fetches return the bytes in memory and store them this many ms later. */
  memoryStoreDelayMs?: number
  /** Parent manifest given with each fetch, by digest. */
  readonly fetchParents = new Map<OciDigest, OciDigest | undefined>()

  constructor (readonly store: BlobStore, readonly meshStore?: BlobStore) {}

  private async meshWait (options?: AbortOptions): Promise<void> {
    if (this.meshDelayMs <= 0) {
      return
    }

    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(resolve, this.meshDelayMs)
      options?.signal?.addEventListener('abort', () => {
        clearTimeout(timer)
        reject(options.signal?.reason as Error)
      }, { once: true })
    })
  }

  async resolveTag (repository: string, tag: string, options?: AbortOptions): Promise<Descriptor | undefined> {
    const local = this.tags.get(repository)?.get(tag)
    if (local != null) {
      return local
    }

    await this.meshWait(options)
    return this.meshTags.get(repository)?.get(tag)
  }

  async fetchBlob (digest: OciDigest, options?: FetchBlobOptions): Promise<FetchedBlob | undefined> {
    // The simulated mesh sends nothing while it waits, so the start deadline applies to the whole wait.
    await this.meshWait({ signal: options?.startTimeoutMs == null ? options?.signal : timeoutSignal(options.startTimeoutMs, options.signal) })
    if (this.meshStore == null || !await this.meshStore.has(digest)) {
      return undefined
    }
    this.fetched.push(digest)
    this.fetchParents.set(digest, options?.parent)

    if (this.memoryStoreDelayMs == null) {
      const { stream } = await this.meshStore.readStream(digest)
      await this.store.putStream(stream, digest)
      return { stored: Promise.resolve(true) }
    }

    // Like the agent's fetch into memory: the bytes are returned at once and
    // reach the store only after the delay.
    const bytes = await this.meshStore.read(digest)
    const delayMs = this.memoryStoreDelayMs
    const stored = new Promise<void>(resolve => setTimeout(resolve, delayMs))
      .then(async () => this.store.put(bytes, digest))
      .then(() => true, () => false)
    return { bytes, stored }
  }

  async publishTag (repository: string, tag: string, descriptor: Descriptor): Promise<string | undefined> {
    this.setTag(repository, tag, descriptor)
    this.published.push({ repository, tag, descriptor })
    return undefined
  }

  async deleteTag (repository: string, tag: string): Promise<boolean> {
    return this.tags.get(repository)?.delete(tag) ?? false
  }

  async listRepositories (): Promise<string[]> {
    return [...this.tags.entries()].filter(([, tags]) => tags.size > 0).map(([repository]) => repository)
  }

  async listTags (repository: string): Promise<string[]> {
    return [...(this.tags.get(repository)?.keys() ?? [])]
  }

  setTag (repository: string, tag: string, descriptor: Descriptor, where: 'local' | 'mesh' = 'local'): void {
    const map = where === 'local' ? this.tags : this.meshTags
    const tags = map.get(repository) ?? new Map<string, Descriptor>()
    tags.set(tag, descriptor)
    map.set(repository, tags)
  }
}

/** One started registry on a temporary data directory. */
export interface RegistryFixture {
  dir: string
  backend: TestBackend
  server: RegistryServer
  port: number
  baseUrl: string
  stop: () => Promise<void>
}

/** Starts a registry on 127.0.0.1 with a fresh data directory and an empty mesh store. */
export async function startRegistry (init: Partial<RegistryInit> = {}): Promise<RegistryFixture> {
  const dir = await mkdtemp(join(tmpdir(), 'kilomesh-registry-'))
  const store = new BlobStore(dir)
  await store.init()
  const meshStore = new BlobStore(join(dir, 'mesh'))
  await meshStore.init()

  const backend = new TestBackend(store, meshStore)
  const server = new RegistryServer(backend, { host: '127.0.0.1', port: 0, uploadFolder: join(dir, 'uploads'), ...init })
  const { port } = await server.start()

  return {
    dir,
    backend,
    server,
    port,
    baseUrl: `http://127.0.0.1:${port}`,
    stop: async () => {
      await server.stop()
      await rm(dir, { recursive: true, force: true })
    }
  }
}

/** Copies every blob of a fixture layout into a store and returns the layout's tags as descriptors. */
export async function loadFixture (store: BlobStore, name: string): Promise<Map<string, Descriptor>> {
  const folder = fixturePath(name)
  for (const file of await readdir(join(folder, 'blobs', 'sha256'))) {
    await store.put(await readFile(join(folder, 'blobs', 'sha256', file)), `sha256:${file}`)
  }

  const index = JSON.parse(await readFile(join(folder, 'index.json'), 'utf8')) as { manifests: Array<Descriptor & { annotations: Record<string, string> }> }
  const tags = new Map<string, Descriptor>()
  for (const entry of index.manifests) {
    const tag = entry.annotations['org.opencontainers.image.ref.name']
    if (tag != null) {
      tags.set(tag, { mediaType: entry.mediaType, digest: entry.digest, size: entry.size })
    }
  }
  return tags
}

/** Reads one blob of a fixture layout. */
export async function fixtureBlob (name: string, digest: string): Promise<Buffer> {
  return readFile(join(fixturePath(name), 'blobs', 'sha256', digest.slice('sha256:'.length)))
}

/** A response as the tests read it. */
export interface TestResponse {
  status: number
  headers: IncomingHttpHeaders
  body: Buffer
  /** The first OCI error code of a JSON error body, when there is one. */
  code?: string
  json: <T = unknown>() => T
}

/** Sends one request; `chunks` sends the body with chunked transfer encoding, one write per chunk. */
export async function send (port: number, method: string, path: string, options: { headers?: OutgoingHttpHeaders, body?: Uint8Array, chunks?: Uint8Array[] } = {}): Promise<TestResponse> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, method, path, headers: options.headers, agent: false }, res => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('error', reject)
      res.on('end', () => {
        const body = Buffer.concat(chunks)
        let code: string | undefined
        if (String(res.headers['content-type']).startsWith('application/json') && body.byteLength > 0) {
          code = (JSON.parse(body.toString()) as { errors?: Array<{ code: string }> }).errors?.[0]?.code
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, code, json: <T>() => JSON.parse(body.toString()) as T })
      })
    })
    req.on('error', reject)

    if (options.chunks != null) {
      for (const chunk of options.chunks) {
        req.write(chunk)
      }
      req.end()
    } else {
      req.end(options.body)
    }
  })
}

/** Returns bytes with their digest, for upload tests. */
export function blobOf (text: string): { bytes: Buffer, digest: OciDigest } {
  const bytes = Buffer.from(text)
  return { bytes, digest: digestOf(bytes) }
}
