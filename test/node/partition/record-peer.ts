/**
 * A libp2p peer in the test process that offers chosen tag records to real
 * agents through catalog sync (and, for gossip tests, the tag topic). Its own
 * catalog accepts every record unchecked, so it can carry forged ones.
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { RecordEnvelope } from '@libp2p/peer-record'
import { multiaddr } from '@multiformats/multiaddr'
import { TrustPolicy } from '../../../node/catalog/trust.js'
import { createKilomeshNode, type KilomeshLibp2p } from '../../../node/net/libp2p.js'
import { catalogSync, type CatalogSync } from '../../../node/sync/catalog-sync.js'
import { TAG_RECORD_CODEC, TAG_RECORD_DOMAIN } from '../../../protocol/constants.js'
import { TagRecord as TagRecordMessage } from '../../../protocol/messages/tag-record.js'
import { openCatalog, type Publisher, type TestCatalog } from '../catalog/records.js'
import type { SignedTagRecord, TagRecord } from '../../../protocol/tag-record.js'
import type { PrivateKey, Record as Libp2pRecord } from '@libp2p/interface'

export interface RecordPeer {
  node: KilomeshLibp2p
  store: TestCatalog
  peerId: string
  /** The peer's own key, as a publisher of records. */
  publisher: Publisher
  sync: CatalogSync
  /** Puts records into the peer's catalog without verifying them. */
  offer: (records: SignedTagRecord[]) => Promise<void>
  dial: (address: string) => Promise<void>
  stop: () => Promise<void>
}

/** Starts the peer on a free loopback port. */
export async function startRecordPeer (): Promise<RecordPeer> {
  const privateKey = await generateKeyPair('Ed25519')
  const peerId = peerIdFromPrivateKey(privateKey).toString()
  const store = await openCatalog({ trust: new TrustPolicy({ config: { mode: 'any' } }) })
  const node = await createKilomeshNode({
    privateKey,
    listen: ['/ip4/127.0.0.1/tcp/0'],
    dht: false,
    services: { catalogSync: catalogSync({ catalog: store.catalog, intervalMs: 0 }) }
  })

  return {
    node,
    store,
    peerId,
    publisher: { privateKey, peerId },
    sync: node.services.catalogSync as CatalogSync,
    offer: async (records) => {
      for (const signed of records) {
        await store.catalog.add(signed)
      }
    },
    dial: async (address) => { await node.dial(multiaddr(address)) },
    stop: async () => {
      await node.stop()
      await store.destroy()
    }
  }
}

class RawTagRecord implements Libp2pRecord {
  readonly domain = TAG_RECORD_DOMAIN
  readonly codec = TAG_RECORD_CODEC

  constructor (private readonly bytes: Uint8Array) {}

  marshal (): Uint8Array {
    return this.bytes
  }

  equals (other: Libp2pRecord): boolean {
    return other instanceof RawTagRecord && Buffer.compare(other.bytes, this.bytes) === 0
  }
}

/**
 * Returns a record that names `record.publisher` but is signed with
 * `signingKey`: a well-formed envelope whose signature verifies, from the
 * wrong key. `signTagRecord` rejects this, so the payload is sealed here.
 */
export async function impersonate (record: TagRecord, publisherMultihash: Uint8Array, signingKey: PrivateKey): Promise<SignedTagRecord> {
  const payload = TagRecordMessage.encode({
    repository: record.repository,
    tag: record.tag,
    digest: record.digest ?? '',
    mediaType: record.mediaType,
    size: BigInt(record.sizeBytes),
    hlcWallMs: BigInt(record.hlc.wallMs),
    hlcCounter: record.hlc.counter,
    publisher: new Uint8Array(publisherMultihash),
    deleted: record.deleted
  })
  const envelope = await RecordEnvelope.seal(new RawTagRecord(payload), signingKey)
  return { record, envelope: envelope.marshal() }
}

/** Returns a copy of a signed record whose envelope signature has one bit flipped. */
export function breakSignature (signed: SignedTagRecord): SignedTagRecord {
  const envelope = RecordEnvelope.createFromProtobuf(signed.envelope)
  const signature = new Uint8Array(envelope.signature)
  signature[10] = (signature[10] ?? 0) ^ 0x01
  const broken = new RecordEnvelope({ publicKey: envelope.publicKey, payloadType: envelope.payloadType, payload: envelope.payload, signature })
  return { record: signed.record, envelope: broken.marshal() }
}
