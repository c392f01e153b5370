/**
 * Logging of rejected records, limited per minute so that a peer sending
 * forged records in a loop cannot flood the log. Rejections beyond the limit
 * are counted and the count is logged with the next line that gets through.
 */
import { RecordEnvelope } from '@libp2p/peer-record'
import { TagRecord as TagRecordMessage } from '../../protocol/messages/tag-record.js'
import type { Logger } from '@libp2p/interface'

/** Facts about a rejected record that a log line names. */
export interface Rejection {
  /** Peer the record came from, when it came from the network. */
  from?: string
  repository?: string
  tag?: string
  publisher?: string
  reason: string
}

/**
 * Reads repository and tag from an envelope without checking its signature.
 * The result only names a forged or malformed record in the log, and it is
 * an empty object when even that decoding fails.
 */
export function describeUnverifiedEnvelope (bytes: Uint8Array): { repository?: string, tag?: string } {
  try {
    const message = TagRecordMessage.decode(RecordEnvelope.createFromProtobuf(bytes).payload)
    return { repository: message.repository.slice(0, 255), tag: message.tag.slice(0, 128) }
  } catch {
    return {}
  }
}

/** Logs rejections, at most `maxPerMinute` lines per minute. */
export class RejectionLog {
  private readonly log: Logger
  private readonly maxPerMinute: number
  private readonly now: () => number
  private windowStartMs = -Infinity
  private loggedInWindow = 0
  private suppressed = 0

  constructor (log: Logger, maxPerMinute: number, now: () => number = Date.now) {
    this.log = log
    this.maxPerMinute = maxPerMinute
    this.now = now
  }

  /** Logs one rejection, or counts it when the limit for this minute is reached. */
  report (rejection: Rejection): void {
    const nowMs = this.now()
    if (nowMs - this.windowStartMs >= 60_000 || nowMs < this.windowStartMs) {
      this.windowStartMs = nowMs
      this.loggedInWindow = 0
    }

    if (this.loggedInWindow >= this.maxPerMinute) {
      this.suppressed++
      return
    }

    this.loggedInWindow++
    const suppressed = this.suppressed
    this.suppressed = 0

    this.log.error('rejected tag record %s:%s from peer %s (publisher %s): %s%s',
      rejection.repository ?? '?', rejection.tag ?? '?', rejection.from ?? 'local', rejection.publisher ?? 'unknown',
      rejection.reason, suppressed > 0 ? ` (${suppressed} earlier rejections not logged)` : '')
  }
}
