/** Errors raised while reading, importing and exporting OCI images. */

/** A manifest, image index or layout index.json is not valid JSON of the expected shape. */
export class InvalidManifestError extends Error {
  static override readonly name = 'InvalidManifestError'
  override readonly name = 'InvalidManifestError'
}

/** A platform string is not `OS/ARCHITECTURE[/VARIANT]` or `all`. */
export class InvalidPlatformError extends Error {
  static override readonly name = 'InvalidPlatformError'
  override readonly name = 'InvalidPlatformError'
}

/** No manifest of an image index matches the requested platform. */
export class NoMatchingPlatformError extends Error {
  static override readonly name = 'NoMatchingPlatformError'
  override readonly name = 'NoMatchingPlatformError'

  constructor (message: string, readonly availablePlatforms: string[]) {
    super(message)
  }
}

/**
 * An import source is missing, of an unknown kind, lacks the requested tag or
 * a blob, or contains a blob whose size differs from its descriptor.
 */
export class InvalidImageSourceError extends Error {
  static override readonly name = 'InvalidImageSourceError'
  override readonly name = 'InvalidImageSourceError'
}

/** An import source contains several images and the caller named none of them. */
export class AmbiguousImageError extends Error {
  static override readonly name = 'AmbiguousImageError'
  override readonly name = 'AmbiguousImageError'

  constructor (message: string, readonly refNames: string[]) {
    super(message)
  }
}

/** A tar entry has an absolute path, a `..` component, or a link that points outside the archive. */
export class UnsafeArchiveEntryError extends Error {
  static override readonly name = 'UnsafeArchiveEntryError'
  override readonly name = 'UnsafeArchiveEntryError'
}

/** An export destination exists but is not an OCI image layout, so writing there could clobber other files. */
export class InvalidExportDestinationError extends Error {
  static override readonly name = 'InvalidExportDestinationError'
  override readonly name = 'InvalidExportDestinationError'
}

/** Returns the `code` of a Node.js system error (such as "ENOENT"), or undefined for any other value. */
export function errorCode (err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' ? code : undefined
}

/** Returns an error's message, or the value as a string when it is not an Error. */
export function errorMessage (err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
