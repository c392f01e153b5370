/** Read-only views of subscriptions for `kilomesh subscriptions`. */
import { tagKey } from '../../protocol/tag-record.js'
import { formatSubscription, versionOf, type LocalHold, type Subscription } from './subscription-config.js'
import type { TagPullStatus } from './subscription-pulls.js'
import type { OciDigest } from '../../protocol/digest.js'
import type { Catalog } from '../catalog/catalog.js'
import type { PinFile } from '../store/pins.js'

/** One subscribed tag, for `kilomesh subscriptions`. */
export interface SubscribedTagView {
  repository: string
  tag: string
  /** Digest of the tag's newest record; null when the tag is unknown or deleted. */
  latest: OciDigest | null
  /** Pinned versions on this device. */
  current: OciDigest | null
  previous: OciDigest | null
  /** Version a local rollback holds this device on. */
  heldAt?: OciDigest
  pull: TagPullStatus
}

export interface SubscriptionView {
  subscription: string
  tags: SubscribedTagView[]
}

/** Sources of the views: the catalog, the pins, the holds and the pull queue. */
export interface SubscriptionState {
  catalog: Catalog
  pins: PinFile
  holdOf: (repository: string, tag: string) => LocalHold | undefined
  pullStatus: (repository: string, tag: string) => TagPullStatus
}

/** Describes each subscription and the tags it covers: a named tag, or every tag of the repository the catalog holds. */
export function describeSubscriptions (subscriptions: Subscription[], state: SubscriptionState): SubscriptionView[] {
  return subscriptions.map(subscription => {
    const { repository } = subscription
    const tags = subscription.tag != null
      ? [subscription.tag]
      : [...new Set(state.catalog.list().filter(signed => signed.record.repository === repository).map(signed => signed.record.tag))]

    return {
      subscription: formatSubscription(subscription),
      tags: tags.map(tag => {
        const winner = state.catalog.get(repository, tag)
        const pins = state.pins.get(tagKey(repository, tag))
        const hold = state.holdOf(repository, tag)
        return {
          repository,
          tag,
          latest: winner == null ? null : versionOf(winner)?.digest ?? null,
          current: pins?.current.digest ?? null,
          previous: pins?.previous?.digest ?? null,
          ...(hold != null ? { heldAt: hold.version.digest } : {}),
          pull: state.pullStatus(repository, tag)
        }
      })
    }
  })
}
