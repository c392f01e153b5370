/**
 * One side of a sync session, without I/O: it turns each received message
 * into the reply, comparing node summaries against a snapshot of the local
 * records. The session layer moves the messages and merges the records the
 * peer sends. The rules are specified in docs/protocol.md, "Sync protocol".
 */
import { InvalidMessageError } from '../../protocol/errors.js'
import {
  childNode, decodeItemKeys, decodeNode, decodeSummaries, encodeItemKeys, encodeNode, encodeSummaries, nodeId, nodeRange,
  MAX_SYNC_DEPTH, MAX_SYNC_MESSAGE_BYTES, MAX_SYNC_NODES_PER_MESSAGE, MAX_SYNC_RECORDS_PER_MESSAGE, SYNC_FANOUT, SYNC_LIST_THRESHOLD,
  type NodeSummary, type SyncNode
} from '../../protocol/sync.js'
import { itemKeyOf, type SyncIndex } from './sync-index.js'
import type { SyncMessage } from '../../protocol/messages/sync.js'

/** Room left in every message for field tags, lengths and the clock, in bytes. */
const MESSAGE_OVERHEAD_BYTES = 1024

const ROOT: SyncNode = { depth: 0, prefix: 0n }

export interface ReconcilerInit {
  index: SyncIndex
  /** @default SYNC_LIST_THRESHOLD */
  listThreshold?: number
  /** @default MAX_SYNC_RECORDS_PER_MESSAGE */
  maxRecordsPerMessage?: number
  /** @default MAX_SYNC_MESSAGE_BYTES */
  maxMessageBytes?: number
}

type WorkEntry =
  | { kind: 'split', node: SyncNode }
  | { kind: 'list', node: SyncNode, keys: bigint[] }
  | { kind: 'want', node: SyncNode, keys: bigint[] }

/** The reconciliation state of one side of one session. */
export class Reconciler {
  private readonly index: SyncIndex
  private readonly listThreshold: number
  private readonly maxRecordsPerMessage: number
  private readonly maxMessageBytes: number
  private readonly work: WorkEntry[] = []
  private readonly outgoing: Uint8Array[] = []
  /** Item keys already queued for the peer, so that no record is sent twice in a session. */
  private readonly queuedKeys = new Set<bigint>()
  private finished = false

  constructor (init: ReconcilerInit) {
    this.index = init.index
    this.listThreshold = init.listThreshold ?? SYNC_LIST_THRESHOLD
    this.maxRecordsPerMessage = init.maxRecordsPerMessage ?? MAX_SYNC_RECORDS_PER_MESSAGE
    this.maxMessageBytes = init.maxMessageBytes ?? MAX_SYNC_MESSAGE_BYTES
  }

  /** True once `receive` ended the session. */
  get isFinished (): boolean {
    return this.finished
  }

  /** True when nothing is left to send: no queued node entries and no queued records. */
  get isIdle (): boolean {
    return this.work.length === 0 && this.outgoing.length === 0
  }

  /** Returns the first message of the initiating side. */
  initiate (clockMs: number): SyncMessage {
    this.describeDifferingNode(ROOT)
    return this.buildMessage(clockMs)
  }

  /**
   * Processes a message from the peer and returns the reply, or undefined
   * when the session is over: the peer sent `done` and this side has nothing
   * left to send. `clockMs` goes into the reply, which the responding side
   * sets in its first reply only.
   */
  receive (message: SyncMessage, clockMs = 0): SyncMessage | undefined {
    if (this.finished) {
      throw new InvalidMessageError('sync message received after the session ended')
    }

    const nodeEntries = message.splits.length + message.lists.length + message.wants.length
    if (nodeEntries > MAX_SYNC_NODES_PER_MESSAGE || message.records.length > MAX_SYNC_RECORDS_PER_MESSAGE) {
      throw new InvalidMessageError(`sync message with ${nodeEntries} node entries and ${message.records.length} records exceeds the limits of ${MAX_SYNC_NODES_PER_MESSAGE} and ${MAX_SYNC_RECORDS_PER_MESSAGE}`)
    }

    // A node named twice in one message is answered once.
    const seen = new Set<string>()
    const firstTime = (kind: string, node: SyncNode): boolean => {
      const id = `${kind}:${node.depth}:${nodeId(node)}`
      if (seen.has(id)) {
        return false
      }
      seen.add(id)
      return true
    }

    for (const split of message.splits) {
      const node = decodeNode(split.node)
      if (node.depth >= MAX_SYNC_DEPTH) {
        throw new InvalidMessageError(`sync split of node ${nodeId(node)} at depth ${node.depth}: nodes at the maximum depth ${MAX_SYNC_DEPTH} cannot be split`)
      }

      const summaries = decodeSummaries(split.children)
      if (firstTime('split', node)) {
        summaries.forEach((theirs, nibble) => { this.compareNode(childNode(node, nibble), theirs) })
      }
    }

    for (const list of message.lists) {
      const node = decodeNode(list.node)
      const keys = decodeItemKeys(list.ids)
      if (firstTime('list', node)) {
        this.compareList(node, keys)
      }
    }

    for (const want of message.wants) {
      const node = decodeNode(want.node)
      const keys = decodeItemKeys(want.ids)
      if (firstTime('want', node)) {
        this.answerWant(node, keys)
      }
    }

    if (message.done && this.isIdle) {
      this.finished = true
      return undefined
    }

    return this.buildMessage(clockMs)
  }

  /** Compares the peer's summary of a node with ours and queues what settles the difference. */
  private compareNode (node: SyncNode, theirs: NodeSummary): void {
    const mine = this.index.summary(node)
    if (mine.count === theirs.count && mine.sum === theirs.sum) {
      return
    }

    if (theirs.count === 0) {
      this.queueRecords(this.index.envelopesIn(node))
      return
    }

    if (mine.count === 0) {
      this.work.push({ kind: 'list', node, keys: [] })
      return
    }

    const { start, end } = nodeRange(node)

    // Exactly one item more here: the difference of the sums is its key, if the sets differ in that item only.
    if (mine.count === theirs.count + 1) {
      const key = BigInt.asUintN(64, mine.sum - theirs.sum)
      const found = key >= start && key < end ? this.index.findByKey(key) : []
      if (found.length > 0) {
        this.queueRecords(found)
        return
      }
    }

    // Exactly one item more on their side: request it; if they hold no such item, they split the node instead.
    if (theirs.count === mine.count + 1) {
      const key = BigInt.asUintN(64, theirs.sum - mine.sum)
      if (key >= start && key < end && this.index.findByKey(key).length === 0) {
        this.work.push({ kind: 'want', node, keys: [key] })
        return
      }
    }

    this.describeDifferingNode(node)
  }

  /** Queues our side of a node that differs: the full key list when it is small or cannot be split, else the child summaries. */
  private describeDifferingNode (node: SyncNode): void {
    const { start, end } = this.index.indexRange(node)
    if (end - start <= this.listThreshold || node.depth >= MAX_SYNC_DEPTH) {
      this.work.push({ kind: 'list', node, keys: this.index.keysIn(node) })
    } else {
      this.work.push({ kind: 'split', node })
    }
  }

  /** Compares the peer's full key list of a node with ours: sends what they lack, requests what we lack. */
  private compareList (node: SyncNode, theirKeys: bigint[]): void {
    const theirs = new Set(theirKeys)
    const mine = new Set(this.index.keysIn(node))
    const { start, end } = nodeRange(node)

    this.queueRecords(this.index.envelopesIn(node).filter(envelope => !theirs.has(itemKeyOf(envelope))))

    const missing = [...theirs].filter(key => !mine.has(key) && key >= start && key < end)
    if (missing.length > 0) {
      this.work.push({ kind: 'want', node, keys: missing })
    }
  }

  /** Sends the requested records; when none of the keys is ours, the request came from a false guess, so the node is described instead. */
  private answerWant (node: SyncNode, keys: bigint[]): void {
    const { start, end } = nodeRange(node)
    let found = 0
    for (const key of keys) {
      if (key >= start && key < end) {
        const envelopes = this.index.findByKey(key)
        found += envelopes.length
        this.queueRecords(envelopes)
      }
    }

    if (found === 0) {
      this.describeDifferingNode(node)
    }
  }

  private queueRecords (envelopes: Uint8Array[]): void {
    for (const envelope of envelopes) {
      const key = itemKeyOf(envelope)
      if (!this.queuedKeys.has(key)) {
        this.queuedKeys.add(key)
        this.outgoing.push(envelope)
      }
    }
  }

  /**
   * Builds the next message from the queued work and records, within the
   * message limits; what does not fit waits for the next message. Sets
   * `done` when the message contains no request and nothing is left to send, so
   * the peer may end the session without replying.
   */
  private buildMessage (clockMs: number): SyncMessage {
    const message: SyncMessage = { clockMs: BigInt(clockMs), splits: [], lists: [], wants: [], records: [], done: false }
    let sizeBytes = MESSAGE_OVERHEAD_BYTES
    let nodeEntries = 0

    while (this.work.length > 0 && nodeEntries < MAX_SYNC_NODES_PER_MESSAGE) {
      const entry = this.work[0] as WorkEntry
      const encoded = this.encodeWork(entry)
      const entryBytes = encoded.node.byteLength + ('children' in encoded ? encoded.children.byteLength : encoded.ids.byteLength) + 8
      if (sizeBytes + entryBytes > this.maxMessageBytes && nodeEntries > 0) {
        break
      }

      this.work.shift()
      nodeEntries++
      sizeBytes += entryBytes
      if ('children' in encoded) {
        message.splits.push(encoded)
      } else if (entry.kind === 'list') {
        message.lists.push(encoded)
      } else {
        message.wants.push(encoded)
      }
    }

    while (this.outgoing.length > 0 && message.records.length < this.maxRecordsPerMessage) {
      const envelope = this.outgoing[0] as Uint8Array
      if (sizeBytes + envelope.byteLength + 4 > this.maxMessageBytes && message.records.length > 0) {
        break
      }

      this.outgoing.shift()
      sizeBytes += envelope.byteLength + 4
      // The generated message type names ArrayBuffer-backed arrays; envelopes are written the same either way.
      message.records.push(envelope as Uint8Array<ArrayBuffer>)
    }

    message.done = nodeEntries === 0 && this.isIdle

    return message
  }

  private encodeWork (entry: WorkEntry): { node: Uint8Array<ArrayBuffer>, children: Uint8Array<ArrayBuffer> } | { node: Uint8Array<ArrayBuffer>, ids: Uint8Array<ArrayBuffer> } {
    if (entry.kind === 'split') {
      const children: NodeSummary[] = []
      for (let nibble = 0; nibble < SYNC_FANOUT; nibble++) {
        children.push(this.index.summary(childNode(entry.node, nibble)))
      }
      return { node: encodeNode(entry.node), children: encodeSummaries(children) }
    }

    return { node: encodeNode(entry.node), ids: encodeItemKeys(entry.keys) }
  }
}
