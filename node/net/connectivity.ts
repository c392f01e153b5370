/**
 * Keeps the agent connected. libp2p 3 has no auto-dialer and gives up
 * redialing after about 30 seconds, so a long partition would never heal on
 * its own. This keeper redials every disconnected bootstrap peer with capped
 * exponential backoff, forever; dials peers found by mDNS; and while the
 * agent has fewer than `minConnections` connections it dials other peers it
 * has known (from the peer store, which the DHT and identify fill), each with
 * its own capped backoff.
 */
import { logger } from '@libp2p/logger'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { DEFAULT_MIN_CONNECTIONS, KEEPER_INTERVAL_MS, REDIAL_INITIAL_DELAY_MS, REDIAL_MAX_DELAY_MS } from './constants.js'
import { connectedPeerNames } from './peers.js'
import { anySignal } from './signals.js'
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
  /** Known, non-bootstrap peers: when each may be dialled next and its current backoff. */
  private readonly known = new Map<string, { nextDialMs: number, delayMs: number }>()
  private readonly shutdown = new AbortController()
  private timer?: ReturnType<typeof setInterval>
  /** Dials of discovered peers in progress, so that a burst of discoveries does not dial them all. */
  private discoveryDials = 0
  private readonly onDiscovery = (event: CustomEvent<{ id: PeerId }>): void => {
    if (this.node.getConnections().length + this.discoveryDials < this.minConnections * 2) {
      this.discoveryDials++
      void this.dialKnown(event.detail.id).finally(() => { this.discoveryDials-- })
    }
  }
  private readonly onDisconnect = (event: CustomEvent<PeerId>): void => {
    const peer = this.kept.get(event.detail.toString())
    if (peer != null && !this.shutdown.signal.aborted) {
      log('lost connection to bootstrap peer %p; redialing', event.detail)
      peer.delayMs = REDIAL_INITIAL_DELAY_MS
      this.schedule(peer, 0)
    }
  }

  /**
   * A new connection after failed dials often means the network came back
   * (a partition healed), so peers waiting out a long backoff are dialled
   * again within a second instead of up to a minute later.
   */
  private readonly onConnect = (): void => {
    for (const peer of this.kept.values()) {
      if (peer.delayMs > REDIAL_INITIAL_DELAY_MS && !peer.dialing && !this.isConnected(peer.peerId)) {
        peer.delayMs = REDIAL_INITIAL_DELAY_MS
        this.schedule(peer, Math.random() * REDIAL_INITIAL_DELAY_MS)
      }
    }
    for (const state of this.known.values()) {
      state.nextDialMs = Math.min(state.nextDialMs, Date.now() + Math.random() * REDIAL_INITIAL_DELAY_MS)
      state.delayMs = REDIAL_INITIAL_DELAY_MS
    }
  }

  constructor (private readonly node: KilomeshLibp2p, private readonly minConnections = DEFAULT_MIN_CONNECTIONS) {}

  private isConnected (peerId: string): boolean {
    return this.node.getConnections().some(connection => connection.remotePeer.toString() === peerId)
  }

  start (addresses: string[]): void {
    this.node.addEventListener('peer:disconnect', this.onDisconnect)
    this.node.addEventListener('peer:discovery', this.onDiscovery)
    this.node.addEventListener('peer:connect', this.onConnect)
    this.timer = setInterval(() => { void this.topUp() }, KEEPER_INTERVAL_MS)
    this.timer.unref?.()
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
    clearInterval(this.timer)
    this.node.removeEventListener('peer:disconnect', this.onDisconnect)
    this.node.removeEventListener('peer:discovery', this.onDiscovery)
    this.node.removeEventListener('peer:connect', this.onConnect)
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
      await this.node.dial(peer.address, { signal: anySignal([this.shutdown.signal, AbortSignal.timeout(10_000)]) })
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

  /** Dials known peers, oldest backoff first, while the agent has too few connections. */
  private async topUp (): Promise<void> {
    const connected = connectedPeerNames(this.node)
    let missing = this.minConnections - connected.size
    if (missing <= 0 || this.shutdown.signal.aborted) {
      return
    }

    const now = Date.now()
    for (const peer of await this.node.peerStore.all()) {
      const name = peer.id.toString()
      if (missing <= 0) {
        break
      }
      if (connected.has(name) || this.kept.has(name) || peer.addresses.length === 0 || peer.id.equals(this.node.peerId)) {
        continue
      }
      if ((this.known.get(name)?.nextDialMs ?? 0) > now) {
        continue
      }
      missing--
      void this.dialKnown(peer.id)
    }
  }

  private async dialKnown (peer: PeerId): Promise<void> {
    const name = peer.toString()
    const state = this.known.get(name) ?? { nextDialMs: 0, delayMs: REDIAL_INITIAL_DELAY_MS }
    this.known.set(name, state)
    try {
      await this.node.dial(peer, { signal: anySignal([this.shutdown.signal, AbortSignal.timeout(10_000)]) })
      state.delayMs = REDIAL_INITIAL_DELAY_MS
      state.nextDialMs = 0
      log('connected to known peer %p', peer)
    } catch (err: any) {
      state.nextDialMs = Date.now() + state.delayMs
      state.delayMs = Math.min(state.delayMs * 2, REDIAL_MAX_DELAY_MS)
      log.trace('dial of known peer %p failed: %s', peer, err.message)
    }
  }
}
