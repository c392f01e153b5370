/**
 * Repository names, tags and image references, checked against the grammar
 * of the OCI distribution spec. These strings end up in file names, HTTP
 * paths and signed records, so everything read from outside passes here.
 *
 * @see https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pulling-manifests
 */
import { MAX_REPOSITORY_LENGTH, MAX_TAG_LENGTH } from './constants.js'
import { parseDigest, type OciDigest } from './digest.js'
import { InvalidReferenceError } from './errors.js'

const REPOSITORY_PATTERN = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/
const TAG_PATTERN = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/

/** A reference to one image: a repository plus either a tag or a digest. */
export type ImageReference =
  | { repository: string, tag: string, digest?: undefined }
  | { repository: string, digest: OciDigest, tag?: undefined }

function show (value: string): string {
  return JSON.stringify(value.length > 140 ? `${value.slice(0, 140)}...` : value)
}

/** Returns true when `value` is a valid OCI repository name. */
export function isRepository (value: string): boolean {
  return value.length <= MAX_REPOSITORY_LENGTH && REPOSITORY_PATTERN.test(value)
}

/** Returns true when `value` is a valid OCI tag. */
export function isTag (value: string): boolean {
  return value.length <= MAX_TAG_LENGTH && TAG_PATTERN.test(value)
}

/** Checks a repository name and returns it, or throws an error naming the value and the rule. */
export function parseRepository (value: string): string {
  if (!isRepository(value)) {
    throw new InvalidReferenceError(`invalid repository name ${show(value)}: use lowercase letters and digits separated by ".", "_", "__", "-" or "/", at most ${MAX_REPOSITORY_LENGTH} characters (for example "demo/httpd")`)
  }

  return value
}

/** Checks a tag and returns it, or throws an error naming the value and the rule. */
export function parseTag (value: string): string {
  if (!isTag(value)) {
    throw new InvalidReferenceError(`invalid tag ${show(value)}: a tag starts with a letter, digit or "_", continues with letters, digits, ".", "_" or "-", and has at most ${MAX_TAG_LENGTH} characters`)
  }

  return value
}

/**
 * Parses `REPOSITORY:TAG` or `REPOSITORY@DIGEST`. With `allowDigest` false,
 * only the tag form is accepted, which is what publishing needs.
 */
export function parseReference (value: string, options: { allowDigest?: boolean } = {}): ImageReference {
  const allowDigest = options.allowDigest ?? true
  const at = value.indexOf('@')

  if (at !== -1) {
    if (!allowDigest) {
      throw new InvalidReferenceError(`invalid reference ${show(value)}: a digest cannot be published to, give REPOSITORY:TAG`)
    }

    const repository = value.slice(0, at)
    if (repository.includes(':')) {
      throw new InvalidReferenceError(`invalid reference ${show(value)}: give either REPOSITORY:TAG or REPOSITORY@DIGEST, not both`)
    }

    return { repository: parseRepository(repository), digest: parseDigest(value.slice(at + 1)) }
  }

  const colon = value.lastIndexOf(':')
  if (colon === -1 || colon < value.lastIndexOf('/')) {
    // An invalid name is the first thing to fix, so it is named before the missing tag.
    if (colon === -1) {
      parseRepository(value)
    }
    const forms = allowDigest ? 'REPOSITORY:TAG or REPOSITORY@DIGEST' : 'REPOSITORY:TAG'
    throw new InvalidReferenceError(`invalid reference ${show(value)}: missing tag, give ${forms} (for example "demo/httpd:v1")`)
  }

  return { repository: parseRepository(value.slice(0, colon)), tag: parseTag(value.slice(colon + 1)) }
}

/** Formats a reference back to its string form. */
export function formatReference (reference: ImageReference): string {
  return reference.tag != null ? `${reference.repository}:${reference.tag}` : `${reference.repository}@${reference.digest}`
}
