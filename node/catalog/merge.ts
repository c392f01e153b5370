/**
 * The merge rule of the catalog as pure functions. Per (repository, tag) the
 * record that sorts greatest wins: the greater HLC, then the greater
 * publisher peer ID, then the remaining fields, then the envelope bytes. The
 * last step only separates two envelopes of one identical record (a signer
 * whose signatures are not deterministic), so that every peer keeps the same
 * bytes. The state is a map from tag key to winner, and merging two states
 * keeps the greater record per key, which is commutative, associative and
 * idempotent.
 */
import { compareTagRecords, tagKey, type SignedTagRecord } from '../../protocol/tag-record.js'

/** Orders two signed records of one tag: negative when `a` loses to `b`, zero only for identical envelopes. */
export function compareSignedRecords (a: SignedTagRecord, b: SignedTagRecord): number {
  return compareTagRecords(a.record, b.record) || Buffer.compare(a.envelope, b.envelope)
}

/** Returns the winner of two records of the same tag. */
export function pickWinner (a: SignedTagRecord, b: SignedTagRecord): SignedTagRecord {
  return compareSignedRecords(a, b) >= 0 ? a : b
}

/** Returns the catalog key of a signed record. */
export function keyOf (signed: SignedTagRecord): string {
  return tagKey(signed.record.repository, signed.record.tag)
}

/** A catalog state: the winning record of each tag key. */
export type CatalogState = ReadonlyMap<string, SignedTagRecord>

/** Merges one record into a state and returns the new state; the input is not changed. */
export function mergeRecord (state: CatalogState, signed: SignedTagRecord): CatalogState {
  const key = keyOf(signed)
  const current = state.get(key)
  if (current != null && pickWinner(current, signed) === current) {
    return state
  }

  const next = new Map(state)
  next.set(key, signed)
  return next
}

/** Merges two states: for every key, the greater of the two winners. */
export function mergeStates (a: CatalogState, b: CatalogState): CatalogState {
  let merged = a
  for (const signed of b.values()) {
    merged = mergeRecord(merged, signed)
  }

  return merged
}

/**
 * Inserts a record into a history list sorted from newest to oldest and
 * trims it to `maxLength`, dropping the oldest. Returns a new list, or the
 * same list when the record is already in it or would be dropped at once.
 */
export function insertHistory (history: readonly SignedTagRecord[], signed: SignedTagRecord, maxLength: number): readonly SignedTagRecord[] {
  let position = history.findIndex(entry => compareSignedRecords(entry, signed) <= 0)
  if (position === -1) {
    position = history.length
  } else if (compareSignedRecords(history[position] as SignedTagRecord, signed) === 0) {
    return history
  }

  if (position >= maxLength) {
    return history
  }

  const next = [...history]
  next.splice(position, 0, signed)
  return next.slice(0, maxLength)
}
