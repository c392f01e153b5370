/** Errors raised while fetching blobs from peers. */

/** No reachable peer had the blob, or every source failed. */
export class NoSourceError extends Error {
  static override readonly name = 'NoSourceError'
  override readonly name = 'NoSourceError'
}

/** A source delivered no byte for longer than the stall timeout. */
export class StallError extends Error {
  static override readonly name = 'StallError'
  override readonly name = 'StallError'
}

/** No source started sending a blob before the caller's deadline. */
export class NotStartedError extends Error {
  static override readonly name = 'NotStartedError'
  override readonly name = 'NotStartedError'
}

/** A source stated a blob size above the caller's limit, such as a layer requested as a manifest. */
export class BlobTooLargeError extends Error {
  static override readonly name = 'BlobTooLargeError'
  override readonly name = 'BlobTooLargeError'

  constructor (message: string, readonly statedBytes: number) {
    super(message)
  }
}
