/**
 * Keeps the agent connected to its bootstrap peers. libp2p 3 has no
 * auto-dialer and gives up redialing after about 30 seconds, so a long
 * partition would never heal on its own: this keeper redials every
 * disconnected bootstrap peer with capped exponential backoff, forever.
 */
import { logger } from '@libp2p/logger'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { REDIAL_INITIAL_DELAY_MS, REDIAL_MAX_DELAY_MS } from './constants.js'
import type { KilomeshLibp2p } from './libp2p.js'
import type { PeerId } from '@libp2p/interface'

const log = logger('kilomesh:connectivity')

interface KeptPeer {
  address: Multiaddr
  peerId: string
  delayMs: number
  timer?: ReturnType<typeof setTimeout>
  dialing: boolean
}

export class ConnectivityKeeper {
  private readonly kept = new Map<string, KeptPeer>()
  private readonly shutdown = new AbortController()
  private readonly onDisconnect = (event: CustomEvent<PeerId>): void => {
    const peer = this.kept.get(event.detail.toString())
    if (peer != null && !this.shutdown.signal.aborted) {
      log('lost connection to bootstrap peer %p; redialing', event.detail)
      peer.delayMs = REDIAL_INITIAL_DELAY_MS
      this.schedule(peer, 0)
    }
  }

  constructor (private readonly node: KilomeshLibp2p) {}

  start (addresses: string[]): void {
    this.node.addEventListener('peer:disconnect', this.onDisconnect)
    for (const address of addresses) {
      this.keep(address)
    }
  }

  /** Adds a peer address to keep connected and dials it now. */
  keep (address: string): void {
    const parsed = multiaddr(address)
    const peerId = parsed.getComponents().find(component => component.name === 'p2p')?.value
    if (peerId == null || peerId === this.node.peerId.toString() || this.kept.has(peerId)) {
      return
    }

    const peer: KeptPeer = { address: parsed, peerId, delayMs: REDIAL_INITIAL_DELAY_MS, dialing: false }
    this.kept.set(peerId, peer)
    this.schedule(peer, 0)
  }

  stop (): void {
    this.shutdown.abort()
    this.node.removeEventListener('peer:disconnect', this.onDisconnect)
    for (const peer of this.kept.values()) {
      clearTimeout(peer.timer)
    }
  }

  private schedule (peer: KeptPeer, delayMs: number): void {
    clearTimeout(peer.timer)
    peer.timer = setTimeout(() => { void this.dial(peer) }, delayMs)
    peer.timer.unref?.()
  }

  private async dial (peer: KeptPeer): Promise<void> {
    if (peer.dialing || this.shutdown.signal.aborted) {
      return
    }
    if (this.node.getConnections().some(connection => connection.remotePeer.toString() === peer.peerId)) {
      peer.delayMs = REDIAL_INITIAL_DELAY_MS
      return
    }

    peer.dialing = true
    try {
      await this.node.dial(peer.address, { signal: AbortSignal.any([this.shutdown.signal, AbortSignal.timeout(10_000)]) })
      peer.delayMs = REDIAL_INITIAL_DELAY_MS
      log('connected to bootstrap peer %s', peer.address.toString())
    } catch (err: any) {
      if (this.shutdown.signal.aborted) {
        return
      }
      log('dial of bootstrap peer %s failed, retrying in %d ms: %s', peer.address.toString(), peer.delayMs, err.message)
      this.schedule(peer, peer.delayMs)
      peer.delayMs = Math.min(peer.delayMs * 2, REDIAL_MAX_DELAY_MS)
    } finally {
      peer.dialing = false
    }
  }
}
