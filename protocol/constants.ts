/**
 * Wire-level identifiers and limits shared by the agent and the simulator.
 * Every implementation of the kilomesh protocols must use the same values.
 */

/** Stream protocol that serves blob bytes by digest from an offset. */
export const BLOB_PROTOCOL = '/kilomesh/blob/1.0.0'

/** Stream protocol that returns the signed tag records a peer holds for one tag. */
export const RESOLVE_PROTOCOL = '/kilomesh/resolve/1.0.0'

/** Gossipsub topic that carries newly published signed tag records. */
export const TAG_TOPIC = '/kilomesh/tags/1.0.0'

/** Payload type of the libp2p signed envelope that wraps a tag record. */
export const TAG_RECORD_DOMAIN = 'kilomesh-tag-record'

/** Multicodec of the tag record payload: 0x300001 in the private-use range, as an unsigned varint. */
export const TAG_RECORD_CODEC = new Uint8Array([0x81, 0x80, 0xc0, 0x01])

/** Largest manifest or index accepted from anywhere, as the OCI distribution spec suggests. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024

/** Largest length-prefixed control message on any kilomesh stream (requests and headers). */
export const MAX_MESSAGE_BYTES = 64 * 1024

/** Largest signed tag record envelope accepted from a peer. */
export const MAX_RECORD_ENVELOPE_BYTES = 4 * 1024

/** Most records a resolve response may carry. */
export const MAX_RESOLVE_RECORDS = 16

/** Longest repository name, in bytes, that kilomesh accepts. */
export const MAX_REPOSITORY_LENGTH = 255

/** Longest tag, in characters, allowed by the OCI distribution spec. */
export const MAX_TAG_LENGTH = 128
