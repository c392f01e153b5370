/**
 * The simulated network: which node is which peer, which links are cut,
 * each link's parameters, and the connection gater and connection protector
 * every simulated agent gets. A cut refuses new connections in the gater and
 * the protector and resets the open ones, which is how a partition looks to
 * libp2p on a real network once TCP gives up.
 */
import { logger } from '@libp2p/logger'
import { CODE_P2P } from '@multiformats/multiaddr'
import { LinkDownError } from '../errors.js'
import { SeededRandom } from '../random.js'
import { FaultConnection } from './fault-connection.js'
import type { LinkParams, LinkRule, NodeSelector } from '../scenario/types.js'
import type { AbortOptions, ConnectionGater, ConnectionProtector, MessageStream, MultiaddrConnection, PeerId } from '@libp2p/interface'

const log = logger('kilomesh:sim:network')

/** Bytes one node sent and received on raw connections: payload plus noise, yamux and multistream overhead. */
export interface WireCounters {
  sentBytes: number
  receivedBytes: number
  /** Raw connections this node took part in, both directions. */
  opened: number
}

interface TrackedConnection {
  connection: FaultConnection
  local: number
  remote: number
  /** The node that dialled. */
  initiator: number
}

function selects (selector: NodeSelector, index: number): boolean {
  return selector.kind === 'all' || (selector.kind === 'list' && selector.indices.includes(index))
}

export class SimNetwork {
  private readonly indexByPeer = new Map<string, number>()
  private readonly down = new Set<number>()
  /** Directed pairs `a>b`: node a may not open connections to node b. */
  private readonly blocked = new Set<string>()
  private readonly rules: LinkRule[]
  private readonly paramsCache = new Map<string, LinkParams>()
  private readonly open = new Set<TrackedConnection>()
  private readonly wire = new Map<number, WireCounters>()
  private readonly jitter: SeededRandom

  constructor (private readonly defaultLink: LinkParams, rules: LinkRule[], seed: number) {
    this.rules = [...rules]
    this.jitter = SeededRandom.fork(seed, 'jitter')
  }

  /** Makes a node known by its peer ID, before it starts. */
  register (index: number, peerId: string): void {
    this.indexByPeer.set(peerId, index)
    if (!this.wire.has(index)) {
      this.wire.set(index, { sentBytes: 0, receivedBytes: 0, opened: 0 })
    }
  }

  indexOf (peerId: PeerId | string): number | undefined {
    return this.indexByPeer.get(peerId.toString())
  }

  wireCounters (index: number): WireCounters {
    return this.wire.get(index) ?? { sentBytes: 0, receivedBytes: 0, opened: 0 }
  }

  /** Marks a node as down (crashed or left) or up again; going down resets its connections at once. */
  setDown (index: number, down: boolean): void {
    if (down) {
      this.down.add(index)
      this.resetWhere(tracked => tracked.local === index || tracked.remote === index, `node ${index} went down`)
    } else {
      this.down.delete(index)
    }
  }

  /** Returns true when `initiator` may open a connection to `target` now. */
  allows (initiator: number, target: number): boolean {
    return !this.down.has(initiator) && !this.down.has(target) && !this.blocked.has(`${initiator}>${target}`)
  }

  /** Cuts the links between `from` and `to`; one-way cuts only stop `from` from opening connections to `to`. */
  cut (from: number[], to: number[], oneWay: boolean): number {
    let pairs = 0
    for (const a of from) {
      for (const b of to) {
        if (a === b) {
          continue
        }
        this.blocked.add(`${a}>${b}`)
        if (!oneWay) {
          this.blocked.add(`${b}>${a}`)
        }
        pairs++
      }
    }
    const reset = this.resetWhere(tracked => {
      const target = tracked.initiator === tracked.local ? tracked.remote : tracked.local
      return this.blocked.has(`${tracked.initiator}>${target}`)
    }, 'link cut')
    log('cut %d node pairs%s, reset %d connection ends', pairs, oneWay ? ' one way' : '', reset)
    return reset
  }

  /** Cuts every link between two different groups. */
  partition (groups: number[][]): number {
    let reset = 0
    for (let i = 0; i < groups.length; i++) {
      for (let j = i + 1; j < groups.length; j++) {
        reset += this.cut(groups[i] as number[], groups[j] as number[], false)
      }
    }
    return reset
  }

  /** Heals every cut, or only those between `from` and `to`, in both directions. */
  heal (from?: number[], to?: number[]): void {
    if (from == null || to == null) {
      this.blocked.clear()
      return
    }
    for (const a of from) {
      for (const b of to) {
        this.blocked.delete(`${a}>${b}`)
        this.blocked.delete(`${b}>${a}`)
      }
    }
  }

  /** Number of directed node pairs that are cut. */
  get cutPairs (): number {
    return this.blocked.size
  }

  /** Resets every connection of the given nodes, as a flaky link or a rebooted router would. */
  reset (nodes: number[]): number {
    return this.resetWhere(tracked => nodes.includes(tracked.local), 'connection reset by the scenario')
  }

  /** Adds a link rule; it applies to open connections from their next chunk on. */
  addRule (rule: LinkRule): void {
    this.rules.push(rule)
    this.paramsCache.clear()
  }

  /** Returns the parameters of traffic sent from `from` to `to`: the default, then every matching rule in order. */
  params (from: number, to: number): LinkParams {
    const key = `${from}>${to}`
    let params = this.paramsCache.get(key)
    if (params == null) {
      params = { ...this.defaultLink }
      for (const rule of this.rules) {
        if ((selects(rule.from, from) && selects(rule.to, to)) || (selects(rule.from, to) && selects(rule.to, from))) {
          params = { ...params, ...rule.params }
        }
      }
      this.paramsCache.set(key, params)
    }
    return params
  }

  /** The connection gater of node `local`: refuses dials and handshakes across cuts and to nodes that are down. */
  gaterFor (local: number): ConnectionGater {
    const deniesTo = (peer: PeerId): boolean => {
      const remote = this.indexOf(peer)
      return remote != null && !this.allows(local, remote)
    }
    const deniesFrom = (peer: PeerId): boolean => {
      const remote = this.indexOf(peer)
      return remote != null && !this.allows(remote, local)
    }
    return {
      denyDialPeer: deniesTo,
      denyOutboundConnection: deniesTo,
      denyOutboundEncryptedConnection: deniesTo,
      denyInboundEncryptedConnection: deniesFrom
    }
  }

  /** The connection protector of node `local`: wraps every raw connection in a FaultConnection. */
  protectorFor (local: number): () => ConnectionProtector {
    return () => ({
      protect: async (stream: MessageStream, _options?: AbortOptions): Promise<MessageStream> => this.protect(local, stream as MultiaddrConnection)
    })
  }

  private protect (local: number, raw: MultiaddrConnection): MessageStream {
    const peer = raw.remoteAddr.getComponents().findLast(component => component.code === CODE_P2P)?.value
    // Inbound TCP connections carry no peer ID before the handshake; they get
    // the default link, and the gater still applies cuts after the handshake.
    const remote = peer == null ? undefined : this.indexOf(peer)
    const initiator = raw.direction === 'outbound' ? local : remote

    if (remote != null && initiator != null) {
      const target = initiator === local ? remote : local
      if (!this.allows(initiator, target)) {
        throw new LinkDownError(`simulated link from node ${initiator} to node ${target} is cut or one of them is down`)
      }
    }

    const counters = this.wire.get(local) ?? { sentBytes: 0, receivedBytes: 0, opened: 0 }
    this.wire.set(local, counters)
    counters.opened++

    let tracked: TrackedConnection | undefined
    const connection = new FaultConnection({
      inner: raw,
      link: {
        params: () => remote == null ? this.defaultLink : this.params(local, remote),
        random: () => this.jitter.next(),
        onSent: sizeBytes => { counters.sentBytes += sizeBytes },
        onReceived: sizeBytes => { counters.receivedBytes += sizeBytes },
        onClosed: () => { if (tracked != null) { this.open.delete(tracked) } }
      }
    })

    if (remote != null && initiator != null) {
      tracked = { connection, local, remote, initiator }
      this.open.add(tracked)
    }
    return connection
  }

  private resetWhere (matches: (tracked: TrackedConnection) => boolean, reason: string): number {
    let count = 0
    for (const tracked of [...this.open]) {
      if (matches(tracked)) {
        this.open.delete(tracked)
        tracked.connection.abort(new LinkDownError(`simulated ${reason}`))
        count++
      }
    }
    return count
  }
}
