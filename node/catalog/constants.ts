/**
 * Defaults and limits of the tag catalog. Options in `CatalogInit` and
 * `TrustConfig` fall back to these values.
 */

/** Versions kept per tag that lost the merge or were replaced. */
export const DEFAULT_MAX_HISTORY = 10

/** Largest accepted `maxHistory`, so that one tag cannot grow its stored entry without bound. */
export const MAX_HISTORY_LIMIT = 1000

/**
 * Maximum lead, in milliseconds, of a record's HLC wall time over the
 * reference clock; a record further ahead is held back instead of applied.
 */
export const DEFAULT_MAX_FUTURE_SKEW_MS = 5 * 60 * 1000

/** Most records held back for being in the future, over all tags. */
export const MAX_HELD_RECORDS = 256

/** Interval, in milliseconds, at which held-back records are checked against the clock again. */
export const HELD_RECHECK_INTERVAL_MS = 15 * 1000

/** Most peers whose clock offset is remembered for the reference clock. */
export const MAX_PEER_CLOCKS = 32

/** Most rejected records logged per minute; further rejections are only counted. */
export const MAX_REJECTION_LOGS_PER_MINUTE = 20

/** Datastore key prefix of the winner and history of each tag. */
export const TAG_KEY_PREFIX = '/kilomesh/catalog/tags'

/** Datastore key prefix of the first-use owner of each repository. */
export const OWNER_KEY_PREFIX = '/kilomesh/catalog/owners'
