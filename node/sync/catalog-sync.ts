/**
 * The libp2p service that keeps catalogs converged: it serves
 * `/kilomesh/sync/1.0.0` streams, starts a session on every new outbound
 * connection and, every `intervalMs`, with one random connected peer.
 */
import { SYNC_PROTOCOL } from '../../protocol/sync.js'
import { CONNECT_SYNC_ATTEMPTS, CONNECT_SYNC_RETRY_MS, DEFAULT_SYNC_INTERVAL_MS, MAX_CONCURRENT_SESSIONS, MAX_INBOUND_STREAMS_PER_CONNECTION, SYNC_SESSION_TIMEOUT_MS } from './constants.js'
import { SyncBusyError } from './errors.js'
import { runSession, type SessionResult, type SyncRole } from './session.js'
import { SyncIndex } from './sync-index.js'
import { anySignal } from '../net/signals.js'
import type { Catalog } from '../catalog/catalog.js'
import type { AbortOptions, ComponentLogger, Connection, Libp2p, Logger, PeerId, Startable, Stream } from '@libp2p/interface'
import type { ConnectionManager, Registrar } from '@libp2p/interface-internal'

/** The event target of a libp2p node, as its components receive it. */
export type Libp2pEventTarget = Pick<Libp2p, 'addEventListener' | 'removeEventListener'>

export interface CatalogSyncComponents {
  registrar: Registrar
  connectionManager: ConnectionManager
  events: Libp2pEventTarget
  logger: ComponentLogger
}

export interface CatalogSyncInit {
  catalog: Catalog
  /** Interval between syncs with a random connected peer, in ms; 0 turns periodic sync off. @default 30000 */
  intervalMs?: number
  /** Whether a new outbound connection starts a session. @default true */
  syncOnConnect?: boolean
  /** Maximum duration of a session, in ms. @default 60000 */
  sessionTimeoutMs?: number
  /** Maximum number of sessions running at once. @default 8 */
  maxConcurrentSessions?: number
  /** Nodes with at most this many items are listed instead of split. @default SYNC_LIST_THRESHOLD */
  listThreshold?: number
}

/** Running totals over all sessions since start. */
export interface CatalogSyncStats {
  sessions: number
  failedSessions: number
  bytesSent: number
  bytesReceived: number
  recordsSent: number
  recordsReceived: number
}

export class CatalogSync implements Startable {
  private readonly components: CatalogSyncComponents
  private readonly catalog: Catalog
  private readonly log: Logger
  private readonly intervalMs: number
  private readonly syncOnConnect: boolean
  private readonly sessionTimeoutMs: number
  private readonly maxConcurrentSessions: number
  private readonly listThreshold: number | undefined
  private readonly activePeers = new Set<string>()
  private readonly listeners = new Set<(result: SessionResult) => void>()
  private readonly totals: CatalogSyncStats = { sessions: 0, failedSessions: 0, bytesSent: 0, bytesReceived: 0, recordsSent: 0, recordsReceived: 0 }
  private activeSessions = 0
  private shutdown = new AbortController()
  private timer: ReturnType<typeof setTimeout> | undefined
  private cachedIndex: { version: number, index: SyncIndex } | undefined
  private running = false

  constructor (components: CatalogSyncComponents, init: CatalogSyncInit) {
    this.components = components
    this.catalog = init.catalog
    this.log = components.logger.forComponent('kilomesh:sync')
    this.intervalMs = init.intervalMs ?? DEFAULT_SYNC_INTERVAL_MS
    this.syncOnConnect = init.syncOnConnect ?? true
    this.sessionTimeoutMs = init.sessionTimeoutMs ?? SYNC_SESSION_TIMEOUT_MS
    this.maxConcurrentSessions = init.maxConcurrentSessions ?? MAX_CONCURRENT_SESSIONS
    this.listThreshold = init.listThreshold
  }

  readonly [Symbol.toStringTag] = 'kilomesh/catalog-sync'

  async start (): Promise<void> {
    if (this.running) {
      return
    }

    this.shutdown = new AbortController()
    await this.components.registrar.handle(SYNC_PROTOCOL, async (stream, connection) => { await this.handleStream(stream, connection) }, {
      maxInboundStreams: MAX_INBOUND_STREAMS_PER_CONNECTION,
      maxOutboundStreams: MAX_INBOUND_STREAMS_PER_CONNECTION
    })
    this.components.events.addEventListener('connection:open', this.onConnectionOpen)
    this.running = true
    this.schedulePeriodic()
    this.log('started, syncing every %d ms and on new connections: %s', this.intervalMs, this.syncOnConnect)
  }

  async stop (): Promise<void> {
    if (!this.running) {
      return
    }

    this.running = false
    clearTimeout(this.timer)
    this.components.events.removeEventListener('connection:open', this.onConnectionOpen)
    this.shutdown.abort()
    await this.components.registrar.unhandle(SYNC_PROTOCOL)
    this.log('stopped')
  }

  /** Runs one session with `peer` as the initiator and returns what it exchanged. */
  async syncWith (peer: PeerId, options?: AbortOptions): Promise<SessionResult> {
    const peerKey = peer.toString()
    if (this.activePeers.has(peerKey) || this.activeSessions >= this.maxConcurrentSessions) {
      throw new SyncBusyError(`a sync with ${peerKey} is already running or ${this.maxConcurrentSessions} sessions are running; try again later`)
    }

    const signal = this.sessionSignal(options)
    this.beginSession(peerKey)
    try {
      const stream = await this.components.connectionManager.openStream(peer, SYNC_PROTOCOL, { signal })
      return await this.runAndRecord(stream, 'initiator', peerKey, signal)
    } catch (err) {
      this.totals.failedSessions++
      throw err
    } finally {
      this.endSession(peerKey)
    }
  }

  /** Calls `listener` after every session that ended without error. Returns a function that unsubscribes. */
  onSession (listener: (result: SessionResult) => void): () => void {
    this.listeners.add(listener)
    return () => { this.listeners.delete(listener) }
  }

  stats (): CatalogSyncStats {
    return { ...this.totals }
  }

  private async handleStream (stream: Stream, connection: Connection): Promise<void> {
    const peerKey = connection.remotePeer.toString()
    if (this.activeSessions >= this.maxConcurrentSessions) {
      this.log('rejected sync stream from %s: %d sessions already running', peerKey, this.activeSessions)
      stream.abort(new SyncBusyError(`${this.maxConcurrentSessions} sync sessions are already running`))
      return
    }

    const signal = this.sessionSignal()
    this.beginSession(peerKey)
    try {
      await this.runAndRecord(stream, 'responder', peerKey, signal)
    } catch (err) {
      this.totals.failedSessions++
      this.log.error('sync session from %s failed: %e', peerKey, err)
      stream.abort(err as Error)
    } finally {
      this.endSession(peerKey)
    }
  }

  private async runAndRecord (stream: Stream, role: SyncRole, peer: string, signal: AbortSignal): Promise<SessionResult> {
    let result: SessionResult
    try {
      result = await runSession(stream, role, { catalog: this.catalog, index: this.currentIndex(), peer, listThreshold: this.listThreshold }, { signal })
    } catch (err) {
      stream.abort(err as Error)
      throw err
    }

    this.totals.sessions++
    this.totals.bytesSent += result.bytesSent
    this.totals.bytesReceived += result.bytesReceived
    this.totals.recordsSent += result.recordsSent
    this.totals.recordsReceived += result.recordsReceived
    this.log('synced with %s as %s: %d/%d messages, %d/%d bytes, %d/%d records sent/received, %d applied, %d rejected, %d held, in %d ms',
      peer, role, result.messagesSent, result.messagesReceived, result.bytesSent, result.bytesReceived,
      result.recordsSent, result.recordsReceived, result.applied, result.rejected, result.held, result.durationMs)

    for (const listener of this.listeners) {
      try {
        listener(result)
      } catch (err) {
        this.log.error('sync session listener failed: %e', err)
      }
    }

    return result
  }

  /** Returns the index of the current sync records, rebuilt only when the catalog changed. */
  private currentIndex (): SyncIndex {
    const version = this.catalog.version
    if (this.cachedIndex?.version !== version) {
      this.cachedIndex = { version, index: new SyncIndex(this.catalog.syncRecords().map(signed => signed.envelope)) }
    }

    return this.cachedIndex.index
  }

  private sessionSignal (options?: AbortOptions): AbortSignal {
    const signals = [this.shutdown.signal, AbortSignal.timeout(this.sessionTimeoutMs)]
    if (options?.signal != null) {
      signals.push(options.signal)
    }

    return anySignal(signals)
  }

  private beginSession (peer: string): void {
    this.activeSessions++
    this.activePeers.add(peer)
  }

  private endSession (peer: string): void {
    this.activeSessions--
    this.activePeers.delete(peer)
  }

  private readonly onConnectionOpen = (event: CustomEvent<Connection>): void => {
    const connection = event.detail
    // Only the dialing side starts, so that a new connection causes one session and not two.
    if (!this.syncOnConnect || connection.direction !== 'outbound' || connection.limits != null) {
      return
    }

    void this.syncOnNewConnection(connection)
  }

  /**
   * Syncs over a new connection, retrying a few times when a side was busy
   * or the session failed, so a heal that opens many connections at once
   * does not leave peers waiting for the next periodic sync.
   */
  private async syncOnNewConnection (connection: Connection): Promise<void> {
    for (let attempt = 1; attempt <= CONNECT_SYNC_ATTEMPTS; attempt++) {
      try {
        await this.syncWith(connection.remotePeer)
        return
      } catch (err: any) {
        if (!this.running || connection.status !== 'open' || attempt === CONNECT_SYNC_ATTEMPTS) {
          this.log('sync on new connection to %p failed after %d attempt(s): %e', connection.remotePeer, attempt, err)
          return
        }
        const delayMs = CONNECT_SYNC_RETRY_MS * attempt * (0.5 + Math.random())
        this.log.trace('sync on new connection to %p failed, retrying in %d ms: %e', connection.remotePeer, delayMs, err)
        await new Promise(resolve => setTimeout(resolve, delayMs).unref?.())
      }
    }
  }

  private schedulePeriodic (): void {
    if (this.intervalMs <= 0 || !this.running) {
      return
    }

    // Jitter spreads the syncs of many peers that started together.
    const delayMs = this.intervalMs * (0.75 + Math.random() * 0.5)
    this.timer = setTimeout(() => {
      this.syncRandomPeer()
        .catch(err => { this.log('periodic sync failed: %e', err) })
        .finally(() => { this.schedulePeriodic() })
    }, delayMs)
    this.timer.unref?.()
  }

  private async syncRandomPeer (): Promise<void> {
    if (this.activeSessions >= this.maxConcurrentSessions) {
      this.log('skipped a periodic sync because %d sessions are running', this.activeSessions)
      return
    }

    const candidates = [...new Map(this.components.connectionManager.getConnections()
      .filter(connection => connection.limits == null && connection.status === 'open' && !this.activePeers.has(connection.remotePeer.toString()))
      .map(connection => [connection.remotePeer.toString(), connection.remotePeer])).values()]
    if (candidates.length === 0) {
      return
    }

    const peer = candidates[Math.floor(Math.random() * candidates.length)] as PeerId
    await this.syncWith(peer)
  }
}

/** Returns a libp2p service factory for the `services` option of `createLibp2p`. */
export function catalogSync (init: CatalogSyncInit): (components: CatalogSyncComponents) => CatalogSync {
  return (components) => new CatalogSync(components, init)
}
