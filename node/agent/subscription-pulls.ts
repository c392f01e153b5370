/**
 * The pull queue of subscribed tags. Per tag it keeps at most one pull
 * running; a newer version aborts an older one in progress and takes its
 * place. At most `maxConcurrentPulls` tags pull at once. A failed pull is
 * retried with capped exponential backoff, and at once when a peer connects,
 * because a source may just have become reachable. The status of a tag reports
 * when its pulls wait for a source, and since when.
 */
import { logger } from '@libp2p/logger'
import { tagKey } from '../../protocol/tag-record.js'
import { DEFAULT_WAITING_FOR_SOURCE_AFTER_MS, SourceWait } from './subscription-source-wait.js'
import type { OciDigest } from '../../protocol/digest.js'
import type { TagVersion } from '../store/pins.js'

const log = logger('kilomesh:subscriptions')

/** Default number of tags pulled at once. */
export const DEFAULT_MAX_CONCURRENT_PULLS = 2

/** Default delay before the first retry of a failed pull, in ms; it doubles on each failure. */
export const DEFAULT_RETRY_INITIAL_DELAY_MS = 1000

/** Default longest delay between two retries of a failed pull, in ms. */
export const DEFAULT_RETRY_MAX_DELAY_MS = 60_000

/** Delay between a new connection and the retry of waiting pulls, in ms, so that identify finishes first. */
const RETRY_AFTER_CONNECT_DELAY_MS = 500

// Failures that another attempt at the same version cannot fix; only a newer version is pulled then.
const PERMANENT_ERRORS = new Set(['InvalidManifestError', 'NoMatchingPlatformError', 'TagNotFoundError', 'InvalidDigestError'])

export interface PullQueueInit {
  /**
   * Makes `version` of a tag local and applies it; rejects when it could
   * not. Calls `onProgress` whenever bytes of the image arrive.
   */
  pull: (repository: string, tag: string, version: TagVersion, signal: AbortSignal, onProgress: () => void) => Promise<void>
  /** Tags pulled at once. @default 2 */
  maxConcurrentPulls?: number
  /** @default 1000 */
  retryInitialDelayMs?: number
  /** @default 60000 */
  retryMaxDelayMs?: number
  /** Time without received bytes after which a running pull reports waiting for a source, in ms. @default 5000 */
  waitingForSourceAfterMs?: number
}

/** State of the pull queue for one tag. */
export interface TagPullStatus {
  state: 'idle' | 'queued' | 'pulling' | 'retrying' | 'failed'
  /** Version being pulled or waiting to be. */
  digest?: OciDigest
  attempts: number
  error?: string
  retryInMs?: number
  /**
   * True when no peer has sent any of the version's missing blobs for a
   * while: the attempts so far failed for lack of a source, or the running
   * one has received nothing yet.
   */
  waitingForSource: boolean
  /** ISO 8601 time since which no source sent anything, when waitingForSource is true. */
  waitingSince?: string
  /** ISO 8601 start of the latest attempt at this version. */
  lastAttemptAt?: string
  /** ISO 8601 time of the next attempt, while a retry waits (state "retrying"). */
  nextAttemptAt?: string
}

interface TagPull {
  repository: string
  tag: string
  key: string
  /** Version to pull next; undefined when none is waiting. */
  target?: TagVersion
  running?: { version: TagVersion, controller: AbortController, done: Promise<Error | undefined> }
  attempts: number
  queued: boolean
  retryTimer?: NodeJS.Timeout
  retryAtMs?: number
  lastError?: string
  /** A version whose pull failed for good; it is not tried again. */
  failed?: OciDigest
  sourceWait: SourceWait
}

export class PullQueue {
  private readonly pulls = new Map<string, TagPull>()
  private readonly queue: string[] = []
  private readonly maxConcurrentPulls: number
  private readonly retryInitialDelayMs: number
  private readonly retryMaxDelayMs: number
  private readonly waitingForSourceAfterMs: number
  private running = 0
  private stopped = false
  private connectTimer?: NodeJS.Timeout

  constructor (private readonly init: PullQueueInit) {
    this.maxConcurrentPulls = init.maxConcurrentPulls ?? DEFAULT_MAX_CONCURRENT_PULLS
    this.retryInitialDelayMs = init.retryInitialDelayMs ?? DEFAULT_RETRY_INITIAL_DELAY_MS
    this.retryMaxDelayMs = init.retryMaxDelayMs ?? DEFAULT_RETRY_MAX_DELAY_MS
    this.waitingForSourceAfterMs = init.waitingForSourceAfterMs ?? DEFAULT_WAITING_FOR_SOURCE_AFTER_MS
  }

  /**
   * Sets the version a tag should have locally, or undefined when it has it
   * already or should not change. A different version in progress is aborted.
   */
  setTarget (repository: string, tag: string, version: TagVersion | undefined): void {
    if (this.stopped) {
      return
    }

    const key = tagKey(repository, tag)
    let state = this.pulls.get(key)
    if (version == null) {
      if (state != null) {
        this.clearRetry(state)
        state.target = undefined
        state.running?.controller.abort(new Error(`pull of ${key} is no longer needed`))
        this.forget(state)
      }
      return
    }

    // A pull of this very version that is still going on (not aborted) only needs waiting for.
    const running = state?.running
    if (state != null && running?.version.digest === version.digest && !running.controller.signal.aborted) {
      this.clearRetry(state)
      state.target = undefined
      return
    }

    if (state?.running == null && state?.failed === version.digest) {
      return
    }

    state ??= this.create(repository, tag)
    if (state.target?.digest !== version.digest) {
      state.attempts = 0
      state.sourceWait.reset()
      this.clearRetry(state)
    }
    state.target = version

    if (state.running != null) {
      log('%s -> %s supersedes the pull of %s in progress', key, version.digest, state.running.version.digest)
      state.running.controller.abort(new Error(`superseded by ${version.digest}`))
    } else if (state.retryTimer == null) {
      this.enqueue(state)
    }
  }

  /**
   * Pulls a version now, outside the concurrency limit, after aborting any
   * pull of the tag in progress. Rejects on failure, without retries.
   */
  async pullNow (repository: string, tag: string, version: TagVersion): Promise<void> {
    const state = this.pulls.get(tagKey(repository, tag)) ?? this.create(repository, tag)
    this.clearRetry(state)
    state.target = undefined
    state.failed = undefined

    while (state.running != null) {
      state.running.controller.abort(new Error(`replaced by a pull of ${version.digest}`))
      await state.running.done
    }

    const error = await this.run(state, version, false)
    if (error != null) {
      throw error
    }
  }

  /** Stops pulling a tag: aborts its pull and drops its pending retry. */
  cancel (repository: string, tag: string): void {
    this.setTarget(repository, tag, undefined)
    const state = this.pulls.get(tagKey(repository, tag))
    if (state != null) {
      state.failed = undefined
      this.forget(state)
    }
  }

  /** Retries every waiting pull shortly, without resetting its backoff; called when a peer connects. */
  retrySoon (): void {
    if (this.stopped || this.connectTimer != null || ![...this.pulls.values()].some(state => state.retryTimer != null)) {
      return
    }

    this.connectTimer = setTimeout(() => {
      this.connectTimer = undefined
      for (const state of this.pulls.values()) {
        if (state.retryTimer != null) {
          this.clearRetry(state)
          this.enqueue(state)
        }
      }
    }, RETRY_AFTER_CONNECT_DELAY_MS)
    this.connectTimer.unref()
  }

  status (repository: string, tag: string): TagPullStatus {
    const state = this.pulls.get(tagKey(repository, tag))
    if (state == null) {
      return { state: 'idle', attempts: 0, waitingForSource: false }
    }

    const nowMs = Date.now()
    const waitingSinceMs = state.sourceWait.waitingSince(state.running != null, nowMs)
    const lastAttemptMs = state.sourceWait.lastAttemptStartedMs
    const details = {
      attempts: state.attempts,
      ...(state.lastError != null ? { error: state.lastError } : {}),
      waitingForSource: waitingSinceMs != null,
      ...(waitingSinceMs != null ? { waitingSince: new Date(waitingSinceMs).toISOString() } : {}),
      ...(lastAttemptMs != null ? { lastAttemptAt: new Date(lastAttemptMs).toISOString() } : {})
    }

    if (state.running != null) {
      return { state: 'pulling', digest: state.running.version.digest, ...details }
    }
    if (state.retryAtMs != null) {
      return { state: 'retrying', digest: state.target?.digest, ...details, retryInMs: Math.max(0, state.retryAtMs - nowMs), nextAttemptAt: new Date(state.retryAtMs).toISOString() }
    }
    if (state.target != null) {
      return { state: 'queued', digest: state.target.digest, ...details }
    }
    if (state.failed != null) {
      return { state: 'failed', digest: state.failed, ...details }
    }
    return { state: 'idle', attempts: state.attempts, waitingForSource: false }
  }

  /** Aborts every pull, drops every retry and waits for the pulls to settle. */
  async stop (): Promise<void> {
    this.stopped = true
    clearTimeout(this.connectTimer)
    const running: Array<Promise<unknown>> = []
    for (const state of this.pulls.values()) {
      this.clearRetry(state)
      state.target = undefined
      if (state.running != null) {
        state.running.controller.abort(new Error('the agent is stopping'))
        running.push(state.running.done)
      }
    }
    this.queue.length = 0
    await Promise.allSettled(running)
  }

  private create (repository: string, tag: string): TagPull {
    const state: TagPull = { repository, tag, key: tagKey(repository, tag), attempts: 0, queued: false, sourceWait: new SourceWait(this.waitingForSourceAfterMs) }
    this.pulls.set(state.key, state)
    return state
  }

  private enqueue (state: TagPull): void {
    if (!state.queued) {
      state.queued = true
      this.queue.push(state.key)
    }
    this.pump()
  }

  private pump (): void {
    while (!this.stopped && this.running < this.maxConcurrentPulls && this.queue.length > 0) {
      const state = this.pulls.get(this.queue.shift() ?? '')
      if (state == null) {
        continue
      }

      state.queued = false
      if (state.target != null && state.running == null) {
        void this.run(state, state.target, true)
      }
    }
  }

  /** Runs one pull; resolves with its error, or undefined on success. With `retry`, failures are retried later. */
  private async run (state: TagPull, version: TagVersion, retry: boolean): Promise<Error | undefined> {
    state.target = undefined
    const controller = new AbortController()
    this.running++
    state.sourceWait.attemptStarted(Date.now())

    const done = (async () => {
      try {
        await this.init.pull(state.repository, state.tag, version, controller.signal, () => { state.sourceWait.progressed(Date.now()) })
        state.attempts = 0
        state.lastError = undefined
        state.failed = undefined
        state.sourceWait.reset()
        return undefined
      } catch (err: any) {
        if (!controller.signal.aborted) {
          state.sourceWait.failed(err, Date.now())
        }
        if (controller.signal.aborted) {
          log('pull of %s -> %s stopped: %s', state.key, version.digest, controller.signal.reason?.message)
        } else if (retry) {
          this.scheduleRetry(state, version, err)
        } else {
          state.lastError = err.message
        }
        return err instanceof Error ? err : new Error(String(err))
      }
    })()

    state.running = { version, controller, done }
    const error = await done
    this.running--
    state.running = undefined

    if (state.target != null && state.retryTimer == null) {
      this.enqueue(state)
    } else {
      this.forget(state)
    }
    this.pump()
    return error
  }

  private scheduleRetry (state: TagPull, version: TagVersion, err: any): void {
    state.lastError = err.message ?? String(err)
    if (PERMANENT_ERRORS.has(err.name)) {
      state.failed = version.digest
      log.error('pull of subscribed %s -> %s failed and is not retried; a newer version will be pulled when one is published: %e', state.key, version.digest, err)
      return
    }

    state.attempts++
    // Jitter of +-20 % keeps agents that failed together from retrying in lockstep.
    const backoffMs = Math.min(this.retryMaxDelayMs, this.retryInitialDelayMs * 2 ** Math.min(state.attempts - 1, 30))
    const delayMs = Math.round(backoffMs * (0.8 + 0.4 * Math.random()))
    state.target ??= version
    state.retryAtMs = Date.now() + delayMs
    state.retryTimer = setTimeout(() => {
      this.clearRetry(state)
      this.enqueue(state)
    }, delayMs)
    state.retryTimer.unref()

    const waitingSinceMs = state.sourceWait.waitingSince(false, Date.now())
    if (waitingSinceMs != null) {
      log('no peer in reach has sent subscribed %s -> %s since %s (attempt %d failed), retrying in %d ms: %s', state.key, version.digest, new Date(waitingSinceMs).toISOString(), state.attempts, delayMs, state.lastError)
      return
    }
    log('pull of subscribed %s -> %s failed (attempt %d), retrying in %d ms: %s', state.key, version.digest, state.attempts, delayMs, state.lastError)
  }

  private clearRetry (state: TagPull): void {
    clearTimeout(state.retryTimer)
    state.retryTimer = undefined
    state.retryAtMs = undefined
  }

  /** Drops the state of a tag with nothing left to do, keeping failures for status output. */
  private forget (state: TagPull): void {
    if (state.running == null && state.target == null && state.retryTimer == null && state.failed == null && !state.queued) {
      this.pulls.delete(state.key)
    }
  }
}
