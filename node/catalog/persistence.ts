/**
 * The datastore layout of the catalog. Each tag is one datastore value that
 * contains its winner and its history, so that every update of a tag is one
 * write (or one batch together with a first-use owner) and a crash leaves
 * either the old entry or the new one.
 *
 * Keys: `/kilomesh/catalog/tags/<URI-encoded repository:tag>` and
 * `/kilomesh/catalog/owners/<URI-encoded repository>`. Values are UTF-8 JSON.
 */
import { Key } from 'interface-datastore'
import { validateTagRecord, type SignedTagRecord, type TagRecord } from '../../protocol/tag-record.js'
import { OWNER_KEY_PREFIX, TAG_KEY_PREFIX } from './constants.js'

/** The stored state of one tag. */
export interface TagEntry {
  winner: SignedTagRecord
  /** Versions that lost or were replaced, newest first. */
  history: readonly SignedTagRecord[]
}

interface StoredRecord {
  record: TagRecord
  /** Marshaled envelope in base64. */
  envelope: string
}

interface StoredEntry {
  version: 1
  winner: StoredRecord
  history: StoredRecord[]
}

/** Returns the datastore key of a tag. */
export function tagEntryKey (tagKey: string): Key {
  return new Key(`${TAG_KEY_PREFIX}/${encodeURIComponent(tagKey)}`)
}

/** Returns the datastore key of a repository's first-use owner. */
export function ownerKey (repository: string): Key {
  return new Key(`${OWNER_KEY_PREFIX}/${encodeURIComponent(repository)}`)
}

/** Returns the repository that an owner key names. */
export function repositoryOfOwnerKey (key: Key): string {
  return decodeURIComponent(key.baseNamespace())
}

function storeRecord (signed: SignedTagRecord): StoredRecord {
  return { record: signed.record, envelope: Buffer.from(signed.envelope).toString('base64') }
}

function loadRecord (stored: StoredRecord): SignedTagRecord {
  validateTagRecord(stored.record)
  return { record: stored.record, envelope: new Uint8Array(Buffer.from(stored.envelope, 'base64')) }
}

/** Encodes a tag entry as a datastore value. */
export function encodeTagEntry (entry: TagEntry): Uint8Array {
  const stored: StoredEntry = { version: 1, winner: storeRecord(entry.winner), history: entry.history.map(storeRecord) }
  return new TextEncoder().encode(JSON.stringify(stored))
}

/**
 * Decodes a datastore value into a tag entry. The envelopes are not verified
 * again, because only verified records are ever stored, but every field is
 * checked so that a damaged value is reported instead of loaded.
 */
export function decodeTagEntry (bytes: Uint8Array): TagEntry {
  const stored = JSON.parse(new TextDecoder().decode(bytes)) as StoredEntry
  if (stored.version !== 1 || stored.winner == null || !Array.isArray(stored.history)) {
    throw new Error(`unknown catalog entry format version ${String(stored.version)}`)
  }

  return { winner: loadRecord(stored.winner), history: stored.history.map(loadRecord) }
}
