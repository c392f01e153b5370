/**
 * Defaults and limits of the sync service on top of the wire limits in
 * protocol/sync.ts.
 */

/** Interval between syncs with a random connected peer, in milliseconds; each wait is jittered by up to a quarter. */
export const DEFAULT_SYNC_INTERVAL_MS = 30_000

/** Maximum duration of a whole session, in milliseconds, before it is aborted. */
export const SYNC_SESSION_TIMEOUT_MS = 60_000

/** Maximum wait for the peer's next message, in milliseconds. */
export const SYNC_MESSAGE_TIMEOUT_MS = 15_000

/** Rejected records after which a session is aborted, since an honest peer sends records that verify. */
export const MAX_REJECTED_RECORDS_PER_SESSION = 32

/** Most sessions, inbound and outbound together, that run at once. */
export const MAX_CONCURRENT_SESSIONS = 8

/** Most inbound sync streams open at once on one connection. */
export const MAX_INBOUND_STREAMS_PER_CONNECTION = 2

/** Sessions tried on a new connection before waiting for the periodic sync. */
export const CONNECT_SYNC_ATTEMPTS = 4

/** Base delay between those tries; it grows with each try and is jittered. */
export const CONNECT_SYNC_RETRY_MS = 250
