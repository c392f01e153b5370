/** Tables of cases for the registry's parsers: routes, byte ranges, Accept headers and pagination. */
import { strict as assert } from 'node:assert'
import { RegistryError } from '../../../node/registry/errors.js'
import { describeAccepted, isAccepted, parseAccept } from '../../../node/registry/negotiation.js'
import { paginate } from '../../../node/registry/pagination.js'
import { parseRange } from '../../../node/registry/range.js'
import { parseRoute, repositoryPath } from '../../../node/registry/route.js'

const DIGEST = `sha256:${'a'.repeat(64)}`

function errorName (fn: () => unknown): string | undefined {
  try {
    fn()
    return undefined
  } catch (err) {
    return err instanceof RegistryError ? err.errorName : (err as Error).name
  }
}

describe('registry route', () => {
  const cases: Array<[string, unknown]> = [
    ['/v2/', { kind: 'ping' }],
    ['/v2', { kind: 'ping' }],
    ['/v2/_catalog?n=5', { kind: 'catalog' }],
    ['/v2/demo/httpd/tags/list', { kind: 'tags', repository: { path: 'demo/httpd', repository: 'demo/httpd' } }],
    ['/v2/a/b/c/manifests/v1', { kind: 'manifest', repository: { path: 'a/b/c', repository: 'a/b/c' }, reference: 'v1' }],
    [`/v2/demo/httpd/manifests/${DIGEST.replace(':', '%3A')}`, { kind: 'manifest', repository: { path: 'demo/httpd', repository: 'demo/httpd' }, reference: DIGEST }],
    ['/v2/demo/httpd/blobs/uploads/', { kind: 'uploads', repository: { path: 'demo/httpd', repository: 'demo/httpd' } }],
    ['/v2/demo/httpd/blobs/uploads', { kind: 'uploads', repository: { path: 'demo/httpd', repository: 'demo/httpd' } }],
    ['/v2/demo/httpd/blobs/uploads/abc', { kind: 'upload', repository: { path: 'demo/httpd', repository: 'demo/httpd' }, uploadId: 'abc' }],
    [`/v2/demo/httpd/blobs/${DIGEST}`, { kind: 'blob', repository: { path: 'demo/httpd', repository: 'demo/httpd' }, digest: DIGEST }],
    [`/v2/demo/blobs/blobs/${DIGEST}`, { kind: 'blob', repository: { path: 'demo/blobs', repository: 'demo/blobs' }, digest: DIGEST }],
    [`/v2/demo/httpd/referrers/${DIGEST}`, { kind: 'referrers', repository: { path: 'demo/httpd', repository: 'demo/httpd' }, digest: DIGEST }],
    ['/v2/library/busybox/manifests/1.35?ns=docker.io', { kind: 'manifest', repository: { path: 'library/busybox', repository: 'docker.io/library/busybox', namespace: 'docker.io' }, reference: '1.35' }],
    ['http://127.0.0.1:5000/v2/demo/httpd/tags/list', { kind: 'tags', repository: { path: 'demo/httpd', repository: 'demo/httpd' } }],
    ['/v2/library/busybox/tags/list?ns=DOCKER.IO', { kind: 'tags', repository: { path: 'library/busybox', repository: 'docker.io/library/busybox', namespace: 'DOCKER.IO' } }]
  ]

  for (const [url, expected] of cases) {
    it(`parses ${url.slice(0, 60)}`, () => {
      assert.deepEqual(parseRoute(url).resource, expected)
    })
  }

  const rejected: Array<[string, string]> = [
    ['/v2/Demo/tags/list', 'InvalidReferenceError'],
    ['/v2/demo/%2e%2e/tags/list', 'InvalidReferenceError'],
    ['/v2/demo//httpd/tags/list', 'InvalidReferenceError'],
    ['/v2/demo/httpd/manifests/', 'ROUTE_UNKNOWN'],
    ['/v1/demo/tags/list', 'ROUTE_UNKNOWN'],
    ['/v2/demo/httpd/tags/list?ns=host:5000', 'NAME_UNKNOWN'],
    ['http://127.0.0.1:5000/v2/demo/%2e%2e/tags/list', 'InvalidReferenceError'],
    [`/v2/demo/httpd/tags/list?last=${'a'.repeat(3000)}`, 'URL_TOO_LONG']
  ]

  for (const [url, name] of rejected) {
    it(`rejects ${url.slice(0, 60)} with ${name}`, () => {
      assert.equal(errorName(() => parseRoute(url)), name)
    })
  }

  it('location keeps the ns parameter', () => {
    const resource = parseRoute('/v2/library/busybox/blobs/uploads/?ns=docker.io').resource
    assert.equal(resource.kind, 'uploads')

    const path = resource.kind === 'uploads' ? repositoryPath(resource.repository, 'blobs/uploads/x') : ''
    assert.equal(path, '/v2/library/busybox/blobs/uploads/x?ns=docker.io')
  })
})

describe('registry range header', () => {
  const cases: Array<[string | undefined, number, unknown]> = [
    [undefined, 100, undefined],
    ['bytes=0-9', 100, { start: 0, end: 9 }],
    ['bytes=0-99999999999999999999', 100, { start: 0, end: 99 }],
    ['bytes=90-', 100, { start: 90, end: 99 }],
    ['bytes=-10', 100, { start: 90, end: 99 }],
    ['bytes=-1000', 100, { start: 0, end: 99 }],
    ['bytes=50-1000', 100, { start: 50, end: 99 }],
    ['bytes=0-0', 1, { start: 0, end: 0 }],
    ['bytes=0-9,20-29', 100, undefined],
    ['items=0-9', 100, undefined],
    ['bytes=9-0', 100, undefined],
    ['bytes=200-100', 100, undefined],
    ['bytes=-', 100, undefined]
  ]

  for (const [header, sizeBytes, expected] of cases) {
    it(`parses ${String(header)} of ${sizeBytes} bytes`, () => {
      assert.deepEqual(parseRange(header, sizeBytes), expected)
    })
  }

  for (const [header, sizeBytes] of [['bytes=100-', 100], ['bytes=-0', 100], ['bytes=0-', 0], ['bytes=99999999999999999999-', 100]] as const) {
    it(`rejects ${header} of ${sizeBytes} bytes`, () => {
      assert.equal(errorName(() => parseRange(header, sizeBytes)), 'RANGE_INVALID')
    })
  }
})

describe('registry accept header', () => {
  const acceptOf = (...values: string[]): string[] => values
  const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
  const OCI_INDEX = 'application/vnd.oci.image.index.v1+json'

  it('no header accepts anything', () => {
    assert.equal(isAccepted(parseAccept(acceptOf()), OCI_INDEX), true)
  })

  it('repeated headers accept each type', () => {
    const accepted = parseAccept(acceptOf(OCI_MANIFEST, OCI_INDEX))

    assert.equal(isAccepted(accepted, OCI_MANIFEST), true)
    assert.equal(isAccepted(accepted, OCI_INDEX), true)
    assert.equal(isAccepted(accepted, 'application/vnd.docker.distribution.manifest.v2+json'), false)
  })

  it('comma-joined header accepts each type', () => {
    const accepted = parseAccept(acceptOf(`${OCI_MANIFEST}, ${OCI_INDEX};q=0.9`))

    assert.equal(isAccepted(accepted, OCI_MANIFEST), true)
    assert.equal(isAccepted(accepted, OCI_INDEX), true)
  })

  it('q=0 excludes a type', () => {
    const accepted = parseAccept(acceptOf(`${OCI_MANIFEST}, ${OCI_INDEX};q=0`))

    assert.equal(isAccepted(accepted, OCI_INDEX), false)
  })

  it('q=0 excludes a type despite a wildcard', () => {
    const accepted = parseAccept(acceptOf(`${OCI_INDEX};q=0, */*`))

    assert.equal(isAccepted(accepted, OCI_INDEX), false)
    assert.equal(isAccepted(accepted, OCI_MANIFEST), true)
    assert.equal(describeAccepted(accepted), `any type except ${OCI_INDEX} (q=0)`)
  })

  it('wildcard accepts anything', () => {
    assert.equal(isAccepted(parseAccept(acceptOf(`${OCI_MANIFEST}, */*`)), OCI_INDEX), true)
  })
})

describe('registry pagination', () => {
  const tags = ['v3', 'v1', 'latest', 'v2']
  const cases: Array<[string, unknown]> = [
    ['', { entries: ['latest', 'v1', 'v2', 'v3'] }],
    ['n=2', { entries: ['latest', 'v1'], nextLast: 'v1' }],
    ['n=2&last=v1', { entries: ['v2', 'v3'] }],
    ['last=v2', { entries: ['v3'] }],
    ['last=v3', { entries: [] }],
    ['last=a', { entries: ['latest', 'v1', 'v2', 'v3'] }],
    ['n=0', { entries: [] }],
    ['n=4', { entries: ['latest', 'v1', 'v2', 'v3'] }]
  ]

  for (const [query, expected] of cases) {
    it(`pages ${query === '' ? 'without parameters' : query}`, () => {
      assert.deepEqual(paginate(tags, new URLSearchParams(query)), expected)
    })
  }

  it('rejects a negative n', () => {
    assert.equal(errorName(() => paginate(tags, new URLSearchParams('n=-1'))), 'PAGINATION_NUMBER_INVALID')
  })
})
