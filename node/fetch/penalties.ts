/**
 * Peers that sent bytes which did not match their digest. They are not asked
 * for blobs again until their penalty expires, so one bad peer costs at most
 * one wasted transfer.
 */
import { logger } from '@libp2p/logger'
import { PENALTY_DURATION_MS } from '../net/constants.js'

const log = logger('kilomesh:penalties')

export class PeerPenalties {
  private readonly untilMs = new Map<string, number>()
  /** Number of penalties given since start, for status output. */
  count = 0

  constructor (private readonly durationMs = PENALTY_DURATION_MS, private readonly now: () => number = Date.now) {}

  penalise (peer: string, reason: string): void {
    this.untilMs.set(peer, this.now() + this.durationMs)
    this.count++
    log.error('penalised %s for %d ms: %s', peer, this.durationMs, reason)
  }

  isPenalised (peer: string): boolean {
    const until = this.untilMs.get(peer)
    if (until == null) {
      return false
    }

    if (until <= this.now()) {
      this.untilMs.delete(peer)
      return false
    }
    return true
  }

  /** Peers currently penalised. */
  list (): string[] {
    return [...this.untilMs.keys()].filter(peer => this.isPenalised(peer))
  }
}
