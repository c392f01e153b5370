import { strict as assert } from 'node:assert'
import { matchesPattern, TrustPolicy, type TrustConfig } from '../../../node/catalog/trust.js'
import { createPublisher, type Publisher } from './records.js'

describe('TrustPolicy', () => {
  let local: Publisher
  let alice: Publisher
  let bob: Publisher

  before(async () => {
    local = await createPublisher()
    alice = await createPublisher()
    bob = await createPublisher()
  })

  const patternCases: Array<[string, string, boolean]> = [
    ['*', 'demo/httpd', true],
    ['demo/*', 'demo/httpd', true],
    ['demo/*', 'demo/a/b', true],
    ['demo/*', 'demo', false],
    ['demo/httpd', 'demo/httpd', true],
    ['demo/httpd', 'demo/httpd2', false],
    ['demo.x', 'demoax', false],
    ['*/httpd', 'demo/httpd', true],
    ['*-dev', 'tools/app-dev', true]
  ]

  for (const [pattern, repository, expected] of patternCases) {
    it(`matchesPattern ${pattern} against ${repository} is ${expected}`, () => {
      assert.equal(matchesPattern(pattern, repository), expected)
    })
  }

  it('first-use gives a repository to its first publisher', () => {
    const policy = new TrustPolicy({ localPeerId: local.peerId })

    const first = policy.check(alice.peerId, 'demo/httpd')
    policy.setOwner('demo/httpd', alice.peerId)
    const again = policy.check(alice.peerId, 'demo/httpd')
    const outsider = policy.check(bob.peerId, 'demo/httpd')

    assert.equal(first.allowed, true)
    assert.equal(first.claimsOwnership, true)
    assert.equal(again.allowed, true)
    assert.equal(again.claimsOwnership, false)
    assert.equal(outsider.allowed, false)
    assert.match(outsider.reason, new RegExp(`belongs to its first publisher ${alice.peerId}`))
  })

  it('local peer may publish to a repository owned by another', () => {
    const policy = new TrustPolicy({ localPeerId: local.peerId })
    policy.setOwner('demo/httpd', alice.peerId)

    const decision = policy.check(local.peerId, 'demo/httpd')

    assert.equal(decision.allowed, true)
    assert.equal(decision.claimsOwnership, false)
  })

  it('explicit entries close the repositories they cover', () => {
    const policy = new TrustPolicy({ config: { entries: [{ peerId: alice.peerId, repository: 'demo/*' }] } })

    assert.equal(policy.check(alice.peerId, 'demo/httpd').allowed, true)
    assert.equal(policy.check(bob.peerId, 'demo/httpd').allowed, false)
    assert.equal(policy.check(bob.peerId, 'bob/tool').allowed, true)
    assert.equal(policy.check(bob.peerId, 'bob/tool').claimsOwnership, true)
  })

  it('explicit mode rejects publishers without an entry', () => {
    const policy = new TrustPolicy({ localPeerId: local.peerId, config: { mode: 'explicit', entries: [{ peerId: alice.peerId, repository: '*' }] } })

    assert.equal(policy.check(alice.peerId, 'anything').allowed, true)
    assert.equal(policy.check(local.peerId, 'anything').allowed, true)
    assert.equal(policy.check(bob.peerId, 'anything').allowed, false)
    assert.match(policy.check(bob.peerId, 'anything').reason, /trust mode is "explicit"/)
  })

  it('any mode accepts every publisher', () => {
    const policy = new TrustPolicy({ config: { mode: 'any' } })
    policy.setOwner('demo/httpd', alice.peerId)

    assert.equal(policy.check(bob.peerId, 'demo/httpd').allowed, true)
  })

  it('toJSON round-trips through the constructor', () => {
    const policy = new TrustPolicy({ config: { mode: 'explicit' } })
    policy.add(alice.peerId, 'demo/*')
    policy.add(bob.peerId)
    policy.add(bob.peerId)

    const copy = new TrustPolicy({ config: JSON.parse(JSON.stringify(policy)) as TrustConfig })

    assert.deepEqual(copy.toJSON(), {
      mode: 'explicit',
      entries: [{ peerId: alice.peerId, repository: 'demo/*' }, { peerId: bob.peerId, repository: '*' }]
    })
  })

  it('remove deletes one pattern or all entries of a peer', () => {
    const policy = new TrustPolicy()
    policy.add(alice.peerId, 'demo/*')
    policy.add(alice.peerId, 'tools/*')
    policy.add(bob.peerId, 'demo/*')

    assert.equal(policy.remove(alice.peerId, 'tools/*'), 1)
    assert.equal(policy.remove(alice.peerId), 1)
    assert.deepEqual(policy.entries(), [{ peerId: bob.peerId, repository: 'demo/*' }])
  })

  it('add rejects an invalid peer ID', () => {
    const policy = new TrustPolicy()

    assert.throws(() => policy.add('not-a-peer-id'), { name: 'InvalidTrustEntryError', message: /invalid publisher peer ID "not-a-peer-id"/ })
  })

  it('add rejects an invalid repository pattern', () => {
    const policy = new TrustPolicy()

    assert.throws(() => policy.add(alice.peerId, 'Demo/$'), { name: 'InvalidTrustEntryError', message: /invalid repository pattern "Demo\/\$"/ })
  })

  it('constructor rejects an unknown mode', () => {
    assert.throws(() => new TrustPolicy({ config: { mode: 'everyone' as 'any' } }), { name: 'InvalidTrustEntryError', message: /invalid trust mode "everyone"/ })
  })
})
