/** Abort signal helpers shared by the agent's network code. */
import { setMaxListeners } from 'node:events'

/**
 * Combines a timeout with an optional caller signal. The result is shared by
 * many concurrent dials and streams, each of which listens on it, so Node's
 * listener-count warning is lifted for it.
 */
export function timeoutSignal (timeoutMs: number, signal?: AbortSignal): AbortSignal {
  const combined = AbortSignal.any([AbortSignal.timeout(timeoutMs), ...(signal != null ? [signal] : [])])
  setMaxListeners(Infinity, combined)
  return combined
}
