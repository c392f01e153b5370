/**
 * Wire-level constants and encodings of the catalog sync protocol
 * `/kilomesh/sync/1.0.0`, a range-based set reconciliation over the signed
 * tag records two peers hold (docs/protocol.md, "Sync protocol").
 *
 * Every record has an item key: the first 8 bytes of the sha256 of its
 * envelope, read as an unsigned 64-bit big-endian integer. Items are sorted by
 * key, and a node is the range of keys that start with a given prefix of
 * 4-bit nibbles, so a node of depth d has 16 children of depth d + 1. A node
 * summary is its item count plus the sum of its item keys modulo 2^64: when
 * two summaries differ by exactly one item, the difference of the sums is
 * that item's key.
 */
import { InvalidMessageError } from './errors.js'

/** Stream protocol that reconciles the catalogs of two peers. */
export const SYNC_PROTOCOL = '/kilomesh/sync/1.0.0'

/** Largest sync message, in bytes, without its length prefix. */
export const MAX_SYNC_MESSAGE_BYTES = 1024 * 1024

/** Most record envelopes in one sync message. */
export const MAX_SYNC_RECORDS_PER_MESSAGE = 1024

/** Most node entries (splits, lists and wants together) in one sync message. */
export const MAX_SYNC_NODES_PER_MESSAGE = 1024

/** Most messages either side receives in one session; the session ends when this is reached. */
export const MAX_SYNC_ROUNDS = 64

/** Deepest node, in nibbles: the full 8-byte item key. */
export const MAX_SYNC_DEPTH = 16

/** Children of every node. */
export const SYNC_FANOUT = 16

/** Bytes of an item key. */
export const ITEM_KEY_BYTES = 8

/**
 * A node that differs and contains at most this many items on the sender's side
 * is listed in full instead of split, because listing a few 8-byte keys
 * costs about as much as 16 child summaries and settles the node at once.
 */
export const SYNC_LIST_THRESHOLD = 16

/** A node: the items whose key starts with the top `depth` nibbles of `prefix`. */
export interface SyncNode {
  /** Number of nibbles, 0 (the root, every item) to MAX_SYNC_DEPTH. */
  depth: number
  /** The prefix as an integer below 16^depth. */
  prefix: bigint
}

/** The item count and key sum of a node. */
export interface NodeSummary {
  count: number
  /** Sum of the item keys modulo 2^64. */
  sum: bigint
}

const KEY_BITS = 64n

/** Returns the first and the one-past-last item key that a node covers; the end is 2^64 for the last node. */
export function nodeRange (node: SyncNode): { start: bigint, end: bigint } {
  const shift = KEY_BITS - BigInt(node.depth * 4)
  return { start: node.prefix << shift, end: (node.prefix + 1n) << shift }
}

/** Returns child `nibble` (0 to 15) of a node. */
export function childNode (node: SyncNode, nibble: number): SyncNode {
  return { depth: node.depth + 1, prefix: (node.prefix << 4n) | BigInt(nibble) }
}

/** Returns a stable string for a node, usable as a map key and in logs. */
export function nodeId (node: SyncNode): string {
  return node.depth === 0 ? 'root' : node.prefix.toString(16).padStart(node.depth, '0')
}

/** Encodes a node as its depth byte followed by the prefix packed two nibbles per byte, high nibble first. */
export function encodeNode (node: SyncNode): Uint8Array<ArrayBuffer> {
  const byteLength = Math.ceil(node.depth / 2)
  const bytes = new Uint8Array(1 + byteLength)
  bytes[0] = node.depth

  // Pad an odd prefix with a zero nibble so that it fills whole bytes.
  let padded = node.prefix << BigInt((byteLength * 2 - node.depth) * 4)
  for (let index = byteLength; index >= 1; index--) {
    bytes[index] = Number(padded & 0xffn)
    padded >>= 8n
  }

  return bytes
}

/** Decodes a node; throws InvalidMessageError when the depth, length or padding is wrong. */
export function decodeNode (bytes: Uint8Array): SyncNode {
  const depth = bytes[0]
  if (depth == null || depth > MAX_SYNC_DEPTH || bytes.byteLength !== 1 + Math.ceil(depth / 2)) {
    throw new InvalidMessageError(`invalid sync node of ${bytes.byteLength} bytes with depth ${String(depth)}: expected a depth from 0 to ${MAX_SYNC_DEPTH} followed by ceil(depth / 2) prefix bytes`)
  }

  let padded = 0n
  for (let index = 1; index < bytes.byteLength; index++) {
    padded = (padded << 8n) | BigInt(bytes[index] as number)
  }

  if (depth % 2 === 1 && (padded & 0xfn) !== 0n) {
    throw new InvalidMessageError(`invalid sync node at depth ${depth}: the padding nibble after an odd prefix must be 0`)
  }

  return { depth, prefix: depth % 2 === 1 ? padded >> 4n : padded }
}

function writeVarint (value: number, output: number[]): void {
  let rest = value
  while (rest >= 0x80) {
    output.push((rest & 0x7f) | 0x80)
    rest = Math.floor(rest / 128)
  }
  output.push(rest)
}

/** Encodes the 16 child summaries of a node split. */
export function encodeSummaries (summaries: readonly NodeSummary[]): Uint8Array<ArrayBuffer> {
  const output: number[] = []
  for (const summary of summaries) {
    writeVarint(summary.count, output)
    if (summary.count !== 0) {
      for (let shift = 56n; shift >= 0n; shift -= 8n) {
        output.push(Number((summary.sum >> shift) & 0xffn))
      }
    }
  }

  return Uint8Array.from(output)
}

/** Decodes the 16 child summaries of a node split; throws InvalidMessageError on any malformed byte. */
export function decodeSummaries (bytes: Uint8Array): NodeSummary[] {
  const summaries: NodeSummary[] = []
  let offset = 0

  while (summaries.length < SYNC_FANOUT) {
    let count = 0
    let scale = 1
    for (let length = 0; ; length++) {
      const byte = bytes[offset++]
      if (byte == null || length >= 5) {
        throw new InvalidMessageError('invalid sync node summaries: truncated or overlong item count')
      }

      count += (byte & 0x7f) * scale
      scale *= 128
      if (byte < 0x80) {
        break
      }
    }

    if (count > 0xffffffff) {
      throw new InvalidMessageError(`invalid sync node summaries: item count ${count} exceeds 2^32 - 1`)
    }

    let sum = 0n
    if (count !== 0) {
      if (offset + 8 > bytes.byteLength) {
        throw new InvalidMessageError('invalid sync node summaries: truncated key sum')
      }

      for (let index = 0; index < 8; index++) {
        sum = (sum << 8n) | BigInt(bytes[offset++] as number)
      }
    }

    summaries.push({ count, sum })
  }

  if (offset !== bytes.byteLength) {
    throw new InvalidMessageError(`invalid sync node summaries: ${bytes.byteLength - offset} bytes after the ${SYNC_FANOUT} summaries`)
  }

  return summaries
}

/** Encodes item keys as concatenated 8-byte big-endian values. */
export function encodeItemKeys (keys: readonly bigint[]): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(keys.length * ITEM_KEY_BYTES)
  const view = new DataView(bytes.buffer)
  keys.forEach((key, index) => { view.setBigUint64(index * ITEM_KEY_BYTES, key) })
  return bytes
}

/** Decodes concatenated 8-byte item keys; throws InvalidMessageError when the length is not a multiple of 8. */
export function decodeItemKeys (bytes: Uint8Array): bigint[] {
  if (bytes.byteLength % ITEM_KEY_BYTES !== 0) {
    throw new InvalidMessageError(`invalid sync item key list of ${bytes.byteLength} bytes: expected a multiple of ${ITEM_KEY_BYTES}`)
  }

  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const keys: bigint[] = []
  for (let offset = 0; offset < bytes.byteLength; offset += ITEM_KEY_BYTES) {
    keys.push(view.getBigUint64(offset))
  }

  return keys
}
