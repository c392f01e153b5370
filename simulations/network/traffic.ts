/**
 * Counts what one node sends and receives per libp2p protocol. Every stream
 * of every connection is watched: its `send` (what this node writes) and its
 * `onData` (what the muxer delivers to it) are wrapped on the instance, so
 * the counts are payload bytes after yamux framing is removed. A stream's
 * bytes count under the protocol it agrees on, negotiation included; a
 * stream that closes without agreeing counts under `multistream-select`.
 */
import { logger } from '@libp2p/logger'
import type { Connection, Stream } from '@libp2p/interface'
import type { Libp2p } from 'libp2p'

const log = logger('kilomesh:sim:traffic')

/** Label for bytes exchanged while the two ends agree on a protocol. */
export const NEGOTIATION = 'multistream-select'

export interface ProtocolCounters {
  sentBytes: number
  receivedBytes: number
  /** Streams that carried this protocol. */
  streams: number
  /** Calls to `send`: one per protocol message for length-prefixed protocols. */
  writes: number
}

/** Connection counts of one node, from libp2p's connection events. */
export interface ConnectionCounters {
  opened: number
  closed: number
  /** Most connections open at once. */
  peak: number
}

const WATCHED = Symbol('kilomesh-sim-watched')

type Watchable = Record<symbol, boolean>

export class NodeTraffic {
  readonly byProtocol = new Map<string, ProtocolCounters>()
  readonly connections: ConnectionCounters = { opened: 0, closed: 0, peak: 0 }
  private warned = false

  /** Starts counting on a started libp2p node; returns a function that stops listening. */
  attach (node: Libp2p): () => void {
    const onOpen = (event: CustomEvent<Connection>): void => {
      this.connections.opened++
      this.connections.peak = Math.max(this.connections.peak, node.getConnections().length)
      this.watchConnection(event.detail)
    }
    const onClose = (): void => { this.connections.closed++ }

    node.addEventListener('connection:open', onOpen)
    node.addEventListener('connection:close', onClose)
    for (const connection of node.getConnections()) {
      this.watchConnection(connection)
    }
    return () => {
      node.removeEventListener('connection:open', onOpen)
      node.removeEventListener('connection:close', onClose)
    }
  }

  /** Returns the totals over every protocol. */
  totals (): ProtocolCounters {
    const total: ProtocolCounters = { sentBytes: 0, receivedBytes: 0, streams: 0, writes: 0 }
    for (const counters of this.byProtocol.values()) {
      total.sentBytes += counters.sentBytes
      total.receivedBytes += counters.receivedBytes
      total.streams += counters.streams
      total.writes += counters.writes
    }
    return total
  }

  private counters (protocol: string): ProtocolCounters {
    let counters = this.byProtocol.get(protocol)
    if (counters == null) {
      counters = { sentBytes: 0, receivedBytes: 0, streams: 0, writes: 0 }
      this.byProtocol.set(protocol, counters)
    }
    return counters
  }

  private watchConnection (connection: Connection): void {
    // libp2p's Connection keeps its muxer in a field the public type does not declare.
    const muxer = (connection as any).muxer
    if (muxer == null || (muxer as Watchable)[WATCHED]) {
      return
    }
    (muxer as Watchable)[WATCHED] = true

    // libp2p creates the muxer, then awaits the connection gater before it
    // emits connection:open, so a fast peer's first stream can arrive and
    // buffer data before this runs. Nothing reads a stream until the
    // connection exists, so its read buffer contains every byte it has received.
    for (const stream of muxer.streams as Stream[]) {
      this.watchStream(stream, stream.readBufferLength)
    }

    // AbstractStreamMuxer (@libp2p/utils 7) calls cleanUpStream for every new
    // stream, inbound and outbound, before any of its data is delivered.
    const original = muxer.cleanUpStream
    if (typeof original !== 'function') {
      if (!this.warned) {
        this.warned = true
        log.error('the stream muxer has no cleanUpStream method, so per-protocol bytes are not counted; check the @libp2p/utils version')
      }
      return
    }
    muxer.cleanUpStream = (stream: Stream) => {
      this.watchStream(stream)
      return original.call(muxer, stream)
    }
  }

  /** `bufferedBytes` counts data the stream received before it was watched and has not yet given to a reader. */
  private watchStream (stream: Stream, bufferedBytes = 0): void {
    const watchable = stream as unknown as Watchable & Record<string, any>
    if (watchable[WATCHED]) {
      return
    }
    watchable[WATCHED] = true

    // Bytes that pass before the protocol is agreed wait here, then count
    // under the protocol, or under multistream-select if none is agreed.
    const pending: ProtocolCounters = { sentBytes: 0, receivedBytes: bufferedBytes, streams: 1, writes: 0 }
    let counters: ProtocolCounters | undefined
    const resolve = (): ProtocolCounters => {
      if (counters != null) {
        return counters
      }
      if (stream.protocol == null || stream.protocol === '') {
        return pending
      }
      counters = this.counters(stream.protocol)
      this.add(counters, pending)
      return counters
    }

    // Pending bytes move when the protocol is assigned, so a stream that
    // stays open after its last byte is still counted right.
    let protocol: string | undefined = stream.protocol
    Object.defineProperty(stream, 'protocol', {
      configurable: true,
      enumerable: true,
      get: () => protocol,
      set: (value: string | undefined) => {
        protocol = value
        resolve()
      }
    })

    const send = watchable.send
    watchable.send = (data: { byteLength: number }) => {
      const target = resolve()
      target.sentBytes += data.byteLength
      target.writes++
      return send.call(stream, data)
    }

    const onData = watchable.onData
    watchable.onData = (data: { byteLength: number }) => {
      resolve().receivedBytes += data.byteLength
      return onData.call(stream, data)
    }

    stream.addEventListener('close', () => {
      if (resolve() === pending) {
        this.add(this.counters(NEGOTIATION), pending)
      }
    })

    // A stream that agreed on its protocol before it was watched counts its buffered bytes now.
    resolve()
  }

  private add (target: ProtocolCounters, extra: ProtocolCounters): void {
    target.sentBytes += extra.sentBytes
    target.receivedBytes += extra.receivedBytes
    target.streams += extra.streams
    target.writes += extra.writes
  }
}
