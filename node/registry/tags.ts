/** `GET /v2/<name>/tags/list`: the live tags of a repository, paginated. */
import { withTimeout, type MethodHandlers } from './context.js'
import { RegistryError } from './errors.js'
import { sendJson } from './http.js'
import { nextLink, paginate, parsePageSize } from './pagination.js'

/** Handlers of `/v2/<name>/tags/list`. */
export const tagsHandlers: MethodHandlers<'tags'> = {
  GET: async ({ context, req, res, route, signal }, resource) => {
    const name = resource.repository
    const tags = await context.backend.listTags(name.repository, { signal: withTimeout(signal, context.limits.resolveTimeoutMs) })
    if (tags.length === 0) {
      throw new RegistryError('NAME_UNKNOWN', `repository ${name.repository} has no tags in the kilomesh catalog: push one, or check the name with GET /v2/_catalog`)
    }

    const page = paginate(tags, route.query)
    const headers: Record<string, string> = {}
    if (page.nextLast != null) {
      const extra: Record<string, string> = name.namespace == null ? {} : { ns: name.namespace }
      headers.Link = nextLink(`/v2/${name.path}/tags/list`, parsePageSize(route.query) ?? page.entries.length, page.nextLast, extra)
    }

    sendJson(res, 200, { name: name.path, tags: page.entries }, headers, req.method === 'HEAD')
  }
}
