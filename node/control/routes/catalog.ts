/**
 * Control routes of the catalog commands: `tags`, `untag` and `trust`.
 * Trust changes apply to the running catalog at once and are written to the
 * `trust` section of config.json, so they survive a restart.
 */
import { logger } from '@libp2p/logger'
import { peerIdFromString } from '@libp2p/peer-id'
import { formatHlc } from '../../../protocol/hlc.js'
import { parseReference, parseRepository } from '../../../protocol/reference.js'
import { deleteTag } from '../../agent/publish.js'
import { updateConfig } from '../../agent/subscription-config.js'
import { InvalidTrustEntryError } from '../../catalog/errors.js'
import type { TrustEntry, TrustMode, TrustPolicy } from '../../catalog/trust.js'
import { RequestError, optionalString, requireString, type ControlRoute } from '../route.js'
import { withTrustWarning } from './trust-warning.js'
import type { AgentContext } from '../../agent/agent.js'
import type { CatalogStats } from '../../catalog/catalog.js'
import type { CatalogSyncStats } from '../../sync/catalog-sync.js'
import type { SignedTagRecord } from '../../../protocol/tag-record.js'

const log = logger('kilomesh:control')

/** One tag record as the control API returns it. */
export interface RecordView {
  /** Manifest digest; null in a tombstone. */
  digest: string | null
  mediaType: string
  sizeBytes: number
  deleted: boolean
  publisher: string
  /** The record's hybrid logical clock, formatted as ISO time plus counter. */
  hlc: string
  hlcWallMs: number
  hlcCounter: number
}

/** A tag with its winning record, the versions that lost or were replaced, and records held back for being in the future. */
export interface TagView {
  repository: string
  tag: string
  /** Null when the agent knows the tag only from held records. */
  current: RecordView | null
  /** Newest first. */
  history: RecordView[]
  held: RecordView[]
}

export interface TrustView {
  mode: TrustMode
  entries: TrustEntry[]
  /** First publisher of each repository that no entry covers, under mode "first-use". */
  owners: Array<{ repository: string, peerId: string }>
}

export interface UntagResult {
  repository: string
  tag: string
  hlc: string
  /** Set when, by this agent's own trust policy, other agents would reject the deletion. */
  warning?: string
}

export interface CatalogStatsView {
  catalog: CatalogStats
  sync: CatalogSyncStats
  tags: number
  heldRecords: number
  /** This device's clock, in ms since the Unix epoch. */
  localClockMs: number
  /** The clock records are judged against: the local clock, raised to the median of peer clocks when that is ahead. */
  referenceClockMs: number
}

function recordView ({ record }: SignedTagRecord): RecordView {
  return {
    digest: record.digest,
    mediaType: record.mediaType,
    sizeBytes: record.sizeBytes,
    deleted: record.deleted,
    publisher: record.publisher,
    hlc: formatHlc(record.hlc),
    hlcWallMs: record.hlc.wallMs,
    hlcCounter: record.hlc.counter
  }
}

/** Checks a peer ID from a request and returns its canonical string. */
function parsePeerIdField (value: string): string {
  try {
    return peerIdFromString(value).toString()
  } catch {
    throw new RequestError(400, `invalid peer ID ${JSON.stringify(value.slice(0, 100))}: expected a libp2p peer ID such as 12D3KooW...; copy the one that "kilomesh status" prints on the publishing device`, 'InvalidTrustEntryError')
  }
}

function trustView (trust: TrustPolicy): TrustView {
  return { mode: trust.mode, entries: trust.entries(), owners: trust.listOwners().sort((a, b) => a.repository.localeCompare(b.repository)) }
}

/**
 * Applies a change to the running trust policy and writes the policy's
 * entries to config.json, keeping every other key. `updateConfig` runs the
 * config.json rewrites of this process one at a time, so a trust change and a
 * subscription change cannot overwrite each other. When the write fails,
 * `undo` restores the running policy so memory and file agree.
 */
async function changeTrust<T> (configPath: string, trust: TrustPolicy, change: () => T, undo: (result: T) => void): Promise<T> {
  let applied: { result: T } | undefined
  try {
    return await updateConfig(configPath, config => {
      applied = { result: change() }
      const section = config.trust != null && typeof config.trust === 'object' ? config.trust : {}
      config.trust = { ...section, mode: trust.mode, entries: trust.entries() }
      return applied.result
    })
  } catch (err) {
    if (applied != null) {
      undo(applied.result)
    }
    throw err
  }
}

/**
 * Starts a sync with every connected peer. Records rejected before a trust
 * entry was added are not stored, so only a new sync brings them back.
 */
function resyncConnectedPeers (context: AgentContext): void {
  for (const peer of context.node.getPeers()) {
    context.sync.syncWith(peer).catch(err => { log('sync with %p after a trust change failed: %e', peer, err) })
  }
}

export const catalogRoutes: ControlRoute[] = [
  {
    method: 'GET',
    path: '/tags',
    handle: async ({ agent, query }): Promise<TagView[]> => {
      const repositoryText = query.get('repository')
      const repository = repositoryText == null || repositoryText === '' ? undefined : parseRepository(repositoryText)
      const { catalog } = agent.context
      const selected = (signed: SignedTagRecord): boolean => repository == null || signed.record.repository === repository
      const heldRecords = catalog.heldRecords().filter(selected)

      // Tags known only from held records are listed too, so an operator sees what waits for the clock.
      const keys = new Map<string, { repository: string, tag: string }>()
      for (const { record } of [...catalog.list().filter(selected), ...heldRecords]) {
        keys.set(`${record.repository}:${record.tag}`, { repository: record.repository, tag: record.tag })
      }

      return [...keys.keys()].sort().map(key => {
        const { repository: name, tag } = keys.get(key) as { repository: string, tag: string }
        const current = catalog.get(name, tag)
        return {
          repository: name,
          tag,
          current: current == null ? null : recordView(current),
          history: catalog.history(name, tag).map(recordView),
          held: heldRecords.filter(held => held.record.repository === name && held.record.tag === tag).map(recordView)
        }
      })
    }
  },
  {
    method: 'POST',
    path: '/untag',
    handle: async ({ agent, body }): Promise<UntagResult> => {
      const parsed = parseReference(requireString(body, 'reference'), { allowDigest: false })
      const repository = parsed.repository
      const tag = parsed.tag ?? ''
      const { catalog } = agent.context

      if (!await deleteTag(agent.context, repository, tag)) {
        const current = catalog.get(repository, tag)
        const state = current == null ? 'is not known to this agent' : 'is already deleted'
        throw new RequestError(404, `tag ${repository}:${tag} ${state}; "kilomesh tags ${repository}" lists the tags of the repository`, 'TagNotFoundError')
      }

      const tombstone = catalog.get(repository, tag)
      return withTrustWarning(agent, { repository, tag, hlc: tombstone == null ? '' : formatHlc(tombstone.record.hlc) }, 'deleted')
    }
  },
  {
    method: 'GET',
    path: '/trust',
    handle: async ({ agent }): Promise<TrustView> => trustView(agent.context.catalog.trust)
  },
  {
    method: 'POST',
    path: '/trust/add',
    handle: async ({ agent, body }): Promise<TrustView & { added: TrustEntry }> => {
      const peerId = parsePeerIdField(requireString(body, 'peerId'))
      const pattern = optionalString(body, 'repository') ?? '*'
      const { trust } = agent.context.catalog

      let existed = false
      try {
        const added = await changeTrust(agent.context.paths.config, trust, () => {
          existed = trust.entries().some(entry => entry.peerId === peerId && entry.repository === pattern)
          return trust.add(peerId, pattern)
        }, entry => {
          if (!existed) {
            trust.remove(entry.peerId, entry.repository)
          }
        })

        log('trusted publisher %s for repositories %s', added.peerId, added.repository)
        resyncConnectedPeers(agent.context)
        return { ...trustView(trust), added }
      } catch (err: any) {
        if (err instanceof InvalidTrustEntryError) {
          throw new RequestError(400, err.message, err.name)
        }
        throw err
      }
    }
  },
  {
    method: 'POST',
    path: '/trust/rm',
    handle: async ({ agent, body }): Promise<TrustView & { removed: TrustEntry[] }> => {
      const peerId = parsePeerIdField(requireString(body, 'peerId'))
      const pattern = optionalString(body, 'repository')
      const { trust } = agent.context.catalog

      const matching = trust.entries().filter(entry => entry.peerId === peerId && (pattern == null || entry.repository === pattern))
      if (matching.length === 0) {
        const scope = pattern == null ? '' : ` for repositories ${JSON.stringify(pattern)}`
        throw new RequestError(404, `no trust entry names ${peerId}${scope}; "kilomesh trust ls" lists the entries`, 'NotFoundError')
      }

      await changeTrust(agent.context.paths.config, trust, () => trust.remove(peerId, pattern), () => {
        for (const entry of matching) {
          trust.add(entry.peerId, entry.repository)
        }
      })

      log('removed %d trust entries of publisher %s', matching.length, peerId)
      return { ...trustView(trust), removed: matching }
    }
  },
  {
    method: 'GET',
    path: '/catalog/stats',
    handle: async ({ agent }): Promise<CatalogStatsView> => {
      const { catalog, sync } = agent.context
      return {
        catalog: catalog.stats(),
        sync: sync.stats(),
        tags: catalog.list().length,
        heldRecords: catalog.heldRecords().length,
        localClockMs: catalog.localNowMs(),
        referenceClockMs: catalog.referenceNowMs()
      }
    }
  }
]
