/**
 * Errors raised by the tag catalog and its trust policy. Records that fail
 * the merge or the policy are not errors: `Catalog.add` reports them in its
 * result. These classes cover bad configuration and misuse.
 */

/** A catalog or trust option has a value outside its allowed range. */
export class InvalidCatalogOptionError extends Error {
  static override readonly name = 'InvalidCatalogOptionError'
  override readonly name = 'InvalidCatalogOptionError'
}

/** A trust entry names an invalid peer ID or repository pattern. */
export class InvalidTrustEntryError extends Error {
  static override readonly name = 'InvalidTrustEntryError'
  override readonly name = 'InvalidTrustEntryError'
}

/** The catalog was used before `start` or after `stop`. */
export class CatalogNotStartedError extends Error {
  static override readonly name = 'CatalogNotStartedError'
  override readonly name = 'CatalogNotStartedError'
}
