/** The agent's implementation of the registry API's backend: its store, catalog and mesh fetcher. */
import { resolve } from 'node:path'
import { logger } from '@libp2p/logger'
import { InvalidConfigError } from '../config/errors.js'
import { RegistryServer } from '../registry/server.js'
import { deleteTag, publishTag } from './publish.js'
import { resolveTag } from './pull.js'
import type { AgentContext } from './agent.js'
import type { OciDigest } from '../../protocol/digest.js'
import type { Descriptor } from '../image/manifest.js'
import type { RegistryBackend } from '../registry/backend.js'
import type { BlobStore } from '../store/blob-store.js'
import type { AbortOptions } from '@libp2p/interface'

const log = logger('kilomesh:registry')

export class AgentRegistryBackend implements RegistryBackend {
  constructor (private readonly context: AgentContext) {}

  get store (): BlobStore {
    return this.context.store
  }

  async resolveTag (repository: string, tag: string, options?: AbortOptions): Promise<Descriptor | undefined> {
    return (await resolveTag(this.context, repository, tag, options))?.descriptor
  }

  async fetchBlob (digest: OciDigest, options: AbortOptions & { sizeBytes?: number } = {}): Promise<boolean> {
    try {
      await this.context.fetcher.fetch(digest, options)
      return true
    } catch (err: any) {
      if (options.signal?.aborted === true) {
        return false
      }
      log('could not fetch %s for a registry client: %e', digest, err)
      return false
    }
  }

  async publishTag (repository: string, tag: string, descriptor: Descriptor, options?: AbortOptions): Promise<void> {
    await publishTag(this.context, repository, tag, descriptor, options)
  }

  async deleteTag (repository: string, tag: string, options?: AbortOptions): Promise<boolean> {
    return deleteTag(this.context, repository, tag, options)
  }

  async listRepositories (): Promise<string[]> {
    const names = new Set<string>()
    for (const { record } of this.context.catalog.list()) {
      if (!record.deleted) {
        names.add(record.repository)
      }
    }
    return [...names].sort()
  }

  async listTags (repository: string): Promise<string[]> {
    return this.context.catalog.list()
      .filter(({ record }) => record.repository === repository && !record.deleted)
      .map(({ record }) => record.tag)
      .sort()
  }
}

/** Starts the registry API on `host:port` and returns the bound address. */
export async function startRegistry (context: AgentContext, address: { host: string, port: number }): Promise<{ address: string, stop: () => Promise<void> }> {
  const tls = parseRegistryTls(context.config.registryTls, context.dir)
  const server = new RegistryServer(new AgentRegistryBackend(context), {
    host: address.host,
    port: address.port,
    uploadFolder: context.paths.uploads,
    tls
  })
  const bound = await server.start()
  const host = bound.host.includes(':') ? `[${bound.host}]` : bound.host
  log('registry API listening on %s://%s:%d', tls == null ? 'http' : 'https', host, bound.port)
  return { address: `${host}:${bound.port}`, stop: async () => { await server.stop() } }
}

/**
 * Reads config.json's optional `registryTls: { "certFile": PATH, "keyFile": PATH }`
 * (PEM files; relative paths are taken from the data directory).
 */
export function parseRegistryTls (value: unknown, dir: string): { certFile: string, keyFile: string } | undefined {
  if (value == null) {
    return undefined
  }

  const section = value as Record<string, unknown>
  if (typeof value !== 'object' || typeof section.certFile !== 'string' || typeof section.keyFile !== 'string') {
    throw new InvalidConfigError(`"registryTls" in config.json must be { "certFile": "PATH", "keyFile": "PATH" } naming PEM files, got ${JSON.stringify(value)}`)
  }
  return { certFile: resolve(dir, section.certFile), keyFile: resolve(dir, section.keyFile) }
}
