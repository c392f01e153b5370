/** Errors raised by the content store. */

/** The store holds no blob with the requested digest. */
export class BlobNotFoundError extends Error {
  static override readonly name = 'BlobNotFoundError'
  override readonly name = 'BlobNotFoundError'
}

/** A blob on disk no longer hashes to its digest; it has been moved aside and is not served. */
export class CorruptBlobError extends Error {
  static override readonly name = 'CorruptBlobError'
  override readonly name = 'CorruptBlobError'
}

/** A blob is larger than the size it was announced with or than a configured limit. */
export class BlobTooLargeError extends Error {
  static override readonly name = 'BlobTooLargeError'
  override readonly name = 'BlobTooLargeError'
}

/** A file in the data directory is missing, unreadable or not what kilomesh wrote. */
export class InvalidDataDirectoryError extends Error {
  static override readonly name = 'InvalidDataDirectoryError'
  override readonly name = 'InvalidDataDirectoryError'
}
