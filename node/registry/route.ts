/**
 * Maps a request URL to a resource of the OCI distribution API. Repository
 * names are matched on the raw path, without percent-decoding, so an encoded
 * `/` or `..` never turns into a path separator or a parent folder. The
 * repository grammar has no `%`, so such a name is rejected as invalid.
 */
import { isRepository, parseRepository } from '../../protocol/reference.js'
import { MAX_URL_LENGTH } from './constants.js'
import { RegistryError } from './errors.js'

/** The resource a request addresses, with its repository already checked. */
export type Resource =
  | { kind: 'ping' }
  | { kind: 'catalog' }
  | { kind: 'tags', repository: RepositoryName }
  | { kind: 'manifest', repository: RepositoryName, reference: string }
  | { kind: 'blob', repository: RepositoryName, digest: string }
  | { kind: 'uploads', repository: RepositoryName }
  | { kind: 'upload', repository: RepositoryName, uploadId: string }
  | { kind: 'referrers', repository: RepositoryName, digest: string }

/**
 * A repository as the client wrote it in the path and as the mesh names it.
 * They differ for a containerd mirror request, whose `ns` query parameter
 * holds the registry host of the original image reference.
 */
export interface RepositoryName {
  /** Name in the request path; `Location` headers point back at it. */
  path: string
  /** Name in the kilomesh catalog: `NS/PATH` when the request has `ns`, else PATH. */
  repository: string
  /** The `ns` parameter, carried into `Location` headers so follow-up requests map the same way. */
  namespace?: string
}

/** A parsed request URL. */
export interface Route {
  resource: Resource
  query: URLSearchParams
}

const PATTERNS: Array<{ pattern: RegExp, build: (name: RepositoryName, match: RegExpExecArray) => Resource }> = [
  { pattern: /^\/v2\/(.+)\/tags\/list$/, build: (repository) => ({ kind: 'tags', repository }) },
  { pattern: /^\/v2\/(.+)\/manifests\/([^/]+)$/, build: (repository, match) => ({ kind: 'manifest', repository, reference: decodeSegment(match[2] ?? '') }) },
  { pattern: /^\/v2\/(.+)\/blobs\/uploads\/?$/, build: (repository) => ({ kind: 'uploads', repository }) },
  { pattern: /^\/v2\/(.+)\/blobs\/uploads\/([^/]+)$/, build: (repository, match) => ({ kind: 'upload', repository, uploadId: decodeSegment(match[2] ?? '') }) },
  { pattern: /^\/v2\/(.+)\/blobs\/([^/]+)$/, build: (repository, match) => ({ kind: 'blob', repository, digest: decodeSegment(match[2] ?? '') }) },
  { pattern: /^\/v2\/(.+)\/referrers\/([^/]+)$/, build: (repository, match) => ({ kind: 'referrers', repository, digest: decodeSegment(match[2] ?? '') }) }
]

/** Decodes a tag, digest or upload ID; some clients send `sha256%3A...`. Those grammars are checked later. */
function decodeSegment (segment: string): string {
  try {
    return decodeURIComponent(segment)
  } catch {
    return segment
  }
}

/**
 * Checks the repository in the path and applies containerd's `ns`
 * parameter. A namespace that cannot form a repository name (a host with a
 * port, say) gets NAME_UNKNOWN rather than NAME_INVALID, because containerd
 * only falls back to its next host on a 404.
 */
function repositoryName (path: string, namespace: string | null): RepositoryName {
  parseRepository(path)

  if (namespace == null || namespace === '') {
    return { path, repository: path }
  }

  // Host names are case-insensitive, and repository names are lower case.
  const repository = `${namespace.toLowerCase()}/${path}`
  if (!isRepository(repository)) {
    throw new RegistryError('NAME_UNKNOWN', `repository ${JSON.stringify(path)} of registry ${JSON.stringify(namespace.slice(0, 100))} cannot be held by kilomesh: "${namespace.slice(0, 100)}/${path}" is not a valid repository name`)
  }
  return { path, repository, namespace }
}

/**
 * Returns the path and query of an absolute URL as they were sent. The URL
 * class is not used, because it would resolve `..` and percent-encoded dots,
 * which the route check must see.
 */
function absolutePath (target: string): string {
  const rest = target.replace(/^https?:\/\/[^/?#]*/i, '')
  return rest.startsWith('/') ? rest : `/${rest}`
}

/** Parses a request URL (path and query, as node:http gives it) into a resource. */
export function parseRoute (target: string): Route {
  if (target.length > MAX_URL_LENGTH) {
    throw new RegistryError('URL_TOO_LONG', `request URL of ${target.length} characters is longer than the limit of ${MAX_URL_LENGTH}`)
  }

  // HTTP/1.1 servers must accept a target in absolute form, as a proxy gets it.
  const url = /^https?:\/\//i.test(target) ? absolutePath(target) : target

  const questionMark = url.indexOf('?')
  const path = questionMark === -1 ? url : url.slice(0, questionMark)
  const query = new URLSearchParams(questionMark === -1 ? '' : url.slice(questionMark + 1))

  if (path === '/v2' || path === '/v2/') {
    return { resource: { kind: 'ping' }, query }
  }

  if (path === '/v2/_catalog') {
    return { resource: { kind: 'catalog' }, query }
  }

  for (const { pattern, build } of PATTERNS) {
    const match = pattern.exec(path)
    if (match != null) {
      return { resource: build(repositoryName(match[1] ?? '', query.get('ns')), match), query }
    }
  }

  throw new RegistryError('ROUTE_UNKNOWN', `unknown path ${JSON.stringify(path.slice(0, 200))}: the registry serves the OCI distribution API under /v2/`)
}

/** Builds a path under a repository, keeping the `ns` parameter so the next request maps to the same repository. */
export function repositoryPath (name: RepositoryName, suffix: string, query: Record<string, string> = {}): string {
  const params = new URLSearchParams(query)
  if (name.namespace != null) {
    params.set('ns', name.namespace)
  }

  const search = params.toString()
  return `/v2/${name.path}/${suffix}${search === '' ? '' : `?${search}`}`
}
