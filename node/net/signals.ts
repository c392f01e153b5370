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

/** Resolves or rejects as `promise` does, or rejects with the signal's reason once `signal` aborts. */
export async function raceAbort<T> (promise: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (signal == null) {
    return promise
  }
  signal.throwIfAborted()

  let onAbort = (): void => {}
  const aborted = new Promise<never>((_resolve, reject) => {
    onAbort = () => { reject(signal.reason instanceof Error ? signal.reason : new Error('aborted')) }
    signal.addEventListener('abort', onAbort, { once: true })
  })
  try {
    return await Promise.race([promise, aborted])
  } finally {
    signal.removeEventListener('abort', onAbort)
  }
}
