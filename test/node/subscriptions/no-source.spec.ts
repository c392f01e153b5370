import { expect } from 'chai'
import { ControlClient } from '../../../node/control/client.js'
import { cleanUp, runCliOk, startAgent, type TestAgent } from '../../utils/agents.js'
import { V1, addressOf, knowsTag, publish, subscriptionViews, waitFor, waitForRef } from './helpers.js'
import type { SubscribedTagView } from '../../../node/agent/subscription-views.js'

/** Environment that enables the control routes which block and unblock peers. */
const TEST_HOOKS = { KILOMESH_TEST_HOOKS: '1' }

async function post (agent: TestAgent, path: string, body: unknown): Promise<void> {
  const client = await ControlClient.connect(agent.dir)
  await client.post(path, body)
}

async function tagView (agent: TestAgent): Promise<SubscribedTagView | undefined> {
  return (await subscriptionViews(agent)).find(view => view.subscription === 'demo/httpd:stable')?.tags[0]
}

describe('subscription with no source', function () {
  this.timeout(120_000)
  let publisher: TestAgent
  let subscriber: TestAgent

  before(async () => {
    publisher = await startAgent({ env: TEST_HOOKS })
    subscriber = await startAgent({ bootstrap: [addressOf(publisher)], env: TEST_HOOKS })
  })

  after(async () => {
    await cleanUp([publisher, subscriber].filter(agent => agent != null))
  })

  it('reports waiting for a source, then pulls', async () => {
    // The subscriber learns the tag, then loses its only source before it subscribes.
    await publish(publisher, 'demo/httpd:stable', V1)
    await waitFor(async () => knowsTag(subscriber, 'demo/httpd', 'stable', V1), 'the subscriber to learn the tag')
    await post(subscriber, '/debug/block', { peers: [publisher.info.peerId] })
    await post(publisher, '/debug/block', { peers: [subscriber.info.peerId] })
    const subscribedMs = Date.now()
    await runCliOk(['subscribe', 'demo/httpd:stable', '--dir', subscriber.dir])

    let view: SubscribedTagView | undefined
    await waitFor(async () => {
      view = await tagView(subscriber)
      return view?.pull.waitingForSource === true
    }, 'the subscription to report that it waits for a source')

    const pull = view?.pull
    expect(pull?.digest).to.equal(V1)
    expect(pull?.state).to.be.oneOf(['pulling', 'retrying'])
    const waitingSinceMs = Date.parse(pull?.waitingSince ?? '')
    expect(waitingSinceMs).to.be.within(subscribedMs - 1000, Date.now())
    expect(Date.parse(pull?.lastAttemptAt ?? '')).to.be.at.least(waitingSinceMs)
    expect(pull?.attempts).to.be.a('number')

    const table = await runCliOk(['subscriptions', '--dir', subscriber.dir])
    expect(table).to.match(/waiting for a source of sha256:\S+ since \d{4}-\d\d-\d\dT/)

    // A reachable source again ends the wait without anyone running pull.
    await post(subscriber, '/debug/unblock', {})
    await post(publisher, '/debug/unblock', {})
    await waitForRef(subscriber, 'demo/httpd:stable', V1, 60_000)

    const after = await tagView(subscriber)
    expect(after?.current).to.equal(V1)
    expect(after?.pull.state).to.equal('idle')
    expect(after?.pull.waitingForSource ?? false).to.equal(false)
  })
})
