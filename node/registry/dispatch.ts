/** Sends each request to the handler of its resource and method. */
import { blobHandlers } from './blobs.js'
import { catalogHandlers } from './catalog.js'
import { RegistryError } from './errors.js'
import { manifestHandlers } from './manifests.js'
import { pingHandlers } from './ping.js'
import { referrersHandlers } from './referrers.js'
import { tagsHandlers } from './tags.js'
import { uploadHandlers, uploadsHandlers } from './uploads.js'
import type { Method, MethodHandlers, RegistryRequest } from './context.js'
import type { Resource } from './route.js'

const HANDLERS: { [K in Resource['kind']]: MethodHandlers<K> } = {
  ping: pingHandlers,
  catalog: catalogHandlers,
  tags: tagsHandlers,
  manifest: manifestHandlers,
  blob: blobHandlers,
  uploads: uploadsHandlers,
  upload: uploadHandlers,
  referrers: referrersHandlers
}

/** Lists the methods a resource accepts, for the `Allow` header. */
function allowedMethods (handlers: MethodHandlers<Resource['kind']>): string {
  const methods = Object.keys(handlers)
  if (methods.includes('GET') && !methods.includes('HEAD')) {
    methods.splice(methods.indexOf('GET') + 1, 0, 'HEAD')
  }
  return methods.join(', ')
}

/** Runs the handler for the request's resource and method; HEAD uses GET's handler, which leaves out the body. */
export async function dispatch (request: RegistryRequest): Promise<void> {
  const resource = request.route.resource
  const handlers = HANDLERS[resource.kind] as MethodHandlers<Resource['kind']>
  const method = (request.req.method ?? 'GET') as Method

  const handler = (handlers[method] ?? (method === 'HEAD' ? handlers.GET : undefined))
  if (handler == null) {
    throw new RegistryError('METHOD_NOT_ALLOWED', `${request.req.method} is not allowed on ${resource.kind === 'ping' ? '/v2/' : `the ${resource.kind} resource`}; allowed: ${allowedMethods(handlers)}`, { Allow: allowedMethods(handlers) })
  }

  await handler(request, resource)
}
