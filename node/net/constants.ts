/** Defaults of the agent's networking, with units in their names. */

/** Inbound blob streams one connection may have open at once. */
export const MAX_INBOUND_BLOB_STREAMS = 16

/** Outbound blob streams one connection may have open at once. */
export const MAX_OUTBOUND_BLOB_STREAMS = 16

/** Inbound resolve streams one connection may have open at once. */
export const MAX_INBOUND_RESOLVE_STREAMS = 8

/** Time a peer has to send its request after opening a stream. */
export const REQUEST_TIMEOUT_MS = 10_000

/** A transfer that delivers no byte for this long is a stall: the client moves to another source. */
export const STALL_TIMEOUT_MS = 10_000

/** Upper bound on one blob transfer, whatever its progress. */
export const MAX_TRANSFER_TIME_MS = 10 * 60_000

/** Time to wait for the answers of connected peers when resolving a tag. */
export const RESOLVE_TIMEOUT_MS = 3_000

/** How long a peer that sent bytes not matching their digest is not asked for blobs again. */
export const PENALTY_DURATION_MS = 10 * 60_000

/** Chunk size used when streaming blob bytes. */
export const BLOB_CHUNK_BYTES = 64 * 1024

/** First and largest delay between redials of a bootstrap peer. */
export const REDIAL_INITIAL_DELAY_MS = 1_000
export const REDIAL_MAX_DELAY_MS = 60_000
