/**
 * Hybrid logical clock timestamps for tag records. A timestamp is wall clock
 * milliseconds plus a counter, so a device whose clock is behind still
 * produces a timestamp greater than every one it has seen.
 */

/** A hybrid logical clock timestamp. */
export interface Hlc {
  /** Wall clock time in milliseconds since the Unix epoch, or the greatest seen so far. */
  wallMs: number
  /** Tie breaker among timestamps with the same `wallMs`. */
  counter: number
}

/** Largest counter value; a record needing more is rejected rather than wrapped. */
export const MAX_HLC_COUNTER = 0xffffffff

/** Orders two timestamps: negative when `a` is older, zero when equal, positive when newer. */
export function compareHlc (a: Hlc, b: Hlc): number {
  if (a.wallMs !== b.wallMs) {
    return a.wallMs < b.wallMs ? -1 : 1
  }

  return a.counter === b.counter ? 0 : (a.counter < b.counter ? -1 : 1)
}

/**
 * Returns a timestamp greater than the local clock reading and than every
 * timestamp in `seen`: max(now, seen) with the counter bumped on a tie.
 */
export function nextHlc (nowMs: number, seen: Iterable<Hlc>): Hlc {
  let latest: Hlc = { wallMs: 0, counter: 0 }
  for (const hlc of seen) {
    if (compareHlc(hlc, latest) > 0) {
      latest = hlc
    }
  }

  if (nowMs > latest.wallMs) {
    return { wallMs: Math.floor(nowMs), counter: 0 }
  }

  if (latest.counter >= MAX_HLC_COUNTER) {
    return { wallMs: latest.wallMs + 1, counter: 0 }
  }

  return { wallMs: latest.wallMs, counter: latest.counter + 1 }
}

/** Formats a timestamp for logs and CLI output as ISO time plus counter. */
export function formatHlc (hlc: Hlc): string {
  const date = new Date(hlc.wallMs)
  const time = Number.isNaN(date.getTime()) ? String(hlc.wallMs) : date.toISOString()
  return `${time}#${hlc.counter}`
}
