/**
 * `GET /v2/<name>/referrers/<digest>`: the manifests whose `subject` is the
 * given manifest, as an OCI image index, optionally filtered by
 * `artifactType`. The content store is shared by all repositories, so the
 * response lists every stored referrer of that digest, whatever repository
 * it was pushed to.
 *
 * @see https://github.com/opencontainers/distribution-spec/blob/main/spec.md#listing-referrers
 */
import { parseDigest } from '../../protocol/digest.js'
import { OCI_INDEX } from '../image/media-types.js'
import { sendJson } from './http.js'
import type { MethodHandlers } from './context.js'

/** Handlers of `/v2/<name>/referrers/<digest>`. An unknown subject has no referrers, which is a 200 with an empty list. */
export const referrersHandlers: MethodHandlers<'referrers'> = {
  GET: async ({ context, req, res, route, signal }, resource) => {
    const subject = parseDigest(resource.digest, 'subject digest')
    let manifests = await context.referrers.list(subject, { signal })

    const headers: Record<string, string> = { 'Content-Type': OCI_INDEX }
    const artifactType = route.query.get('artifactType')
    if (artifactType != null && artifactType !== '') {
      manifests = manifests.filter(descriptor => descriptor.artifactType === artifactType)
      headers['OCI-Filters-Applied'] = 'artifactType'
    }

    sendJson(res, 200, { schemaVersion: 2, mediaType: OCI_INDEX, manifests }, headers, req.method === 'HEAD')
  }
}
