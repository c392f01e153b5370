/**
 * Detects dead connections, in place of libp2p's connection monitor. That
 * monitor pings each connection and aborts it when the ping times out. On a
 * slow link a ping waits behind the blob data queued ahead of it, so a
 * healthy connection in the middle of a large transfer was cut. Here a
 * connection is aborted only when its ping fails and nothing arrived on it
 * for a whole interval plus a ping timeout. A live kilomesh peer pings every
 * connection once per interval, so its pings reach this side in time even
 * while the link is saturated in the other direction.
 */
import { randomBytes } from 'node:crypto'
import { logger } from '@libp2p/logger'
import { byteStream } from '@libp2p/utils'
import { anySignal, sleep } from './signals.js'
import { ConnectionSilentError } from './errors.js'
import type { Connection, Libp2pEvents, PeerId, Startable, TypedEventTarget } from '@libp2p/interface'
import type { ConnectionManager } from '@libp2p/interface-internal'

const log = logger('kilomesh:net:liveness')

/** The protocol of libp2p's ping service, which every kilomesh node runs. */
export const PING_PROTOCOL = '/ipfs/ping/1.0.0'

/** Bytes of one ping, as the ping protocol fixes. */
const PING_BYTES = 32

export interface ConnectionLivenessInit {
  /** Time between two checks of one connection. */
  intervalMs: number
  /** Time a ping may take before it counts as failed. */
  pingTimeoutMs: number
}

export interface ConnectionLivenessComponents {
  connectionManager: ConnectionManager
  events: TypedEventTarget<Libp2pEvents>
}

/** Bytes received on one connection, when the last of them arrived, and whether a check of it is running. */
interface Arrivals {
  /** When the last chunk arrived from the transport, on the `performance.now()` clock. */
  lastMs: number
  /** Bytes received from the transport since the connection was first watched. */
  bytes: number
  checking: boolean
}

export class ConnectionLiveness implements Startable {
  private readonly arrivals = new WeakMap<Connection, Arrivals>()
  private timer?: ReturnType<typeof setInterval>
  private shutdown = new AbortController()
  private warned = false

  /**
   * Silence after which a connection whose ping failed is aborted. A live
   * peer's pings are one interval apart, and the timeout is the margin for
   * their jitter.
   */
  private readonly silenceMs: number

  constructor (private readonly components: ConnectionLivenessComponents, private readonly init: ConnectionLivenessInit) {
    this.silenceMs = init.intervalMs + init.pingTimeoutMs
  }

  readonly [Symbol.toStringTag] = 'kilomesh:connection-liveness'

  private readonly onOpen = (event: CustomEvent<Connection>): void => { this.watch(event.detail) }

  start (): void {
    this.shutdown = new AbortController()
    this.components.events.addEventListener('connection:open', this.onOpen)
    for (const connection of this.components.connectionManager.getConnections()) {
      this.watch(connection)
    }
    this.timer = setInterval(() => { this.checkAll() }, this.init.intervalMs)
  }

  stop (): void {
    clearInterval(this.timer)
    this.shutdown.abort()
    this.components.events.removeEventListener('connection:open', this.onOpen)
  }

  /**
   * Returns the bytes received from `peer` on its open connections since
   * each was first watched, or undefined when none of them is watched.
   */
  receivedBytes (peer: PeerId): number | undefined {
    let totalBytes: number | undefined
    for (const connection of this.components.connectionManager.getConnections(peer)) {
      const arrivals = this.arrivals.get(connection)
      if (arrivals != null) {
        totalBytes = (totalBytes ?? 0) + arrivals.bytes
      }
    }
    return totalBytes
  }

  private watch (connection: Connection): void {
    if (this.arrivals.has(connection)) {
      return
    }

    // Without a way to watch arrivals, the connection counts as silent since
    // it opened, and a failed ping aborts it, as libp2p's monitor would.
    const arrivals: Arrivals = { lastMs: performance.now(), bytes: 0, checking: false }
    this.arrivals.set(connection, arrivals)

    // libp2p's Connection keeps the transport's connection in a field its
    // public type does not declare. Every transport kilomesh uses (TCP,
    // memory) emits a 'message' event per chunk received there.
    const maConn = (connection as unknown as { maConn?: { addEventListener?: unknown } }).maConn
    if (typeof maConn?.addEventListener !== 'function') {
      if (!this.warned) {
        this.warned = true
        log.error('cannot watch the bytes arriving on %s connections, so a slow link may be cut by a late ping; check the libp2p version', connection.remoteAddr.toString())
      }
      return
    }
    const onMessage = (event: { data?: { byteLength?: number } }): void => {
      arrivals.lastMs = performance.now()
      arrivals.bytes += event.data?.byteLength ?? 0
    }
    (maConn.addEventListener as (type: string, listener: typeof onMessage) => void).call(maConn, 'message', onMessage)
  }

  private checkAll (): void {
    for (const connection of this.components.connectionManager.getConnections()) {
      const arrivals = this.arrivals.get(connection)
      if (arrivals == null) {
        this.watch(connection)
        continue
      }
      if (arrivals.checking || connection.status !== 'open') {
        continue
      }

      void this.check(connection, arrivals)
    }
  }

  /**
   * Pings one connection, which also measures its round trip time. When the
   * ping fails, waits until nothing has arrived for `silenceMs`, and aborts
   * the connection then, unless something arrived in the meantime.
   */
  private async check (connection: Connection, arrivals: Arrivals): Promise<void> {
    arrivals.checking = true

    try {
      connection.rtt = await this.ping(connection)
    } catch (err: any) {
      const silentUntilMs = arrivals.lastMs + this.silenceMs
      // A stop ends the wait early, and the check below then returns.
      await sleep(silentUntilMs - performance.now(), this.shutdown.signal).catch(() => {})
      if (this.shutdown.signal.aborted || connection.status !== 'open') {
        return
      }
      if (arrivals.lastMs + this.silenceMs > silentUntilMs) {
        log('ping of %p failed, but the connection is receiving data, so it stays open: %e', connection.remotePeer, err)
        return
      }

      log('closing the connection to %p at %a: nothing arrived for %d ms and the ping failed: %e', connection.remotePeer, connection.remoteAddr, this.silenceMs, err)
      connection.abort(new ConnectionSilentError(`nothing arrived from ${connection.remotePeer.toString()} for ${this.silenceMs} ms and its ping failed: ${err?.message ?? err}`))
    } finally {
      arrivals.checking = false
    }
  }

  /** Sends one ping on `connection` and returns its round trip time in ms. */
  private async ping (connection: Connection): Promise<number> {
    const signal = anySignal([this.shutdown.signal, AbortSignal.timeout(this.init.pingTimeoutMs)])
    const stream = await connection.newStream(PING_PROTOCOL, { signal, runOnLimitedConnection: true })

    try {
      const bytes = byteStream(stream)
      const payload = randomBytes(PING_BYTES)
      const startedMs = performance.now()
      const [, echo] = await Promise.all([
        bytes.write(payload, { signal }),
        bytes.read({ bytes: PING_BYTES, signal })
      ])
      const rttMs = Math.round(performance.now() - startedMs)
      if (!payload.equals(echo.subarray())) {
        throw new Error('the ping echo did not match the bytes sent')
      }

      await stream.close({ signal })
      return rttMs
    } catch (err: any) {
      stream.abort(err instanceof Error ? err : new Error(String(err)))
      throw err
    }
  }
}

/** Returns a libp2p service factory for ConnectionLiveness. */
export function connectionLiveness (init: ConnectionLivenessInit): (components: ConnectionLivenessComponents) => ConnectionLiveness {
  return components => new ConnectionLiveness(components, init)
}
