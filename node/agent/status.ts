/** Read-only views of the agent for `kilomesh status`, `peers` and `images`. */
import { formatHlc } from '../../protocol/hlc.js'
import type { AgentContext } from './agent.js'

export interface StatusView {
  peerId: string
  multiaddrs: string[]
  registry: string | null
  dataDir: string
  connectedPeers: number
  tags: number
  blobs: number
  storedBytes: number
  /** Storage quota that garbage collection keeps the store under, in bytes; null when there is none. */
  maxStorageBytes: number | null
  uptimeMs: number
  fetchedBlobs: number
  fetchedBytes: number
  servedBlobs: number
  servedBytes: number
  penalisedPeers: string[]
  pid: number
}

export interface PeerView {
  peerId: string
  addresses: string[]
  direction: string
  /** Round-trip time measured by libp2p's connection monitor, when known. */
  rttMs?: number
  openedAt: string
}

export interface ImageView {
  repository: string
  tag: string
  digest: string
  mediaType: string
  sizeBytes: number
  publisher: string
  hlc: string
  /** True when the manifest is in the local store. */
  local: boolean
}

export async function statusView (context: AgentContext, registry: string | null): Promise<StatusView> {
  const blobs = await context.store.list()
  return {
    peerId: context.peerId,
    multiaddrs: context.node.getMultiaddrs().map(address => address.toString()),
    registry,
    dataDir: context.dir,
    connectedPeers: context.node.getPeers().length,
    tags: context.catalog.list().filter(signed => !signed.record.deleted).length,
    blobs: blobs.length,
    storedBytes: blobs.reduce((sum, blob) => sum + blob.sizeBytes, 0),
    maxStorageBytes: context.subscriptions.gc.maxStorageBytes ?? null,
    uptimeMs: Date.now() - context.startedAtMs,
    fetchedBlobs: context.fetcher.stats.fetchedBlobs,
    fetchedBytes: context.fetcher.stats.receivedBytes,
    servedBlobs: context.blobServer.stats.servedBlobs,
    servedBytes: context.blobServer.stats.sentBytes,
    penalisedPeers: context.penalties.list(),
    pid: process.pid
  }
}

export function peersView (context: AgentContext): PeerView[] {
  const byPeer = new Map<string, PeerView>()
  for (const connection of context.node.getConnections()) {
    const peerId = connection.remotePeer.toString()
    const view = byPeer.get(peerId) ?? {
      peerId,
      addresses: [],
      direction: connection.direction,
      rttMs: connection.rtt,
      openedAt: new Date(connection.timeline.open).toISOString()
    }
    view.addresses.push(connection.remoteAddr.toString())
    byPeer.set(peerId, view)
  }
  return [...byPeer.values()].sort((a, b) => a.peerId.localeCompare(b.peerId))
}

export async function imagesView (context: AgentContext): Promise<ImageView[]> {
  const views: ImageView[] = []
  for (const { record } of context.catalog.list()) {
    if (record.deleted || record.digest == null) {
      continue
    }
    views.push({
      repository: record.repository,
      tag: record.tag,
      digest: record.digest,
      mediaType: record.mediaType,
      sizeBytes: record.sizeBytes,
      publisher: record.publisher,
      hlc: formatHlc(record.hlc),
      local: await context.store.has(record.digest)
    })
  }
  return views.sort((a, b) => `${a.repository}:${a.tag}`.localeCompare(`${b.repository}:${b.tag}`))
}
