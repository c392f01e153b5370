/** References in manifest paths: `/v2/<name>/manifests/<tag or digest>`. */
import { parseDigest, type OciDigest } from '../../protocol/digest.js'
import { parseTag } from '../../protocol/reference.js'
import { RegistryError } from './errors.js'

/** A manifest reference from the path: a tag or a digest. */
export type ManifestReference = { tag: string, digest?: undefined } | { digest: OciDigest, tag?: undefined }

/** Parses the reference of a manifest path: a digest when it contains ":", else a tag. */
export function parseManifestReference (reference: string): ManifestReference {
  if (reference.includes(':')) {
    return { digest: parseDigest(reference, 'manifest digest') }
  }

  try {
    return { tag: parseTag(reference) }
  } catch (err) {
    throw new RegistryError('TAG_INVALID', (err as Error).message)
  }
}
