/**
 * Runs one sync session over a libp2p stream: length-prefixed SyncMessage
 * frames, strictly alternating, until one side has nothing left to send.
 * Every record the peer sends goes through `Catalog.addEnvelope`, so it is
 * verified and merged exactly like a gossiped one.
 */
import { lpStream } from '@libp2p/utils'
import { SyncMessage } from '../../protocol/messages/sync.js'
import { MAX_SYNC_MESSAGE_BYTES, MAX_SYNC_NODES_PER_MESSAGE, MAX_SYNC_RECORDS_PER_MESSAGE, MAX_SYNC_ROUNDS } from '../../protocol/sync.js'
import { MAX_REJECTED_RECORDS_PER_SESSION, SYNC_MESSAGE_TIMEOUT_MS } from './constants.js'
import { SyncIncompleteError, SyncRejectedRecordsError, SyncRoundLimitError } from './errors.js'
import { Reconciler } from './reconciler.js'
import { anySignal } from '../net/signals.js'
import type { SyncIndex } from './sync-index.js'
import type { Catalog } from '../catalog/catalog.js'
import type { AbortOptions, Stream } from '@libp2p/interface'

/** Role of this side in a session: the side that opened the stream is the initiator. */
export type SyncRole = 'initiator' | 'responder'

/** Counts of what one session exchanged. */
export interface SessionResult {
  peer: string
  role: SyncRole
  messagesSent: number
  messagesReceived: number
  /** Encoded message bytes, without the length prefixes. */
  bytesSent: number
  bytesReceived: number
  recordsSent: number
  recordsReceived: number
  /** Received records by the catalog's verdict. */
  applied: number
  stale: number
  duplicate: number
  rejected: number
  held: number
  durationMs: number
}

export interface SessionContext {
  catalog: Catalog
  /** Snapshot of the local records, taken when the session starts. */
  index: SyncIndex
  /** Peer ID of the other side, for the catalog's logs and clock. */
  peer: string
  listThreshold?: number
  /** @default MAX_SYNC_ROUNDS */
  maxRounds?: number
  /** @default SYNC_MESSAGE_TIMEOUT_MS */
  messageTimeoutMs?: number
}

const DECODE_LIMITS = {
  splits: MAX_SYNC_NODES_PER_MESSAGE,
  lists: MAX_SYNC_NODES_PER_MESSAGE,
  wants: MAX_SYNC_NODES_PER_MESSAGE,
  records: MAX_SYNC_RECORDS_PER_MESSAGE
}

/** Runs a session to its end; throws when the peer breaks a limit, times out or closes early. */
export async function runSession (stream: Stream, role: SyncRole, context: SessionContext, options: AbortOptions = {}): Promise<SessionResult> {
  const { catalog, peer } = context
  const maxRounds = context.maxRounds ?? MAX_SYNC_ROUNDS
  const messageTimeoutMs = context.messageTimeoutMs ?? SYNC_MESSAGE_TIMEOUT_MS
  const startedMs = Date.now()
  const lp = lpStream(stream, { maxDataLength: MAX_SYNC_MESSAGE_BYTES })
  const reconciler = new Reconciler({ index: context.index, listThreshold: context.listThreshold })
  const result: SessionResult = {
    peer, role, messagesSent: 0, messagesReceived: 0, bytesSent: 0, bytesReceived: 0, recordsSent: 0, recordsReceived: 0,
    applied: 0, stale: 0, duplicate: 0, rejected: 0, held: 0, durationMs: 0
  }
  let lastSentDone = false

  const send = async (message: SyncMessage): Promise<void> => {
    const bytes = SyncMessage.encode(message)
    await lp.write(bytes, options)
    result.messagesSent++
    result.bytesSent += bytes.byteLength
    result.recordsSent += message.records.length
    lastSentDone = message.done
  }

  const receive = async (): Promise<SyncMessage | undefined> => {
    const signals = [AbortSignal.timeout(messageTimeoutMs), ...(options.signal != null ? [options.signal] : [])]
    let bytes
    try {
      bytes = await lp.read({ signal: anySignal(signals) })
    } catch (err) {
      if ((err as Error).name !== 'UnexpectedEOFError') {
        throw err
      }

      // The peer ends a session by closing the stream instead of replying to our `done`.
      if (lastSentDone) {
        return undefined
      }
      throw new SyncIncompleteError(`peer ${peer} closed the sync stream after ${result.messagesReceived} messages, before the session ended`)
    }

    result.messagesReceived++
    result.bytesReceived += bytes.byteLength
    if (result.messagesReceived > maxRounds) {
      throw new SyncRoundLimitError(`peer ${peer} sent more than ${maxRounds} messages in one sync session`)
    }

    return SyncMessage.decode(bytes, { limits: DECODE_LIMITS })
  }

  const applyRecords = async (envelopes: Uint8Array[]): Promise<void> => {
    for (const envelope of envelopes) {
      const { status } = await catalog.addEnvelope(envelope, { ...options, from: peer })
      result[status]++
      if (result.rejected > MAX_REJECTED_RECORDS_PER_SESSION) {
        throw new SyncRejectedRecordsError(`peer ${peer} sent more than ${MAX_REJECTED_RECORDS_PER_SESSION} records that failed verification or the trust policy in one sync session`)
      }
    }
  }

  if (role === 'initiator') {
    await send(reconciler.initiate(catalog.localNowMs()))
  }

  while (true) {
    const message = await receive()
    if (message == null) {
      break
    }

    // The clock comes first, so that a device whose clock is far behind does not hold back the records in this message.
    if (result.messagesReceived === 1 && message.clockMs > 0n) {
      catalog.observePeerClock(peer, Number(message.clockMs))
    }

    result.recordsReceived += message.records.length
    await applyRecords(message.records)

    const reply = reconciler.receive(message, result.messagesSent === 0 ? catalog.localNowMs() : 0)
    if (reply == null) {
      break
    }

    await send(reply)
  }

  await stream.close(options)
  result.durationMs = Date.now() - startedMs
  return result
}
