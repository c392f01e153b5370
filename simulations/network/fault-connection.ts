/**
 * One end of a simulated link: wraps a raw connection (before noise and
 * yamux) the way `@libp2p/pnet` does, and delays what this end sends by the
 * link's one-way propagation delay, with jitter, after serialising it at the
 * link's bandwidth. Nothing is ever dropped: noise and yamux need a reliable,
 * ordered byte stream, so loss is modelled as delay or as a connection reset
 * (`abort`). Jitter cannot reorder bytes either, so a chunk never arrives
 * before the one sent ahead of it.
 */
import { AbstractMultiaddrConnection } from '@libp2p/utils'
import { LINK_SEGMENT_BYTES, MAX_LINK_BACKLOG_MS, MIN_LINK_BACKLOG_BYTES } from '../constants.js'
import type { LinkParams } from '../scenario/types.js'
import type { AbortOptions, MultiaddrConnection } from '@libp2p/interface'
import type { Uint8ArrayList } from 'uint8arraylist'

/** Link state a fault connection reads from the network: its parameters, jitter draws and byte counters. */
export interface LinkEnd {
  /** Parameters of the direction this end sends in; read on every chunk so that `link` events apply at once. */
  params: () => LinkParams
  /** Uniform draw in [0, 1) for jitter. */
  random: () => number
  onSent: (sizeBytes: number) => void
  onReceived: (sizeBytes: number) => void
  onClosed: () => void
}

interface InFlight {
  data: Uint8Array | Uint8ArrayList
  dueMs: number
}

export interface FaultConnectionInit {
  inner: MultiaddrConnection
  link: LinkEnd
}

export class FaultConnection extends AbstractMultiaddrConnection {
  private readonly inner: MultiaddrConnection
  private readonly link: LinkEnd
  private readonly inFlight: InFlight[] = []
  private deliveryTimer?: ReturnType<typeof setTimeout>
  private drainTimer?: ReturnType<typeof setTimeout>
  /** When the link finishes serialising what it was given, on the `performance.now()` clock. */
  private busyUntilMs = 0
  private lastArrivalMs = 0
  /** True after `sendData` returned `canSendMore: false`, until a `drain` event releases the writer. */
  private backlogged = false
  private innerFull = false
  private idleWaiters: Array<() => void> = []

  constructor (init: FaultConnectionInit) {
    super({
      log: init.inner.log.newScope('fault'),
      remoteAddr: init.inner.remoteAddr,
      direction: init.inner.direction
    })
    this.inner = init.inner
    this.link = init.link

    this.inner.addEventListener('message', (event) => {
      this.link.onReceived(event.data.byteLength)
      this.onData(event.data)
    })
    this.inner.addEventListener('drain', () => {
      this.innerFull = false
      this.maybeDrain()
    })
    this.inner.addEventListener('close', (event) => {
      this.clearTimers()
      this.link.onClosed()
      if (event.error != null) {
        if (event.local) {
          this.abort(event.error)
        } else {
          this.onRemoteReset()
        }
      } else {
        this.onTransportClosed()
      }
    })
  }

  sendData (data: Uint8ArrayList): { sentBytes: number, canSendMore: boolean } {
    const sizeBytes = data.byteLength
    const params = this.link.params()
    this.link.onSent(sizeBytes)

    // An ideal link with nothing in flight passes bytes straight through,
    // so zero-latency runs measure the agent rather than the simulator.
    if (params.latencyMs === 0 && params.jitterMs === 0 && params.bandwidthKbps === 0 && this.inFlight.length === 0) {
      const canSendMore = this.inner.send(data.subarray())
      this.innerFull = !canSendMore
      return { sentBytes: sizeBytes, canSendMore }
    }

    const nowMs = performance.now()
    const jitterMs = params.jitterMs > 0 ? (this.link.random() * 2 - 1) * params.jitterMs : 0
    // A link that serialises data delivers it in segments, as TCP does,
    // rather than a whole write at the end. One write can carry a whole
    // encrypted yamux frame (262 KB for a 256 KiB blob chunk), which takes
    // 13 s at 20 kB/s.
    const bytes = data.subarray()
    const segmentBytes = params.bandwidthKbps > 0 ? LINK_SEGMENT_BYTES : sizeBytes
    for (let offset = 0; offset < sizeBytes; offset += segmentBytes) {
      const segment = bytes.subarray(offset, offset + segmentBytes)
      // kbps is kilobits per second, which is also bits per millisecond.
      const serialiseMs = params.bandwidthKbps > 0 ? segment.byteLength * 8 / params.bandwidthKbps : 0
      this.busyUntilMs = Math.max(nowMs, this.busyUntilMs) + serialiseMs
      const arrivalMs = Math.max(this.busyUntilMs + Math.max(0, params.latencyMs + jitterMs), this.lastArrivalMs)
      this.lastArrivalMs = arrivalMs
      this.inFlight.push({ data: segment, dueMs: arrivalMs })
    }
    this.scheduleDelivery()

    const backlogMs = this.busyUntilMs - nowMs
    const backlogBytes = backlogMs * params.bandwidthKbps / 8
    if (params.bandwidthKbps > 0 && backlogMs > MAX_LINK_BACKLOG_MS && backlogBytes > MIN_LINK_BACKLOG_BYTES) {
      this.backlogged = true
      this.scheduleDrain(backlogMs - MAX_LINK_BACKLOG_MS)
      return { sentBytes: sizeBytes, canSendMore: false }
    }
    return { sentBytes: sizeBytes, canSendMore: !this.innerFull }
  }

  async sendClose (options?: AbortOptions): Promise<void> {
    // Bytes in flight still arrive before the close, as on a real link.
    if (this.inFlight.length > 0) {
      await new Promise<void>(resolve => { this.idleWaiters.push(resolve) })
    }
    options?.signal?.throwIfAborted()
    await this.inner.close(options)
  }

  sendReset (err: Error): void {
    this.clearTimers()
    this.inFlight.length = 0
    this.releaseIdleWaiters()
    this.inner.abort(err)
  }

  sendPause (): void {
    this.inner.pause()
  }

  sendResume (): void {
    this.inner.resume()
  }

  private scheduleDelivery (): void {
    const next = this.inFlight[0]
    if (next == null || this.deliveryTimer != null) {
      return
    }
    this.deliveryTimer = setTimeout(() => {
      this.deliveryTimer = undefined
      this.deliverDue()
    }, Math.max(0, next.dueMs - performance.now()))
    this.deliveryTimer.unref?.()
  }

  private deliverDue (): void {
    const nowMs = performance.now()
    while (this.inFlight.length > 0 && (this.inFlight[0] as InFlight).dueMs <= nowMs + 0.5) {
      const item = this.inFlight.shift() as InFlight
      try {
        this.innerFull = !this.inner.send(item.data)
      } catch (err: any) {
        // The raw connection closed under the bytes; its close event ends this end too.
        this.log('dropping %d bytes in flight on a closed connection: %s', item.data.byteLength, err.message)
        this.inFlight.length = 0
      }
    }

    if (this.inFlight.length === 0) {
      this.releaseIdleWaiters()
    }
    this.scheduleDelivery()
  }

  private scheduleDrain (delayMs: number): void {
    if (this.drainTimer != null) {
      return
    }
    this.drainTimer = setTimeout(() => {
      this.drainTimer = undefined
      this.backlogged = false
      this.maybeDrain()
    }, Math.max(1, delayMs))
    this.drainTimer.unref?.()
  }

  private maybeDrain (): void {
    if (!this.backlogged && !this.innerFull && this.status === 'open') {
      this.onMuxerDrain()
    }
  }

  private releaseIdleWaiters (): void {
    const waiters = this.idleWaiters
    this.idleWaiters = []
    waiters.forEach(resolve => { resolve() })
  }

  private clearTimers (): void {
    clearTimeout(this.deliveryTimer)
    clearTimeout(this.drainTimer)
    this.deliveryTimer = undefined
    this.drainTimer = undefined
  }
}
