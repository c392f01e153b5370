/** Defaults of the agent's networking, with units in their names. */

/** Inbound blob streams one connection may have open at once. */
export const MAX_INBOUND_BLOB_STREAMS = 32

/** Outbound blob streams one connection may have open at once. */
export const MAX_OUTBOUND_BLOB_STREAMS = 32

/** Inbound resolve streams one connection may have open at once. */
export const MAX_INBOUND_RESOLVE_STREAMS = 8

/** Time a peer has to send its request after opening a stream. */
export const REQUEST_TIMEOUT_MS = 10_000

/** A transfer that delivers no byte for this long is a stall: the client moves to another source. */
export const STALL_TIMEOUT_MS = 10_000

/**
 * Maximum time a transfer's stream may receive nothing while its peer's
 * connection still receives bytes, before the transfer counts as stalled.
 * A 256 KiB yamux frame takes about 60 s at 4.4 kB/s.
 */
export const MAX_STREAM_QUIET_MS = 60_000

/**
 * Bytes a peer's connections must receive during one stall timeout for a
 * quiet stream of that peer to get more time. A ping or a DHT message is
 * well below it, and a link of 1.6 kB/s reaches it.
 */
export const BUSY_CONNECTION_MIN_BYTES = 16 * 1024

/** Upper bound on one blob transfer, whatever its progress. */
export const MAX_TRANSFER_TIME_MS = 10 * 60_000

/** Time to wait for the responses of connected peers when resolving a tag. */
export const RESOLVE_TIMEOUT_MS = 3_000

/** How long a peer that sent bytes not matching their digest is not asked for blobs again. */
export const PENALTY_DURATION_MS = 10 * 60_000

/**
 * Bytes the blob server reads from disk and sends at a time. With 256 KiB a
 * 1 MB layer takes 5 reads and sends instead of 17, which the agent benchmark
 * measured as faster than 64 KiB. Each upload holds up to two chunks in memory.
 */
export const BLOB_CHUNK_BYTES = 256 * 1024

/** First and largest delay between redials of a bootstrap peer. */
export const REDIAL_INITIAL_DELAY_MS = 1_000
export const REDIAL_MAX_DELAY_MS = 60_000

/**
 * Delay between storing a blob and starting its DHT provide, so that a pull's
 * next fetches do not share the event loop with DHT queries.
 */
export const PROVIDE_DELAY_MS = 50

/**
 * Minimum and maximum random delay before a blob fetched from a peer is
 * provided in the DHT. A rollout's transfers take seconds. With provides 1
 * to 10 s after each fetch, the 150 provides of a 50-agent rollout ran
 * during its transfers and took most of the CPU. Connected peers find a new
 * holder at once by asking it, so the DHT record can wait.
 */
export const FETCHED_PROVIDE_DELAY_MIN_MS = 5_000
export const FETCHED_PROVIDE_DELAY_MAX_MS = 30_000

/** Provide operations running at once. */
export const PROVIDE_CONCURRENCY = 4

/** Upper bound on one DHT provide. */
export const PROVIDE_TIMEOUT_MS = 30_000

/** Upper bound on one DHT provider lookup. */
export const FIND_PROVIDERS_TIMEOUT_MS = 5_000

/** Providers taken from one DHT lookup. */
export const MAX_PROVIDERS_PER_LOOKUP = 20

/** How long a provider that could not be dialled is skipped. */
export const DEAD_PROVIDER_MS = 10 * 60_000

/**
 * Copies of one blob larger than SMALL_BLOB_BYTES the server sends within
 * UPLOAD_WINDOW_MS before it responds BUSY. Three copies of the layers leave
 * room for the manifest and config, which go to more peers, so a publisher
 * of an image with layers of a few hundred KiB or more uploads fewer than
 * four copies of it.
 */
export const MAX_UPLOADS_PER_BLOB = 3

/**
 * Largest blob counted as small: manifests and configs. Sending one costs
 * next to nothing, while refusing it costs each device of a rollout a BUSY
 * round trip, often a new connection to a named holder, at every hop.
 */
export const SMALL_BLOB_BYTES = 64 * 1024

/**
 * Copies of one small blob the server sends within UPLOAD_WINDOW_MS before
 * it responds BUSY. It keeps a publisher's upload bounded however large the
 * fleet: 64 copies of a 64 KiB blob are 4 MiB.
 */
export const MAX_UPLOADS_PER_SMALL_BLOB = 64

/**
 * Window for MAX_UPLOADS_PER_BLOB and MAX_UPLOADS_PER_SMALL_BLOB. It outlasts a rollout to a few dozen
 * devices on one busy machine, so the publisher does not start a second
 * round of copies while the first recipients still serve the rest. A BUSY
 * response names those recipients, so a peer that is not connected to them
 * still finds a copy at once.
 */
export const UPLOAD_WINDOW_MS = 120_000

/**
 * Maximum time the blob server keeps a request waiting for a blob arriving
 * from another peer, before it responds. It stays below RESOLVE_TIMEOUT_MS,
 * the time a client gives a peer to respond whether it has a blob.
 */
export const ARRIVAL_WAIT_MS = 2_000

/** Max holders a BUSY response names, and a client accepts. */
export const MAX_HOLDER_HINTS = 4

/** Blob uploads the server runs at once, across all peers. */
export const MAX_CONCURRENT_UPLOADS = 8

/** First and largest wait before asking busy sources again. */
export const BUSY_RETRY_INITIAL_MS = 100
export const BUSY_RETRY_MAX_MS = 2_000

/** Connections the connectivity keeper tries to keep by dialling known peers. */
export const DEFAULT_MIN_CONNECTIONS = 4

/** How often the connectivity keeper checks the connection count. */
export const KEEPER_INTERVAL_MS = 5_000
