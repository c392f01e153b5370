/**
 * Publishing: import an image into the store, sign a tag record for it with
 * the device's key, merge it into the catalog and announce it by gossip.
 */
import { logger } from '@libp2p/logger'
import { formatHlc } from '../../protocol/hlc.js'
import { parseReference } from '../../protocol/reference.js'
import { signTagRecord, type SignedTagRecord, type TagRecord } from '../../protocol/tag-record.js'
import type { Descriptor } from '../image/manifest.js'
import type { AgentContext } from './agent.js'
import type { AbortOptions } from '@libp2p/interface'

const log = logger('kilomesh:publish')

export interface PublishResult {
  repository: string
  tag: string
  digest: string
  mediaType: string
  sizeBytes: number
  /** Hybrid logical clock time of the new record, formatted. */
  hlc: string
  /** Blobs of the image now in the store. */
  blobCount: number
  /** Peers the gossip message went to directly. */
  announcedTo: number
  /** Set when agents with this agent's trust policy would reject the new record. */
  warning?: string
}

/**
 * Signs and announces a record pointing `repository:tag` at a manifest that
 * is already in the store, with a clock greater than anything seen for it.
 */
export async function publishTag (context: AgentContext, repository: string, tag: string, descriptor: Descriptor, options: AbortOptions = {}): Promise<{ signed: SignedTagRecord, announcedTo: number }> {
  const record: TagRecord = {
    repository,
    tag,
    digest: descriptor.digest,
    mediaType: descriptor.mediaType,
    sizeBytes: descriptor.size,
    hlc: context.catalog.nextHlc(repository, tag),
    publisher: context.peerId,
    deleted: false
  }

  const signed = await signAndMerge(context, record, 'the new record', options)

  await context.layout.setRef(`${repository}:${tag}`, { mediaType: descriptor.mediaType, digest: descriptor.digest, size: descriptor.size })
  const announcedTo = await context.announcer.announce(signed)
  log('published %s:%s -> %s at %s', repository, tag, descriptor.digest, formatHlc(record.hlc))
  return { signed, announcedTo }
}

/** `kilomesh publish REPOSITORY:TAG --from SOURCE`. */
export async function publishImage (context: AgentContext, reference: string, source: string, options: AbortOptions = {}): Promise<PublishResult> {
  const parsed = parseReference(reference, { allowDigest: false })
  const repository = parsed.repository
  const tag = parsed.tag ?? ''

  // Loaded on first use, so that the archive readers stay out of the agent's start.
  const { importImage } = await import('../image/import.js')
  const imported = await importImage(context.store, source, options)
  const { signed, announcedTo } = await publishTag(context, repository, tag, imported.descriptor, options)

  return {
    repository,
    tag,
    digest: imported.descriptor.digest,
    mediaType: imported.descriptor.mediaType,
    sizeBytes: imported.descriptor.size,
    hlc: formatHlc(signed.record.hlc),
    blobCount: imported.blobCount,
    announcedTo
  }
}

/** Publishes a tombstone for `repository:tag`; returns false when the tag was unknown or already deleted. */
export async function deleteTag (context: AgentContext, repository: string, tag: string, options: AbortOptions = {}): Promise<boolean> {
  const current = context.catalog.get(repository, tag)
  if (current == null || current.record.deleted) {
    return false
  }

  const record: TagRecord = {
    repository,
    tag,
    digest: null,
    mediaType: '',
    sizeBytes: 0,
    hlc: context.catalog.nextHlc(repository, tag),
    publisher: context.peerId,
    deleted: true
  }
  const signed = await signAndMerge(context, record, 'the deletion', options)

  await context.layout.removeRef(`${repository}:${tag}`)
  await context.announcer.announce(signed)
  log('deleted %s:%s', repository, tag)
  return true
}

/**
 * Signs a record of this device and merges it into the catalog. Its clock
 * came from `catalog.nextHlc`, so anything but "applied" means the catalog
 * changed in between or rejected it, and the caller must not announce it.
 */
async function signAndMerge (context: AgentContext, record: TagRecord, what: string, options: AbortOptions): Promise<SignedTagRecord> {
  const signed = await signTagRecord(record, context.privateKey, options)
  const result = await context.catalog.add(signed, options)
  if (result.status !== 'applied') {
    throw new Error(`the catalog did not accept ${what} of ${record.repository}:${record.tag} (${result.status}: ${result.reason ?? 'no reason given'})`)
  }
  return signed
}
