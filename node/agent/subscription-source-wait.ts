/**
 * Whether the pulls of one subscribed version find a source. The pull queue
 * keeps one per tag, so that `kilomesh subscriptions` can report that a tag
 * waits for a source, and since when, instead of only "pulling".
 */

/**
 * Default time without a received byte after which a running pull counts as
 * waiting for a source, in ms. A subscribed pull with no holder in reach
 * keeps looking for a minute before the attempt fails, and this reports
 * that wait early.
 */
export const DEFAULT_WAITING_FOR_SOURCE_AFTER_MS = 5000

/**
 * Names of the errors that mean no peer delivered the blobs: the fetcher
 * found no source, or the attempt timed out. Another attempt can succeed
 * once a source is reachable.
 */
const SOURCE_ERRORS: ReadonlySet<string> = new Set(['NoSourceError', 'PullTimeoutError'])

/** Returns true when `err` means that no peer delivered the blobs. */
export function isSourceError (err: unknown): boolean {
  return err instanceof Error && SOURCE_ERRORS.has(err.name)
}

/** Timestamps of the attempts at one version, from which the wait for a source is derived. */
export class SourceWait {
  /** Start of the latest attempt. */
  lastAttemptStartedMs?: number
  /** Latest attempt start or received chunk. */
  private lastActivityMs?: number
  /** Set when an attempt failed for lack of a source: the last activity before it. */
  private failedSinceMs?: number

  /** @param waitingAfterMs time without activity after which a running attempt counts as waiting */
  constructor (private readonly waitingAfterMs = DEFAULT_WAITING_FOR_SOURCE_AFTER_MS) {}

  attemptStarted (nowMs: number): void {
    this.lastAttemptStartedMs = nowMs
    this.lastActivityMs = nowMs
  }

  /** Records received bytes, which show that a source is sending. */
  progressed (nowMs: number): void {
    this.lastActivityMs = nowMs
    this.failedSinceMs = undefined
  }

  /** Records a failed attempt. Only a failure for lack of a source starts or continues a wait. */
  failed (err: unknown, nowMs: number): void {
    if (!isSourceError(err)) {
      this.failedSinceMs = undefined
      return
    }
    this.failedSinceMs ??= this.lastActivityMs ?? nowMs
  }

  /** Forgets every attempt, for a new version. */
  reset (): void {
    this.lastAttemptStartedMs = undefined
    this.lastActivityMs = undefined
    this.failedSinceMs = undefined
  }

  /**
   * Returns the time since which no source sent anything: since the last
   * activity before a failure for lack of a source, or, while an attempt
   * runs, since its last activity once that is `waitingAfterMs` old. Returns undefined when a source is sending or the last failure had
   * another cause.
   */
  waitingSince (running: boolean, nowMs: number): number | undefined {
    if (this.failedSinceMs != null) {
      return this.failedSinceMs
    }

    if (running && this.lastActivityMs != null && nowMs - this.lastActivityMs >= this.waitingAfterMs) {
      return this.lastActivityMs
    }
    return undefined
  }
}
