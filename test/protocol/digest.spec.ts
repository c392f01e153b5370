import { expect } from 'chai'
import { CID } from 'multiformats/cid'
import { cidToDigest, digestOf, digestToCid, isDigest, parseDigest } from '../../protocol/digest.js'
import { InvalidDigestError } from '../../protocol/errors.js'

const VALID = 'sha256:b00a22a43573e6deb217672d8fad3294e1a02e7d984c5a072d2044b18f24928c'

describe('protocol digest', () => {
  const invalid: Array<[string, unknown]> = [
    ['uppercase hex', VALID.toUpperCase().replace('SHA256', 'sha256')],
    ['short hex', 'sha256:abc'],
    ['other algorithm', `sha512:${'a'.repeat(128)}`],
    ['path traversal', 'sha256:../../etc/passwd'],
    ['missing algorithm', 'b00a22a43573e6deb217672d8fad3294e1a02e7d984c5a072d2044b18f24928c'],
    ['trailing newline', `${VALID}\n`],
    ['not a string', 42]
  ]

  for (const [name, value] of invalid) {
    it(`rejects ${name}`, () => {
      expect(isDigest(value)).to.equal(false)
      expect(() => parseDigest(value)).to.throw(InvalidDigestError, /invalid digest/)
    })
  }

  it('accepts a well-formed digest', () => {
    expect(parseDigest(VALID)).to.equal(VALID)
  })

  it('computes the digest of bytes', () => {
    expect(digestOf(new TextEncoder().encode('hello'))).to.equal('sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824')
  })

  it('round-trips through a raw CIDv1', () => {
    const cid = digestToCid(VALID)
    expect(cid.version).to.equal(1)
    expect(cid.code).to.equal(0x55)
    expect(cidToDigest(CID.parse(cid.toString()))).to.equal(VALID)
  })

  it('rejects a CID without a sha2-256 multihash', () => {
    const identity = CID.parse('bafkqaaa')
    expect(() => cidToDigest(identity)).to.throw(InvalidDigestError)
  })
})
