import { expect } from 'chai'
import { InvalidReferenceError, InvalidDigestError } from '../../protocol/errors.js'
import { formatReference, parseReference } from '../../protocol/reference.js'

const DIGEST = 'sha256:b00a22a43573e6deb217672d8fad3294e1a02e7d984c5a072d2044b18f24928c'

describe('protocol reference', () => {
  const valid: Array<[string, { repository: string, tag?: string, digest?: string }]> = [
    ['demo/httpd:v1', { repository: 'demo/httpd', tag: 'v1' }],
    ['a:latest', { repository: 'a', tag: 'latest' }],
    ['org.example/team__x/app-1:1.35_rc.2', { repository: 'org.example/team__x/app-1', tag: '1.35_rc.2' }],
    [`demo/httpd@${DIGEST}`, { repository: 'demo/httpd', digest: DIGEST }]
  ]

  for (const [input, expected] of valid) {
    it(`parses ${input}`, () => {
      const parsed = parseReference(input)
      expect(parsed.repository).to.equal(expected.repository)
      expect(parsed.tag).to.equal(expected.tag)
      expect(parsed.digest).to.equal(expected.digest)
      expect(formatReference(parsed)).to.equal(input)
    })
  }

  const invalid: Array<[string, string, RegExp]> = [
    ['uppercase repository', 'Demo/httpd:v1', /invalid repository name/],
    ['missing tag', 'demo/httpd', /missing tag/],
    ['invalid name without tag', 'Bad Ref', /invalid repository name "Bad Ref"/],
    ['empty tag', 'demo/httpd:', /invalid tag/],
    ['tag with slash after colon', 'demo:v1/x', /missing tag/],
    ['path traversal', '../../etc:v1', /invalid repository name/],
    ['leading slash', '/demo:v1', /invalid repository name/],
    ['double slash', 'demo//httpd:v1', /invalid repository name/],
    ['tag starting with dot', 'demo:.v1', /invalid tag/],
    ['tag too long', `demo:${'a'.repeat(129)}`, /invalid tag/],
    ['tag and digest', `demo:v1@${DIGEST}`, /not both/]
  ]

  for (const [name, input, message] of invalid) {
    it(`rejects ${name}`, () => {
      expect(() => parseReference(input)).to.throw(InvalidReferenceError, message)
    })
  }

  it('rejects a malformed digest', () => {
    expect(() => parseReference('demo@sha256:xyz')).to.throw(InvalidDigestError)
  })

  it('rejects a digest where only tags are allowed', () => {
    expect(() => parseReference(`demo@${DIGEST}`, { allowDigest: false })).to.throw(InvalidReferenceError, /REPOSITORY:TAG/)
  })
})
