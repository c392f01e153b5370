/**
 * `kilomesh rollback`: go back to the previous version of a tag. By default
 * for the whole fleet, by publishing the previous record's manifest again as
 * the tag's newest record, which every subscribed device then pulls. With
 * `local`, only this device goes back, and stays there until a version newer
 * than the one rolled back from is published.
 */
import { NoPreviousVersionError } from './errors.js'
import { logger } from '@libp2p/logger'
import { compareHlc, formatHlc } from '../../protocol/hlc.js'
import { parseReference } from '../../protocol/reference.js'
import { tagKey, type SignedTagRecord, type TagRecord } from '../../protocol/tag-record.js'
import { TagNotFoundError } from './errors.js'
import { publishTag } from './publish.js'
import { formatHold, updateConfig, type LocalHold } from './subscription-config.js'
import type { AgentContext } from './agent.js'
import type { OciDigest } from '../../protocol/digest.js'
import type { Catalog } from '../catalog/catalog.js'
import type { AbortOptions } from '@libp2p/interface'

const log = logger('kilomesh:rollback')

/** Returns the newest record of a tag older than the one with `digest`, skipping tombstones and that digest. */
export function findPreviousRecord (catalog: Catalog, repository: string, tag: string, digest: OciDigest | null): SignedTagRecord | undefined {
  const winner = catalog.get(repository, tag)
  const records = [...(winner != null ? [winner] : []), ...catalog.history(repository, tag)]
  const position = records.findIndex(signed => signed.record.digest === digest)
  return records.slice(position + 1).find(signed => !signed.record.deleted && signed.record.digest != null && signed.record.digest !== digest)
}

/** Returns true when `record` is a version newer than the one `hold` rolled back from, which ends the hold. */
export function endsHold (hold: LocalHold, record: TagRecord): boolean {
  if (record.deleted) {
    return false
  }

  const order = compareHlc(record.hlc, hold.from.hlc) || (record.publisher === hold.from.publisher ? 0 : (record.publisher > hold.from.publisher ? 1 : -1))
  return order > 0
}

/** The tags this device holds on an older version, kept in config.json's `holds`. */
export class LocalHolds {
  private readonly holds = new Map<string, LocalHold>()

  constructor (private readonly configPath: string, initial: LocalHold[]) {
    for (const hold of initial) {
      this.holds.set(tagKey(hold.repository, hold.tag), hold)
    }
  }

  get size (): number {
    return this.holds.size
  }

  get (repository: string, tag: string): LocalHold | undefined {
    return this.holds.get(tagKey(repository, tag))
  }

  all (): LocalHold[] {
    return [...this.holds.values()]
  }

  /** Sets or replaces a hold in memory; `save` stores it. */
  set (hold: LocalHold): void {
    this.holds.set(tagKey(hold.repository, hold.tag), hold)
  }

  /** Removes a hold from memory; returns false when there was none. */
  delete (repository: string, tag: string): boolean {
    return this.holds.delete(tagKey(repository, tag))
  }

  /** Writes the holds to config.json, removing the key when there are none. */
  async save (): Promise<void> {
    const holds = this.all().map(formatHold)
    await updateConfig(this.configPath, config => {
      if (holds.length === 0) {
        delete config.holds
      } else {
        config.holds = holds
      }
    })
  }
}

export interface RollbackOptions extends AbortOptions {
  /** Roll back only this device, holding it on the previous version. */
  local?: boolean
}

export interface RollbackResult {
  repository: string
  tag: string
  scope: 'fleet' | 'local'
  /** Digest of the version rolled back from. */
  from: OciDigest | null
  /** Digest of the version now in use. */
  to: OciDigest
  /** Clock of the new record, for a fleet rollback. */
  hlc?: string
  /** Peers the new record went to directly, for a fleet rollback. */
  announcedTo?: number
  /** Reason other agents are expected to reject the new record, such as a repository that another publisher owns. */
  warning?: string
}

function parseTagReference (reference: string): { repository: string, tag: string } {
  const parsed = parseReference(reference, { allowDigest: false })
  return { repository: parsed.repository, tag: parsed.tag ?? '' }
}

function describeHistory (context: AgentContext, repository: string, tag: string): string {
  const count = context.catalog.history(repository, tag).length
  return `the catalog keeps ${count} older record(s) of ${repository}:${tag} and none has another version`
}

/** Rolls `REPOSITORY:TAG` back to its previous version, for the fleet or, with `local`, for this device. */
export async function rollbackTag (context: AgentContext, reference: string, options: RollbackOptions = {}): Promise<RollbackResult> {
  const { repository, tag } = parseTagReference(reference)
  const winner = context.catalog.get(repository, tag)
  if (winner == null) {
    throw new TagNotFoundError(`tag ${repository}:${tag} is not known to this agent; check the name with "kilomesh images"`)
  }

  return options.local === true
    ? rollbackLocal(context, repository, tag, winner, options)
    : rollbackFleet(context, repository, tag, winner, options)
}

async function rollbackFleet (context: AgentContext, repository: string, tag: string, winner: SignedTagRecord, options: AbortOptions): Promise<RollbackResult> {
  const from = winner.record.deleted ? null : winner.record.digest
  const previous = findPreviousRecord(context.catalog, repository, tag, from)
  if (previous?.record.digest == null) {
    throw new NoPreviousVersionError(`${repository}:${tag} has no previous version to roll back to: ${describeHistory(context, repository, tag)}`)
  }

  const { digest, mediaType, sizeBytes } = previous.record
  const { signed, announcedTo } = await publishTag(context, repository, tag, { digest, mediaType, size: sizeBytes }, options)
  log('rolled %s:%s back from %s to %s for the fleet', repository, tag, from ?? 'a deleted tag', digest)
  return { repository, tag, scope: 'fleet', from, to: digest, hlc: formatHlc(signed.record.hlc), announcedTo }
}

async function rollbackLocal (context: AgentContext, repository: string, tag: string, winner: SignedTagRecord, options: AbortOptions): Promise<RollbackResult> {
  if (winner.record.deleted || winner.record.digest == null) {
    throw new NoPreviousVersionError(`${repository}:${tag} is deleted, so there is no version to hold this device back from; run "kilomesh rollback ${repository}:${tag}" without --local to restore the last version for the fleet`)
  }

  // A second local rollback goes one version further back, but the hold
  // still ends with a version newer than the first one rolled back from.
  const existing = context.subscriptions.holdOf(repository, tag)
  const inUse = existing?.version.digest ?? winner.record.digest
  const previous = findPreviousRecord(context.catalog, repository, tag, inUse)
  if (previous?.record.digest == null) {
    throw new NoPreviousVersionError(`${repository}:${tag} has no version older than ${inUse} to roll back to: ${describeHistory(context, repository, tag)}`)
  }

  const { digest, mediaType, sizeBytes } = previous.record
  const from = existing?.from ?? { digest: winner.record.digest, hlc: winner.record.hlc, publisher: winner.record.publisher }
  await context.subscriptions.hold({ repository, tag, version: { digest, mediaType, size: sizeBytes }, from }, options)
  log('rolled %s:%s back from %s to %s on this device', repository, tag, inUse, digest)
  return { repository, tag, scope: 'local', from: inUse, to: digest }
}

/** Ends a local rollback of `REPOSITORY:TAG`; returns false when the tag was not held. */
export async function releaseHold (context: AgentContext, reference: string): Promise<{ repository: string, tag: string, released: boolean }> {
  const { repository, tag } = parseTagReference(reference)
  return { repository, tag, released: await context.subscriptions.release(repository, tag) }
}
