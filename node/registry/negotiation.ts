/**
 * Content negotiation for manifests over the `Accept` header. Clients send
 * it repeated (skopeo sends six headers) or comma-joined, with optional
 * parameters; an entry with `q=0` rules a type out.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9110#name-accept
 */
import { normalizeMediaType } from '../image/media-types.js'

/** The media types a request accepts. */
export interface AcceptedTypes {
  /** True when anything goes: no `Accept` header, or a `*` wildcard in it. */
  any: boolean
  types: Set<string>
  /** Types ruled out with `q=0`, which a wildcard in the same header does not bring back. */
  excluded: Set<string>
}

/** Reads the values of every `Accept` header of a request, as `req.headersDistinct.accept` lists them. */
export function parseAccept (headers: string[]): AcceptedTypes {
  const accepted: AcceptedTypes = { any: headers.length === 0, types: new Set(), excluded: new Set() }

  for (const entry of headers.flatMap(header => header.split(','))) {
    const [type = '', ...parameters] = entry.split(';')
    const mediaType = normalizeMediaType(type)
    if (mediaType === '') {
      continue
    }

    const excluded = parameters.some(parameter => /^\s*q\s*=\s*0(?:\.0{0,3})?\s*$/i.test(parameter))
    if (excluded) {
      accepted.excluded.add(mediaType)
      continue
    }

    if (mediaType === '*/*' || mediaType === 'application/*') {
      accepted.any = true
    } else {
      accepted.types.add(mediaType)
    }
  }

  // A header that lists only excluded or empty entries accepts nothing in
  // particular, which HTTP reads as no preference.
  if (headers.length > 0 && accepted.types.size === 0 && !accepted.any) {
    accepted.any = true
  }

  return accepted
}

/** Returns true when a media type is acceptable. */
export function isAccepted (accepted: AcceptedTypes, mediaType: string): boolean {
  const normalized = normalizeMediaType(mediaType)
  return !accepted.excluded.has(normalized) && (accepted.any || accepted.types.has(normalized))
}

/** Lists the accepted types for an error message. */
export function describeAccepted (accepted: AcceptedTypes): string {
  const types = accepted.any ? 'any type' : [...accepted.types].join(', ')
  return accepted.excluded.size === 0 ? types : `${types} except ${[...accepted.excluded].join(', ')} (q=0)`
}
