/**
 * Detects a blob transfer that stopped making progress. Yamux hands a
 * stream its data one whole frame at a time, and a frame can be as large as
 * the blob server's 256 KiB chunk. On a 50 kB/s link two transfers that
 * take turns deliver nothing to either stream for over 10 s, although the
 * link is busy. So a transfer counts as stalled when its stream got nothing
 * for `stallMs` and its peer's connections received less than
 * BUSY_CONNECTION_MIN_BYTES meanwhile, or when its stream got nothing for
 * `maxQuietMs` whatever the connections did. Pings and DHT messages alone
 * stay below that amount, so a peer that stopped sending one stream is
 * still left after `stallMs`.
 */
import { BUSY_CONNECTION_MIN_BYTES, MAX_STREAM_QUIET_MS, STALL_TIMEOUT_MS } from '../net/constants.js'
import { StallError } from './errors.js'
import type { KilomeshLibp2p } from '../net/libp2p.js'
import type { PeerId } from '@libp2p/interface'

/** Shortest time between two reads of the connections' byte count on progress. */
const BASELINE_INTERVAL_MS = 1_000

export interface StallWatchInit {
  /** @default STALL_TIMEOUT_MS */
  stallMs?: number
  /** @default MAX_STREAM_QUIET_MS */
  maxQuietMs?: number
}

export class StallWatch {
  private lastProgressMs = performance.now()
  private timer?: ReturnType<typeof setTimeout>
  private readonly stallMs: number
  private readonly maxQuietMs: number
  /** Bytes received from the peer at `baselineMs`, for the amount received since. */
  private baselineBytes: number | undefined
  private baselineMs: number

  /** Starts watching; `onStall` gets a StallError once, unless `stop` comes first. */
  constructor (private readonly node: KilomeshLibp2p, private readonly peer: PeerId, private readonly onStall: (err: StallError) => void, init: StallWatchInit = {}) {
    this.stallMs = init.stallMs ?? STALL_TIMEOUT_MS
    this.maxQuietMs = Math.max(this.stallMs, init.maxQuietMs ?? MAX_STREAM_QUIET_MS)
    this.baselineBytes = this.receivedBytes()
    this.baselineMs = performance.now()
    this.timer = setTimeout(() => { this.check() }, this.stallMs)
  }

  /**
   * Records bytes delivered to the transfer's stream. One timer serves every
   * call, and the connections' byte count is read at most once a second.
   */
  progress (): void {
    const nowMs = performance.now()
    this.lastProgressMs = nowMs
    if (nowMs - this.baselineMs >= BASELINE_INTERVAL_MS) {
      this.baselineBytes = this.receivedBytes()
      this.baselineMs = nowMs
    }
  }

  stop (): void {
    clearTimeout(this.timer)
    this.timer = undefined
  }

  private receivedBytes (): number | undefined {
    return this.node.services.liveness?.receivedBytes(this.peer)
  }

  private check (): void {
    const nowMs = performance.now()
    const quietMs = nowMs - this.lastProgressMs
    if (quietMs < this.stallMs) {
      this.timer = setTimeout(() => { this.check() }, this.stallMs - quietMs)
      return
    }

    // The baseline was read within a second of the stream's last progress,
    // or at the previous check, so the count covers at least `stallMs`.
    const currentBytes = this.receivedBytes()
    const connectionBusy = this.baselineBytes != null && currentBytes != null && currentBytes - this.baselineBytes >= BUSY_CONNECTION_MIN_BYTES
    if (connectionBusy && quietMs < this.maxQuietMs) {
      this.baselineBytes = currentBytes
      this.baselineMs = nowMs
      this.timer = setTimeout(() => { this.check() }, this.stallMs)
      return
    }

    this.timer = undefined
    this.onStall(new StallError(connectionBusy
      ? `${this.peer.toString()} sent nothing on the transfer's stream for ${Math.round(quietMs)} ms, although its connection was busy`
      : `${this.peer.toString()} sent nothing for ${Math.round(quietMs)} ms`))
  }
}

/**
 * Stalls in a row without a byte in between, after which a source whose
 * connection is still open is not asked again in this transfer. Three
 * stalls of at least 10 s each give a paused link about as long as the
 * liveness check gives a silent connection (40 s).
 */
export const MAX_STALLS_IN_ROW = 3

/**
 * Stalls after which a source is not asked again in this transfer, even
 * when it sent bytes in between, so a peer that sends a little every 10 s
 * cannot hold a transfer for long.
 */
export const MAX_STALLS_PER_SOURCE = 5

/** Stalls of one source during one transfer, which decide whether to request the rest from it again. */
export class StallCount {
  private inRow = 0
  private total = 0

  /**
   * Records a stall; `progressed` is true when the source sent bytes since
   * it was last requested. Returns true while the source may be requested again.
   */
  record (progressed: boolean): boolean {
    this.total++
    this.inRow = progressed ? 1 : this.inRow + 1
    return this.inRow <= MAX_STALLS_IN_ROW && this.total <= MAX_STALLS_PER_SOURCE
  }
}
