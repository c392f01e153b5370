/**
 * Errors raised while parsing or checking wire-level values. Each carries a
 * stable `name` so that callers and the HTTP layers can map it without
 * matching on message text.
 */

/** A digest string is not `sha256:` followed by 64 lowercase hex characters. */
export class InvalidDigestError extends Error {
  static override readonly name = 'InvalidDigestError'
  override readonly name = 'InvalidDigestError'
}

/** A repository name, tag or reference does not follow the OCI distribution grammar. */
export class InvalidReferenceError extends Error {
  static override readonly name = 'InvalidReferenceError'
  override readonly name = 'InvalidReferenceError'
}

/** Bytes did not hash to the digest they were requested or announced under. */
export class DigestMismatchError extends Error {
  static override readonly name = 'DigestMismatchError'
  override readonly name = 'DigestMismatchError'
}

/** A tag record or its envelope is malformed, oversized or wrongly signed. */
export class InvalidRecordError extends Error {
  static override readonly name = 'InvalidRecordError'
  override readonly name = 'InvalidRecordError'
}

/** A message from a peer is larger than the protocol allows or cannot be decoded. */
export class InvalidMessageError extends Error {
  static override readonly name = 'InvalidMessageError'
  override readonly name = 'InvalidMessageError'
}
