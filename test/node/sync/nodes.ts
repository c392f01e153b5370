/**
 * Test helpers: real libp2p nodes over @libp2p/memory with noise, yamux and
 * the catalog sync service, each with its own catalog on a LevelDatastore.
 */
import { randomBytes } from 'node:crypto'
import { memory } from '@libp2p/memory'
import { noise } from '@libp2p/noise'
import { yamux } from '@libp2p/yamux'
import { createLibp2p, type Libp2p } from 'libp2p'
import { TrustPolicy, type TrustConfig } from '../../../node/catalog/trust.js'
import { catalogSync, type CatalogSync, type CatalogSyncInit } from '../../../node/sync/catalog-sync.js'
import { openCatalog, type TestCatalog } from '../catalog/records.js'
import type { CatalogInit } from '../../../node/catalog/catalog.js'
import type { SessionResult } from '../../../node/sync/session.js'

export interface SyncNode {
  node: Libp2p<{ sync: CatalogSync }>
  store: TestCatalog
  /** Stops the node and deletes its catalog. */
  destroy: () => Promise<void>
}

export async function createSyncNode (options: { sync?: Partial<Omit<CatalogSyncInit, 'catalog'>>, catalog?: CatalogInit, trust?: TrustConfig } = {}): Promise<SyncNode> {
  const store = await openCatalog({ trust: new TrustPolicy({ config: options.trust ?? { mode: 'any' } }), ...options.catalog })
  const node = await createLibp2p({
    addresses: { listen: [`/memory/kilomesh-sync-${randomBytes(6).toString('hex')}`] },
    transports: [memory()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { sync: catalogSync({ catalog: store.catalog, intervalMs: 0, ...options.sync }) }
  })

  return {
    node,
    store,
    destroy: async () => {
      await node.stop()
      await store.destroy()
    }
  }
}

/** Resolves with the next session result of `node`, or rejects after `timeoutMs`. */
export async function nextSession (node: SyncNode, timeoutMs = 10_000): Promise<SessionResult> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { unsubscribe(); reject(new Error(`no sync session ended within ${timeoutMs} ms`)) }, timeoutMs)
    const unsubscribe = node.node.services.sync.onSession(result => {
      clearTimeout(timer)
      unsubscribe()
      resolve(result)
    })
  })
}
