/**
 * Runs the two sides of a sync session in memory, passing encoded messages
 * between two reconcilers, and reports bytes and round trips. Tests and the
 * benchmark use it to measure the reconciliation alone, without libp2p.
 */
import { randomBytes } from 'node:crypto'
import { SyncMessage } from '../../../protocol/messages/sync.js'
import { MAX_SYNC_ROUNDS } from '../../../protocol/sync.js'
import { Reconciler, type ReconcilerInit } from '../../../node/sync/reconciler.js'
import { SyncIndex } from '../../../node/sync/sync-index.js'

export interface InMemoryResult {
  /** Envelopes each side received. */
  receivedByInitiator: Uint8Array[]
  receivedByResponder: Uint8Array[]
  /** Encoded message bytes in both directions, without length prefixes. */
  totalBytes: number
  /** Bytes of record envelopes among them. */
  recordBytes: number
  messages: number
  /** Messages divided by two, rounded up: one round trip is a message and its reply. */
  roundTrips: number
}

/** Returns `count` random envelope-sized byte arrays. */
export function randomEnvelopes (count: number, sizeBytes = 300): Uint8Array[] {
  return Array.from({ length: count }, () => new Uint8Array(randomBytes(sizeBytes)))
}

/** Reconciles two sets of envelopes and returns what moved. */
export function reconcileInMemory (initiatorSet: Uint8Array[], responderSet: Uint8Array[], init: Omit<ReconcilerInit, 'index'> = {}): InMemoryResult {
  const initiator = new Reconciler({ ...init, index: new SyncIndex(initiatorSet) })
  const responder = new Reconciler({ ...init, index: new SyncIndex(responderSet) })
  const result: InMemoryResult = { receivedByInitiator: [], receivedByResponder: [], totalBytes: 0, recordBytes: 0, messages: 0, roundTrips: 0 }

  let message: SyncMessage | undefined = initiator.initiate(Date.now())
  let receiver = responder
  let receivedBy = result.receivedByResponder

  while (message != null) {
    const encoded = SyncMessage.encode(message)
    result.totalBytes += encoded.byteLength
    result.messages++
    if (result.messages > 2 * MAX_SYNC_ROUNDS) {
      throw new Error(`in-memory session did not end within ${2 * MAX_SYNC_ROUNDS} messages`)
    }

    const decoded = SyncMessage.decode(encoded)
    for (const record of decoded.records) {
      receivedBy.push(record)
      result.recordBytes += record.byteLength
    }

    const wasDone = decoded.done
    message = receiver.receive(decoded)
    if (message == null && !wasDone) {
      throw new Error('reconciler ended a session after a message without done')
    }

    receiver = receiver === responder ? initiator : responder
    receivedBy = receivedBy === result.receivedByResponder ? result.receivedByInitiator : result.receivedByResponder
  }

  result.roundTrips = Math.ceil(result.messages / 2)
  return result
}
