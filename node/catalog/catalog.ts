/**
 * The catalog of tags: a state-based CRDT that keeps, per repository and
 * tag, the signed record that wins the merge rule (see merge.ts), plus a
 * bounded history of the versions that lost or were replaced. It is
 * persisted in the agent's datastore and reloaded on start.
 *
 * Records whose HLC wall time is more than `maxFutureSkewMs` ahead of the
 * reference clock (reference-clock.ts) are held back in memory and merged
 * once the clock catches up, so a bad clock on one device cannot pin a tag.
 */
import { logger } from '@libp2p/logger'
import { InvalidRecordError } from '../../protocol/errors.js'
import { formatHlc, nextHlc as computeNextHlc, type Hlc } from '../../protocol/hlc.js'
import { openTagRecord, tagKey, type SignedTagRecord } from '../../protocol/tag-record.js'
import { DEFAULT_MAX_FUTURE_SKEW_MS, DEFAULT_MAX_HISTORY, HELD_RECHECK_INTERVAL_MS, MAX_HELD_RECORDS, MAX_HISTORY_LIMIT, MAX_REJECTION_LOGS_PER_MINUTE, OWNER_KEY_PREFIX, TAG_KEY_PREFIX } from './constants.js'
import { CatalogNotStartedError, InvalidCatalogOptionError } from './errors.js'
import { HeldRecords } from './held-records.js'
import { compareSignedRecords, insertHistory, keyOf } from './merge.js'
import { decodeTagEntry, encodeTagEntry, ownerKey, repositoryOfOwnerKey, tagEntryKey, type TagEntry } from './persistence.js'
import { ReferenceClock } from './reference-clock.js'
import { describeUnverifiedEnvelope, RejectionLog } from './rejection-log.js'
import { TrustPolicy } from './trust.js'
import type { AbortOptions } from '@libp2p/interface'
import type { Datastore } from 'interface-datastore'

const log = logger('kilomesh:catalog')

export interface CatalogInit {
  /** Versions kept per tag that lost or were replaced. @default 10 */
  maxHistory?: number
  /** How far ahead of the reference clock a record may be before it is held back, in ms. @default 300000 */
  maxFutureSkewMs?: number
  /** Policy that decides which publishers are accepted for which repositories. @default first-use policy with no entries */
  trust?: TrustPolicy
  /** Clock in milliseconds since the Unix epoch, injectable for tests of bad clocks. @default Date.now */
  now?: () => number
}

export type AddStatus = 'applied' | 'stale' | 'duplicate' | 'rejected' | 'held'

export interface AddResult {
  status: AddStatus
  /** Reason the record was rejected or held. */
  reason?: string
  /** The tag's winner after the call. */
  current?: SignedTagRecord
}

/** Counts of `add` results since start, by status. */
export type CatalogStats = Record<AddStatus, number>

type ChangeListener = (current: SignedTagRecord, previous: SignedTagRecord | undefined) => void

export class Catalog {
  readonly trust: TrustPolicy
  private readonly datastore: Datastore
  private readonly maxHistory: number
  private readonly maxFutureSkewMs: number
  private readonly clock: ReferenceClock
  private readonly entries = new Map<string, TagEntry>()
  private readonly held = new HeldRecords(MAX_HELD_RECORDS)
  private readonly lastIssued = new Map<string, Hlc>()
  private readonly listeners = new Set<ChangeListener>()
  private readonly rejections = new RejectionLog(log, MAX_REJECTION_LOGS_PER_MINUTE)
  private readonly counts: CatalogStats = { applied: 0, stale: 0, duplicate: 0, rejected: 0, held: 0 }
  /** Serialises every change so that each one reads the state the previous one wrote. */
  private queue: Promise<unknown> = Promise.resolve()
  private started = false
  private recheckTimer: ReturnType<typeof setInterval> | undefined
  private changeCount = 0

  constructor (components: { datastore: Datastore }, init: CatalogInit = {}) {
    this.datastore = components.datastore
    this.maxHistory = init.maxHistory ?? DEFAULT_MAX_HISTORY
    this.maxFutureSkewMs = init.maxFutureSkewMs ?? DEFAULT_MAX_FUTURE_SKEW_MS
    this.trust = init.trust ?? new TrustPolicy()
    this.clock = new ReferenceClock(init.now ?? Date.now)

    if (!Number.isInteger(this.maxHistory) || this.maxHistory < 0 || this.maxHistory > MAX_HISTORY_LIMIT) {
      throw new InvalidCatalogOptionError(`invalid maxHistory ${this.maxHistory}: use an integer from 0 to ${MAX_HISTORY_LIMIT}`)
    }

    if (!Number.isSafeInteger(this.maxFutureSkewMs) || this.maxFutureSkewMs < 0) {
      throw new InvalidCatalogOptionError(`invalid maxFutureSkewMs ${this.maxFutureSkewMs}: use a non-negative integer number of milliseconds, for example 300000 for five minutes`)
    }
  }

  /** Loads the persisted records and first-use owners; calling it again does nothing. */
  async start (options?: AbortOptions): Promise<void> {
    if (this.started) {
      return
    }

    for await (const { key, value } of this.datastore.query({ prefix: `${OWNER_KEY_PREFIX}/` }, options)) {
      this.trust.setOwner(repositoryOfOwnerKey(key), new TextDecoder().decode(value))
    }

    let damaged = 0
    for await (const { key, value } of this.datastore.query({ prefix: `${TAG_KEY_PREFIX}/` }, options)) {
      try {
        const entry = decodeTagEntry(value)
        this.entries.set(keyOf(entry.winner), entry)
      } catch (err) {
        damaged++
        log.error('skipped damaged catalog entry %s: %e', key.toString(), err)
      }
    }

    this.recheckTimer = setInterval(() => { this.releaseHeld().catch(err => { log.error('releasing held records failed: %e', err) }) }, HELD_RECHECK_INTERVAL_MS)
    this.recheckTimer.unref?.()
    this.started = true
    log('started with %d tags and %d first-use owners%s', this.entries.size, this.trust.listOwners().length, damaged > 0 ? `, ${damaged} damaged entries skipped` : '')
  }

  /** Stops the held-record timer and waits for pending writes; calling it again does nothing. */
  async stop (): Promise<void> {
    if (!this.started) {
      return
    }

    this.started = false
    clearInterval(this.recheckTimer)
    await this.queue.catch(() => {})
    log('stopped')
  }

  /** Returns the winner of a tag, tombstones included. */
  get (repository: string, tag: string): SignedTagRecord | undefined {
    return this.entries.get(tagKey(repository, tag))?.winner
  }

  /** Returns the winners of all tags, sorted by tag key. */
  list (): SignedTagRecord[] {
    return [...this.entries.keys()].sort().map(key => (this.entries.get(key) as TagEntry).winner)
  }

  /** Returns the versions of a tag that lost or were replaced, newest first. */
  history (repository: string, tag: string): SignedTagRecord[] {
    return [...(this.entries.get(tagKey(repository, tag))?.history ?? [])]
  }

  /** Returns the records held back for being in the future. */
  heldRecords (): SignedTagRecord[] {
    return this.held.all()
  }

  /** Returns the records sync reconciles with peers: every winner plus every held record. */
  syncRecords (): SignedTagRecord[] {
    return [...[...this.entries.values()].map(entry => entry.winner), ...this.held.all()]
  }

  /** Grows by one on every change of the sync records, so callers can cache what they derive from them. */
  get version (): number {
    return this.changeCount
  }

  /** Returns counts of `add` results by status since the catalog was created. */
  stats (): CatalogStats {
    return { ...this.counts }
  }

  /** Returns the local clock in ms, as sync reports it to peers. */
  localNowMs (): number {
    return this.clock.localNowMs()
  }

  /** Returns the reference clock in ms: the local clock, raised to the median of peer clocks when that is ahead. */
  referenceNowMs (): number {
    return this.clock.nowMs()
  }

  /**
   * Returns the timestamp for a new local record of a tag: greater than the
   * reference clock, than every record seen for the tag and than every
   * timestamp this method returned before for it.
   */
  nextHlc (repository: string, tag: string): Hlc {
    const key = tagKey(repository, tag)
    const seen: Hlc[] = []
    const entry = this.entries.get(key)
    if (entry != null) {
      seen.push(entry.winner.record.hlc)
    }

    const issued = this.lastIssued.get(key)
    if (issued != null) {
      seen.push(issued)
    }

    const hlc = computeNextHlc(this.clock.nowMs(), seen)
    this.lastIssued.set(key, hlc)
    return hlc
  }

  /** Records the clock a peer reported, then merges held records that the new reference clock allows. */
  observePeerClock (peerId: string, peerClockMs: number): void {
    this.clock.observe(peerId, peerClockMs)
    if (this.held.size > 0 && this.started) {
      this.releaseHeld().catch(err => { log.error('releasing held records failed: %e', err) })
    }
  }

  /** Merges a record whose signature was already checked (openTagRecord/signTagRecord). */
  async add (signed: SignedTagRecord, options?: AbortOptions & { from?: string }): Promise<AddResult> {
    return this.exclusive(async () => this.merge(signed, options))
  }

  /** Opens, verifies and merges an envelope received from a peer. */
  async addEnvelope (envelope: Uint8Array, options?: AbortOptions & { from?: string }): Promise<AddResult> {
    let signed: SignedTagRecord
    try {
      signed = await openTagRecord(envelope, options)
    } catch (err) {
      if (!(err instanceof InvalidRecordError)) {
        throw err
      }

      this.counts.rejected++
      this.rejections.report({ ...describeUnverifiedEnvelope(envelope), from: options?.from, reason: err.message })
      return { status: 'rejected', reason: err.message }
    }

    // A copy detaches the record from the message buffer it was received in, which may be far larger.
    return this.add({ record: signed.record, envelope: new Uint8Array(signed.envelope) }, options)
  }

  /** Merges the held records that are no longer ahead of the reference clock by more than the allowed skew. */
  async releaseHeld (options?: AbortOptions): Promise<void> {
    await this.exclusive(async () => {
      for (const signed of this.held.takeDue(this.clock.nowMs() + this.maxFutureSkewMs)) {
        this.changeCount++
        await this.merge(signed, options)
      }
    })
  }

  /** Called after every change of a tag's winner. Returns a function that unsubscribes. */
  onChange (listener: ChangeListener): () => void {
    this.listeners.add(listener)
    return () => { this.listeners.delete(listener) }
  }

  private async exclusive<T> (task: () => Promise<T>): Promise<T> {
    const result = this.queue.then(task)
    this.queue = result.catch(() => {})
    return result
  }

  private async merge (signed: SignedTagRecord, options?: AbortOptions & { from?: string }): Promise<AddResult> {
    if (!this.started) {
      throw new CatalogNotStartedError('the catalog is not started: call start() before adding records')
    }

    const { record } = signed
    const key = keyOf(signed)
    const entry = this.entries.get(key)
    const current = entry?.winner

    if (entry != null && (compareSignedRecords(entry.winner, signed) === 0 || entry.history.some(old => compareSignedRecords(old, signed) === 0))) {
      return this.result('duplicate', current)
    }

    if (this.held.has(signed)) {
      return this.result('duplicate', current)
    }

    const decision = this.trust.check(record.publisher, record.repository)
    if (!decision.allowed) {
      this.rejections.report({ from: options?.from, repository: record.repository, tag: record.tag, publisher: record.publisher, reason: decision.reason })
      return this.result('rejected', current, decision.reason)
    }

    if (entry != null && compareSignedRecords(signed, entry.winner) < 0) {
      const history = insertHistory(entry.history, signed, this.maxHistory)
      if (history !== entry.history) {
        await this.write(key, { winner: entry.winner, history }, undefined, options)
      }

      return this.result('stale', current)
    }

    const limitMs = this.clock.nowMs() + this.maxFutureSkewMs
    if (record.hlc.wallMs > limitMs) {
      const dropped = this.held.hold(signed)
      this.changeCount++
      const reason = `record clock ${formatHlc(record.hlc)} is more than ${this.maxFutureSkewMs} ms ahead of the reference clock ${new Date(limitMs - this.maxFutureSkewMs).toISOString()}; it is held until the clock catches up`
      log('held %s from peer %s: %s', key, options?.from ?? 'local', reason)
      if (dropped != null) {
        log('dropped held record %s at %s because at most %d records are held', keyOf(dropped), formatHlc(dropped.record.hlc), MAX_HELD_RECORDS)
      }

      return this.result('held', current, reason)
    }

    const history = entry == null ? [] : insertHistory(entry.history, entry.winner, this.maxHistory)
    const claimOwner = decision.claimsOwnership && this.trust.ownerOf(record.repository) == null ? record.publisher : undefined
    await this.write(key, { winner: signed, history }, claimOwner, options)

    if (claimOwner != null) {
      this.trust.setOwner(record.repository, claimOwner)
      log('repository %s now belongs to its first publisher %s', record.repository, claimOwner)
    }

    this.changeCount++
    log('applied %s -> %s at %s from peer %s', key, record.deleted ? 'tombstone' : record.digest, formatHlc(record.hlc), options?.from ?? 'local')
    this.notify(signed, current)
    return this.result('applied', signed)
  }

  /** Persists one tag entry, and a first-use owner with it, in one atomic batch, then updates memory. */
  private async write (key: string, entry: TagEntry, owner: string | undefined, options?: AbortOptions): Promise<void> {
    const batch = this.datastore.batch()
    batch.put(tagEntryKey(key), encodeTagEntry(entry))
    if (owner != null) {
      batch.put(ownerKey(entry.winner.record.repository), new TextEncoder().encode(owner))
    }

    await batch.commit(options)
    this.entries.set(key, entry)
  }

  private result (status: AddStatus, current: SignedTagRecord | undefined, reason?: string): AddResult {
    this.counts[status]++
    return { status, current, ...(reason != null ? { reason } : {}) }
  }

  private notify (current: SignedTagRecord, previous: SignedTagRecord | undefined): void {
    for (const listener of this.listeners) {
      try {
        listener(current, previous)
      } catch (err) {
        log.error('catalog change listener failed for %s: %e', keyOf(current), err)
      }
    }
  }
}
