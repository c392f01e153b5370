/**
 * Announces tag records on the gossipsub topic and merges the ones other
 * peers announce. Records are merged inside the topic validator, so that
 * forged or untrusted records are rejected before gossipsub forwards them,
 * and records already known are not forwarded again.
 */
import { TopicValidatorResult } from '@libp2p/gossipsub'
import { logger } from '@libp2p/logger'
import { TAG_TOPIC } from '../../protocol/constants.js'
import type { Catalog } from '../catalog/catalog.js'
import type { KilomeshLibp2p } from './libp2p.js'
import type { SignedTagRecord } from '../../protocol/tag-record.js'

const log = logger('kilomesh:announce')

export class TagAnnouncer {
  /** Records received by gossip and how they were judged. */
  readonly stats = { received: 0, applied: 0, rejected: 0, published: 0 }

  constructor (private readonly node: KilomeshLibp2p, private readonly catalog: Catalog) {}

  start (): void {
    const pubsub = this.node.services.pubsub
    pubsub.topicValidators.set(TAG_TOPIC, async (peer, message) => {
      this.stats.received++
      try {
        const result = await this.catalog.addEnvelope(message.data, { from: peer.toString() })
        switch (result.status) {
          case 'applied':
            this.stats.applied++
            log('learned %s:%s from gossip via %p', result.current?.record.repository, result.current?.record.tag, peer)
            return TopicValidatorResult.Accept
          case 'rejected':
            this.stats.rejected++
            log.error('rejected gossiped record via %p: %s', peer, result.reason)
            return TopicValidatorResult.Reject
          default:
            return TopicValidatorResult.Ignore
        }
      } catch (err: any) {
        log.error('could not merge gossiped record via %p: %e', peer, err)
        return TopicValidatorResult.Ignore
      }
    })
    pubsub.subscribe(TAG_TOPIC)
  }

  stop (): void {
    const pubsub = this.node.services.pubsub
    pubsub.topicValidators.delete(TAG_TOPIC)
    pubsub.unsubscribe(TAG_TOPIC)
  }

  /** Publishes a record that is already in the local catalog. */
  async announce (signed: SignedTagRecord): Promise<number> {
    const result = await this.node.services.pubsub.publish(TAG_TOPIC, signed.envelope)
    this.stats.published++
    log('announced %s:%s -> %s to %d peers', signed.record.repository, signed.record.tag, signed.record.digest ?? 'deleted', result.recipients.length)
    return result.recipients.length
  }
}
