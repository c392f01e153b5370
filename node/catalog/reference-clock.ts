/**
 * The clock against which the catalog judges whether a record comes from the
 * future. It is the local clock, raised to the median clock of recently seen
 * peers when that median is ahead. A device whose clock reads 1970 therefore
 * accepts the current records of its mesh as soon as it has heard the clock
 * of one peer. Peers with clocks far ahead move the reference only when they
 * are more than half of the peers heard from.
 */
import { MAX_PEER_CLOCKS } from './constants.js'
import { setMostRecent } from '../util/bounded-map.js'

/** Local clock plus the offsets of peer clocks. */
export class ReferenceClock {
  private readonly now: () => number
  /** Peer ID to (peer clock minus local clock), in insertion order so the oldest can be evicted. */
  private readonly offsetsMs = new Map<string, number>()
  private cachedMedianMs: number | undefined

  constructor (now: () => number) {
    this.now = now
  }

  /** Returns the local clock in milliseconds. */
  localNowMs (): number {
    return this.now()
  }

  /** Records the clock reading a peer sent; non-finite or negative readings are ignored. */
  observe (peerId: string, peerClockMs: number): void {
    if (!Number.isSafeInteger(peerClockMs) || peerClockMs < 0) {
      return
    }

    setMostRecent(this.offsetsMs, peerId, peerClockMs - this.now(), MAX_PEER_CLOCKS)

    this.cachedMedianMs = undefined
  }

  /** Returns the median offset of the peer clocks, or 0 when no peer has reported. */
  medianOffsetMs (): number {
    if (this.cachedMedianMs != null) {
      return this.cachedMedianMs
    }

    const offsets = [...this.offsetsMs.values()].sort((a, b) => a - b)
    if (offsets.length === 0) {
      return 0
    }

    // The lower median: with two peers, the one further ahead cannot decide alone.
    const medianMs = offsets[Math.floor((offsets.length - 1) / 2)] ?? 0
    this.cachedMedianMs = medianMs
    return medianMs
  }

  /** Returns max(local clock, local clock plus the median peer offset), in milliseconds. */
  nowMs (): number {
    const localMs = this.now()
    return localMs + Math.max(0, this.medianOffsetMs())
  }
}
