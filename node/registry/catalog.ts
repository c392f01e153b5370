/** `GET /v2/_catalog`: the repositories of the kilomesh catalog, paginated. */
import { withTimeout, type MethodHandlers } from './context.js'
import { sendJson } from './http.js'
import { nextLink, paginate, parsePageSize } from './pagination.js'

/** Handlers of `/v2/_catalog`. */
export const catalogHandlers: MethodHandlers<'catalog'> = {
  GET: async ({ context, req, res, route, signal }) => {
    const repositories = await context.backend.listRepositories({ signal: withTimeout(signal, context.limits.resolveTimeoutMs) })
    const page = paginate(repositories, route.query)

    const headers: Record<string, string> = {}
    if (page.nextLast != null) {
      headers.Link = nextLink('/v2/_catalog', parsePageSize(route.query) ?? page.entries.length, page.nextLast)
    }

    sendJson(res, 200, { repositories: page.entries }, headers, req.method === 'HEAD')
  }
}
