/** Defaults and fixed values of the OCI registry API. */

/** Default largest blob a client may push in one upload: 256 MiB, far above a micro image. */
export const DEFAULT_MAX_UPLOAD_BYTES = 256 * 1024 * 1024

/** Default time an upload may stay idle before it is dropped with its partial file. */
export const DEFAULT_UPLOAD_TTL_MS = 60 * 60 * 1000

/**
 * Default time to resolve a tag that is not in the local catalog by asking
 * peers. It stays short because a containerd mirror waits for this response
 * before it falls back to its next host.
 */
export const DEFAULT_RESOLVE_TIMEOUT_MS = 5_000

/**
 * Default time for a blob that is not local to start arriving through the
 * mesh. A transfer that started runs on while it makes progress.
 */
export const DEFAULT_FETCH_TIMEOUT_MS = 60_000

/** Default maximum of uploads in progress at once. Each one keeps a partial file in the upload folder. */
export const DEFAULT_MAX_UPLOADS = 64

/** Maximum entries in one page of `tags/list` or `_catalog`, whatever `n` requests. */
export const MAX_PAGE_ENTRIES = 1000

/** Value of the `Docker-Distribution-API-Version` header, which clients check on `/v2/`. */
export const API_VERSION = 'registry/2.0'

/** Maximum length of a request URL, in characters. A repository name is at most 255 of them. */
export const MAX_URL_LENGTH = 2048
