/**
 * Signed tag records: the statement "repository:tag points to this manifest,
 * as of this hybrid logical clock time", sealed in a libp2p signed envelope
 * by the publisher's key. Records are merged per (repository, tag) with
 * {@link compareTagRecords}: the greatest wins on every peer.
 */
import { peerIdFromMultihash, peerIdFromPublicKey, peerIdFromString } from '@libp2p/peer-id'
import { RecordEnvelope } from '@libp2p/peer-record'
import * as Digest from 'multiformats/hashes/digest'
import { MAX_RECORD_ENVELOPE_BYTES, TAG_RECORD_CODEC, TAG_RECORD_DOMAIN } from './constants.js'
import { isDigest, type OciDigest } from './digest.js'
import { InvalidRecordError } from './errors.js'
import { compareHlc, MAX_HLC_COUNTER, type Hlc } from './hlc.js'
import { TagRecord as TagRecordMessage } from './messages/tag-record.js'
import { isRepository, isTag } from './reference.js'
import type { AbortOptions, PrivateKey, Record as Libp2pRecord } from '@libp2p/interface'

/** The content of a tag record, before or after signing. */
export interface TagRecord {
  repository: string
  tag: string
  /** Manifest or index digest; null in a tombstone. */
  digest: OciDigest | null
  /** Media type of the manifest or index; empty in a tombstone. */
  mediaType: string
  /** Size of the manifest or index in bytes; 0 in a tombstone. */
  sizeBytes: number
  hlc: Hlc
  /** Publisher peer ID in its string form. */
  publisher: string
  deleted: boolean
}

/** A tag record together with the marshaled envelope that proves who signed it. */
export interface SignedTagRecord {
  record: TagRecord
  envelope: Uint8Array
}

class TagRecordPayload implements Libp2pRecord {
  readonly domain = TAG_RECORD_DOMAIN
  readonly codec = TAG_RECORD_CODEC

  constructor (private readonly bytes: Uint8Array) {}

  marshal (): Uint8Array {
    return this.bytes
  }

  equals (other: Libp2pRecord): boolean {
    return other instanceof TagRecordPayload && Buffer.compare(other.bytes, this.bytes) === 0
  }
}

function encodeRecord (record: TagRecord): Uint8Array {
  return TagRecordMessage.encode({
    repository: record.repository,
    tag: record.tag,
    digest: record.digest ?? '',
    mediaType: record.mediaType,
    size: BigInt(record.sizeBytes),
    hlcWallMs: BigInt(record.hlc.wallMs),
    hlcCounter: record.hlc.counter,
    publisher: peerIdFromString(record.publisher).toMultihash().bytes,
    deleted: record.deleted
  })
}

/** Checks the fields of a decoded record; throws InvalidRecordError naming the first bad one. */
export function validateTagRecord (record: TagRecord): void {
  if (!isRepository(record.repository)) {
    throw new InvalidRecordError(`tag record has an invalid repository name ${JSON.stringify(record.repository.slice(0, 100))}`)
  }

  if (!isTag(record.tag)) {
    throw new InvalidRecordError(`tag record has an invalid tag ${JSON.stringify(record.tag.slice(0, 100))}`)
  }

  if (record.deleted) {
    if (record.digest != null) {
      throw new InvalidRecordError(`tombstone for ${record.repository}:${record.tag} must not name a digest`)
    }
  } else if (record.digest == null || !isDigest(record.digest)) {
    throw new InvalidRecordError(`tag record for ${record.repository}:${record.tag} has an invalid digest ${JSON.stringify(record.digest)}`)
  }

  if (!Number.isSafeInteger(record.sizeBytes) || record.sizeBytes < 0) {
    throw new InvalidRecordError(`tag record for ${record.repository}:${record.tag} has an invalid size ${record.sizeBytes}`)
  }

  if (!Number.isSafeInteger(record.hlc.wallMs) || record.hlc.wallMs < 0 || !Number.isInteger(record.hlc.counter) || record.hlc.counter < 0 || record.hlc.counter > MAX_HLC_COUNTER) {
    throw new InvalidRecordError(`tag record for ${record.repository}:${record.tag} has an invalid clock ${record.hlc.wallMs}#${record.hlc.counter}`)
  }
}

/** Signs a record with the publisher's private key; the publisher must be that key's peer ID. */
export async function signTagRecord (record: TagRecord, privateKey: PrivateKey, options?: AbortOptions): Promise<SignedTagRecord> {
  validateTagRecord(record)

  const signer = peerIdFromPublicKey(privateKey.publicKey).toString()
  if (signer !== record.publisher) {
    throw new InvalidRecordError(`tag record publisher ${record.publisher} does not match the signing key of ${signer}`)
  }

  const envelope = await RecordEnvelope.seal(new TagRecordPayload(encodeRecord(record)), privateKey, options)
  return { record, envelope: envelope.marshal() }
}

/**
 * Opens a marshaled envelope received from anywhere: checks its size, its
 * signature, its payload type, every field, and that the publisher named in
 * the record is the key that signed it.
 */
export async function openTagRecord (bytes: Uint8Array, options?: AbortOptions): Promise<SignedTagRecord> {
  if (bytes.byteLength > MAX_RECORD_ENVELOPE_BYTES) {
    throw new InvalidRecordError(`tag record envelope of ${bytes.byteLength} bytes exceeds the limit of ${MAX_RECORD_ENVELOPE_BYTES} bytes`)
  }

  let envelope: RecordEnvelope
  try {
    envelope = await RecordEnvelope.openAndCertify(bytes, TAG_RECORD_DOMAIN, options)
  } catch (err: any) {
    throw new InvalidRecordError(`tag record envelope is malformed or wrongly signed: ${err.message}`)
  }

  if (Buffer.compare(envelope.payloadType, TAG_RECORD_CODEC) !== 0) {
    throw new InvalidRecordError('envelope does not carry a kilomesh tag record (wrong payload type)')
  }

  let message: TagRecordMessage
  try {
    message = TagRecordMessage.decode(envelope.payload)
  } catch (err: any) {
    throw new InvalidRecordError(`tag record payload cannot be decoded: ${err.message}`)
  }

  let publisher: string
  try {
    publisher = peerIdFromMultihash(Digest.decode(message.publisher)).toString()
  } catch (err: any) {
    throw new InvalidRecordError(`tag record has an invalid publisher peer ID: ${err.message}`)
  }

  const signer = peerIdFromPublicKey(envelope.publicKey).toString()
  if (signer !== publisher) {
    throw new InvalidRecordError(`tag record names publisher ${publisher} but was signed by ${signer}`)
  }

  const record: TagRecord = {
    repository: message.repository,
    tag: message.tag,
    digest: message.digest === '' ? null : message.digest as OciDigest,
    mediaType: message.mediaType,
    sizeBytes: Number(message.size),
    hlc: { wallMs: Number(message.hlcWallMs), counter: message.hlcCounter },
    publisher,
    deleted: message.deleted
  }
  validateTagRecord(record)

  return { record, envelope: bytes instanceof Uint8Array ? bytes : envelope.marshal() }
}

function compareStrings (a: string, b: string): number {
  return a === b ? 0 : (a < b ? -1 : 1)
}

/**
 * Orders two records of the same tag by the merge rule: the greater HLC wins,
 * then the greater publisher peer ID. The remaining fields only break ties
 * between two different records that one publisher signed with the same
 * timestamp, so that every peer still picks the same winner.
 */
export function compareTagRecords (a: TagRecord, b: TagRecord): number {
  return compareHlc(a.hlc, b.hlc) ||
    compareStrings(a.publisher, b.publisher) ||
    Number(a.deleted) - Number(b.deleted) ||
    compareStrings(a.digest ?? '', b.digest ?? '') ||
    compareStrings(a.mediaType, b.mediaType) ||
    a.sizeBytes - b.sizeBytes
}

/** Returns the catalog key of a record. */
export function tagKey (repository: string, tag: string): string {
  return `${repository}:${tag}`
}
