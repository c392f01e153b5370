/**
 * Passes on what a sync session brought. Records learned by sync are not
 * gossiped again, so without this an agent's neighbours learn them only at
 * their next periodic sync (every 30 s by default), one hop per period. After
 * a session that applied new records, the relay syncs with a few other
 * connected peers, one after the other. They do the same, so a healed island
 * converges in a few round trips per hop. A session that brings nothing new
 * triggers nothing, so the relaying stops by itself.
 */
import { logger } from '@libp2p/logger'
import { SyncBusyError } from '../sync/errors.js'
import { connectedPeers } from '../net/peers.js'
import type { KilomeshLibp2p } from '../net/libp2p.js'
import type { PeerId } from '@libp2p/interface'
import type { CatalogSync } from '../sync/catalog-sync.js'
import type { SessionResult } from '../sync/session.js'

const log = logger('kilomesh:sync-relay')

/** Peers synced with after a session that applied new records. */
export const DEFAULT_RELAY_FANOUT = 2

export class SyncRelay {
  private readonly node: KilomeshLibp2p
  private readonly sync: CatalogSync
  private readonly fanout: number
  private unsubscribe?: () => void
  /** Peers that sent new records since the current round started; a round starts again when this is not empty. */
  private readonly sources = new Set<string>()
  private running = false

  constructor (node: KilomeshLibp2p, sync: CatalogSync, init: { fanout?: number } = {}) {
    this.node = node
    this.sync = sync
    this.fanout = init.fanout ?? DEFAULT_RELAY_FANOUT
  }

  start (): void {
    this.unsubscribe ??= this.sync.onSession(result => { this.onSession(result) })
  }

  stop (): void {
    this.unsubscribe?.()
    this.unsubscribe = undefined
    this.sources.clear()
  }

  private onSession (result: SessionResult): void {
    if (result.applied === 0 || this.fanout <= 0 || this.unsubscribe == null) {
      return
    }

    this.sources.add(result.peer)
    if (!this.running) {
      this.running = true
      void this.relayRounds().finally(() => { this.running = false })
    }
  }

  /**
   * Runs rounds until no session brings new records during one. Each round
   * syncs with up to `fanout` random peers, one after the other, so one
   * agent adds at most one session at a time to its peers' session limits.
   */
  private async relayRounds (): Promise<void> {
    while (this.sources.size > 0 && this.unsubscribe != null) {
      const sources = new Set(this.sources)
      this.sources.clear()

      for (const peer of this.pickPeers(sources)) {
        try {
          await this.sync.syncWith(peer)
        } catch (err) {
          // A busy peer is expected while many agents relay at once; the periodic sync covers it.
          if (err instanceof SyncBusyError) {
            log.trace('relay to %p skipped: %e', peer, err)
          } else {
            log('relay sync with %p failed: %e', peer, err)
          }
        }
      }
    }
  }

  /** Returns up to `fanout` connected peers at random, none of them in `exclude`. */
  private pickPeers (exclude: Set<string>): PeerId[] {
    const candidates = [...connectedPeers(this.node)].filter(([name]) => !exclude.has(name)).map(([, peer]) => peer)
    // A partial Fisher-Yates shuffle moves `fanout` random peers to the front.
    const count = Math.min(this.fanout, candidates.length)
    for (let index = 0; index < count; index++) {
      const pick = index + Math.floor(Math.random() * (candidates.length - index))
      const chosen = candidates[pick] as PeerId
      candidates[pick] = candidates[index] as PeerId
      candidates[index] = chosen
    }
    return candidates.slice(0, count)
  }
}
