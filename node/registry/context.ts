/** Shared services and per-request state that every resource handler of the registry API receives. */
import { logger } from '@libp2p/logger'
import { RegistryError } from './errors.js'
import { anySignal } from '../net/signals.js'
import type { FetchBlobOptions, FetchedBlob, RegistryBackend } from './backend.js'
import type { Prefetcher } from './prefetch.js'
import type { ReferrersIndex } from './referrers-index.js'
import type { Resource, Route } from './route.js'
import type { UploadSessions } from './upload-sessions.js'
import type { OciDigest } from '../../protocol/digest.js'
import type { IncomingMessage, ServerResponse } from 'node:http'

const log = logger('kilomesh:registry')

/** Limits and timeouts of a running registry, with defaults applied. */
export interface RegistryLimits {
  maxUploadBytes: number
  resolveTimeoutMs: number
  fetchTimeoutMs: number
}

/** Services shared by all requests of one server. */
export interface RegistryContext {
  backend: RegistryBackend
  uploads: UploadSessions
  referrers: ReferrersIndex
  prefetcher: Prefetcher
  limits: RegistryLimits
}

/** One request being handled. */
export interface RegistryRequest {
  context: RegistryContext
  req: IncomingMessage
  res: ServerResponse
  route: Route
  /** Aborts when the client goes away or the server stops. */
  signal: AbortSignal
}

/** HTTP methods of the distribution API. */
export type Method = 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE'

/** A handler for one kind of resource. It sends the response or throws a RegistryError. */
export type ResourceHandler<K extends Resource['kind']> = (request: RegistryRequest, resource: Extract<Resource, { kind: K }>) => Promise<void>

/** Handlers of one kind of resource by HTTP method; HEAD falls back to GET's handler when absent. */
export type MethodHandlers<K extends Resource['kind']> = Partial<Record<Method, ResourceHandler<K>>>

/** Returns a signal that fires on the request's signal or after `timeoutMs`. */
export function withTimeout (signal: AbortSignal, timeoutMs: number): AbortSignal {
  return anySignal([signal, AbortSignal.timeout(timeoutMs)])
}

/** Size, size limit and parent manifest of a blob that a request fetches: see FetchBlobOptions. */
export type FetchHint = Pick<FetchBlobOptions, 'sizeBytes' | 'maxSizeBytes' | 'parent' | 'storeAtOnce'>

/** Fetches of one blob that may fail after they started, per request, before the client gets BLOB_UNKNOWN. */
const MAX_FETCH_ATTEMPTS = 2

/** A blob the store already has: nothing to wait for. */
const IN_STORE: FetchedBlob = { stored: Promise.resolve(true) }

/**
 * Makes a blob available to serve. Waits for a background fetch in flight, returns at
 * once when the store has the blob, else requests it from the mesh within
 * the fetch timeout. Returns undefined when no source has it in time (a
 * failed or timed-out fetch counts as that), and throws UNAVAILABLE when the
 * request was cancelled. With `stream`, a large blob may come back while it
 * is still arriving (`arriving`). Without it, the call waits until the blob
 * is verified, and fetches it again when that transfer fails.
 */
export async function ensureLocal (request: RegistryRequest, digest: OciDigest, hint: FetchHint = {}, options: { stream?: boolean } = {}): Promise<FetchedBlob | undefined> {
  for (let attempt = 1; ; attempt++) {
    const fetched = await makeLocal(request, digest, hint)
    if (fetched?.arriving == null || options.stream === true) {
      return fetched
    }

    const bytes = await fetched.arriving.done
    if (bytes != null) {
      return { bytes, stored: fetched.stored }
    }
    request.signal.throwIfAborted()
    if (attempt >= MAX_FETCH_ATTEMPTS) {
      log('the transfers of %s failed %d times', digest, attempt)
      return undefined
    }
  }
}

async function makeLocal (request: RegistryRequest, digest: OciDigest, hint: FetchHint): Promise<FetchedBlob | undefined> {
  const { backend, limits, prefetcher } = request.context

  // A background fetch that found nothing may have run before a peer
  // connected, so a miss there still gets a fetch of its own. One whose
  // transfer failed after it started is passed over the same way.
  const prefetched = await prefetcher.pending(digest)
  if (prefetched != null && prefetched.arriving?.failed !== true) {
    return prefetched
  }

  if (await backend.store.has(digest)) {
    return IN_STORE
  }

  try {
    return await backend.fetchBlob(digest, { signal: request.signal, startTimeoutMs: limits.fetchTimeoutMs, ...hint })
  } catch (err) {
    if (request.signal.aborted) {
      throw new RegistryError('UNAVAILABLE', `request for ${digest} was cancelled`)
    }

    // A missed start or a failed fetch both mean no source in time, which the
    // client must learn as BLOB_UNKNOWN or MANIFEST_UNKNOWN (a 404), not as a
    // 500: containerd only moves on to its next mirror after a 404.
    log('fetch of %s through the mesh failed - %e', digest, err)
    return undefined
  }
}
