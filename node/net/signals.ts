/** Abort signal helpers shared by the agent's network code. */
import { setMaxListeners } from 'node:events'

/** Key of the property that keeps a combined signal's sources alive. */
const SOURCES = Symbol('kilomesh.sources')

/**
 * Returns a signal that aborts when any of `signals` aborts, like
 * `AbortSignal.any`, and keeps its sources alive for as long as it lives.
 * In Node.js 20.20, `AbortSignal.any` did not keep its sources alive. An
 * `AbortSignal.timeout` that nothing else referenced was garbage-collected
 * with its timer, so the combined signal never timed out. A registry
 * request waited 10 s for a mesh lookup bounded to 300 ms. The result may
 * be shared by many dials and streams, each listening on it, so Node's
 * listener-count warning is lifted for it.
 */
export function anySignal (signals: AbortSignal[]): AbortSignal {
  const combined: AbortSignal & { [SOURCES]?: AbortSignal[] } = AbortSignal.any(signals)
  combined[SOURCES] = signals
  setMaxListeners(Infinity, combined)
  return combined
}

/** Combines a timeout with an optional caller signal (see anySignal). */
export function timeoutSignal (timeoutMs: number, signal?: AbortSignal): AbortSignal {
  return anySignal([AbortSignal.timeout(timeoutMs), ...(signal != null ? [signal] : [])])
}

/** Waits `delayMs`, or rejects with the signal's reason once `signal` aborts. */
export async function sleep (delayMs: number, signal?: AbortSignal): Promise<void> {
  signal?.throwIfAborted()
  if (delayMs <= 0) {
    return
  }

  await new Promise<void>((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer)
      reject(signal?.reason instanceof Error ? signal.reason : new Error('aborted'))
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, delayMs)
    signal?.addEventListener('abort', onAbort, { once: true })
  })
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

/**
 * The signal of work that several callers share, such as one transfer of a
 * blob that two requests wait for. It aborts once every caller that joined
 * has given up, so one caller that leaves does not cancel the others.
 */
export class SharedWorkSignal {
  private readonly controller = new AbortController()
  private callers = 0

  get signal (): AbortSignal {
    return this.controller.signal
  }

  /** True once every caller gave up, so the work is being cancelled. */
  get aborted (): boolean {
    return this.controller.signal.aborted
  }

  /**
   * Counts a caller in until its own signal aborts or it calls the returned
   * `leave`. A caller without a signal keeps the work going until it leaves.
   * Leaving without an abort, after the work ended, cancels nothing.
   */
  join (signal?: AbortSignal): () => void {
    this.callers++
    let left = false
    const leave = (gaveUp: boolean): void => {
      if (left) {
        return
      }
      left = true
      signal?.removeEventListener('abort', onAbort)
      this.callers--
      if (gaveUp && this.callers === 0) {
        this.controller.abort(signal?.reason instanceof Error ? signal.reason : new Error('every caller gave up'))
      }
    }
    const onAbort = (): void => { leave(true) }
    if (signal?.aborted === true) {
      leave(true)
    } else {
      signal?.addEventListener('abort', onAbort, { once: true })
    }
    return () => { leave(false) }
  }
}

/**
 * Returns a signal that aborts with `signal`, or at `deadlineMs` (on the
 * `Date.now()` clock) unless `started()` returns true then. Work that has
 * started by its deadline runs on until `signal` aborts or it ends by
 * itself, so a slow transfer that keeps making progress is not cut. Call
 * `clear` when the work ends.
 */
export function startDeadline (signal: AbortSignal | undefined, deadlineMs: number, started: () => boolean, onMissed: () => Error): { signal: AbortSignal, clear: () => void } {
  const controller = new AbortController()
  setMaxListeners(Infinity, controller.signal)

  const onAbort = (): void => { controller.abort(signal?.reason) }
  const timer = setTimeout(() => {
    if (!started()) {
      controller.abort(onMissed())
    }
  }, Math.max(0, deadlineMs - Date.now()))

  if (signal?.aborted === true) {
    onAbort()
  } else {
    signal?.addEventListener('abort', onAbort, { once: true })
  }
  return {
    signal: controller.signal,
    clear: () => {
      clearTimeout(timer)
      signal?.removeEventListener('abort', onAbort)
    }
  }
}
