import { expect } from 'chai'
import { defaultConfig, parseBootstrapAddress, unknownConfigKeys, validateConfig } from '../../../node/config/config.js'
import { InvalidConfigError } from '../../../node/config/errors.js'

const PEER_ID = '12D3KooWJ4dY2kFZkCZxH4nqRznbDgK4NnsVPLB4o6Ggg6xiHkQR'

/** Returns the error that validateConfig raises for `value`, or undefined when it accepts it. */
function configError (value: unknown): Error | undefined {
  try {
    validateConfig(value, 'config.json')
    return undefined
  } catch (err: any) {
    return err
  }
}

describe('config validation', () => {
  it('bootstrap address with a valid peer ID passes', () => {
    const address = `/ip4/127.0.0.1/tcp/4001/p2p/${PEER_ID}`

    expect(parseBootstrapAddress(address, 'bootstrap address 1')).to.equal(address)
  })

  it('bootstrap address with an invalid peer ID fails', () => {
    expect(() => parseBootstrapAddress('/ip4/127.0.0.1/tcp/4001/p2p/garbage', 'bootstrap address 1'))
      .to.throw(InvalidConfigError, /invalid peer ID "garbage"/)
  })

  const badTrust: Array<{ name: string, trust: unknown, message: RegExp }> = [
    { name: 'a string', trust: 'any', message: /"trust" must be an object/ },
    { name: 'a mistyped key', trust: { Mode: 'any' }, message: /unknown key\(s\) "Mode" in "trust"/ },
    { name: 'an unknown mode', trust: { mode: 'everyone' }, message: /invalid trust mode "everyone"/ },
    { name: 'entries as an object', trust: { entries: {} }, message: /"trust.entries" must be an array/ },
    { name: 'a null entry', trust: { entries: [null] }, message: /"trust.entries\[0\]" must be an object/ },
    { name: 'a numeric peer ID', trust: { entries: [{ peerId: 5 }] }, message: /"trust.entries\[0\]" must be an object/ },
    { name: 'an invalid peer ID', trust: { entries: [{ peerId: 'garbage' }] }, message: /invalid publisher peer ID "garbage"/ },
    { name: 'an invalid pattern', trust: { entries: [{ peerId: PEER_ID, repository: 'a b' }] }, message: /invalid repository pattern "a b"/ }
  ]
  for (const { name, trust, message } of badTrust) {
    it(`trust section with ${name} fails`, () => {
      const error = configError({ trust })

      expect(error).to.be.instanceOf(InvalidConfigError)
      expect(error?.message).to.match(message)
      expect(error?.message).to.include('config.json')
    })
  }

  it('unknown keys are named', () => {
    const config = { ...defaultConfig(), maxStorage: 1_000, subscriptions: ['demo/httpd'] }

    expect(unknownConfigKeys(config)).to.deep.equal(['maxStorage'])
  })

  it('trust section with valid entries passes', () => {
    const trust = { mode: 'explicit', entries: [{ peerId: PEER_ID, repository: 'demo/*' }] }

    expect(configError({ trust })).to.equal(undefined)
  })
})
