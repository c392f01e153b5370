import { expect } from 'chai'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { cleanUp, createDataDir, runCliOk, startAgent, type TestAgent } from '../../utils/agents.js'
import { blobNames } from '../../utils/layout.js'
import { localPlatform } from '../../../node/image/platform.js'
import { BUSYBOX_AMD64, BUSYBOX_ARM64, BUSYBOX_INDEX, V1, V2, addressOf, knowsTag, publish, readConfig, refDigest, subscriptionViews, waitForRef } from './helpers.js'

describe('subscriptions across agents', function () {
  this.timeout(180_000)
  let publisher: TestAgent
  let subscriber: TestAgent

  before(async () => {
    publisher = await startAgent()

    // Subscribing before the agent first starts only writes config.json.
    const dir = await createDataDir()
    const output = await runCliOk(['subscribe', 'demo/httpd:stable', '--dir', dir])
    expect(output).to.contain('the agent pulls it when it starts')
    subscriber = await startAgent({ dir, bootstrap: [addressOf(publisher)] })
  })

  after(async () => {
    await cleanUp([publisher, subscriber])
  })

  it('pulls a published version without pull', async () => {
    await publish(publisher, 'demo/httpd:stable', V1)

    await waitForRef(subscriber, 'demo/httpd:stable', V1)
    expect(await blobNames(subscriber.dir)).to.have.length(3)
    const [view] = await subscriptionViews(subscriber)
    expect(view?.subscription).to.equal('demo/httpd:stable')
    expect(view?.tags[0]?.current).to.equal(V1)
    expect(view?.tags[0]?.previous).to.equal(null)
  })

  it('pulls the next version and pins the previous', async () => {
    await publish(publisher, 'demo/httpd:stable', V2)

    await waitForRef(subscriber, 'demo/httpd:stable', V2)
    const [view] = await subscriptionViews(subscriber)
    expect(view?.tags[0]?.current).to.equal(V2)
    expect(view?.tags[0]?.previous).to.equal(V1)
    expect(view?.tags[0]?.latest).to.equal(V2)
    expect(view?.tags[0]?.pull.state).to.equal('idle')

    const pins = JSON.parse(await readFile(join(subscriber.dir, 'pins.json'), 'utf8')) as { tags: Record<string, { current: { digest: string }, previous?: { digest: string } }> }
    expect(pins.tags['demo/httpd:stable']?.current.digest).to.equal(V2)
    expect(pins.tags['demo/httpd:stable']?.previous?.digest).to.equal(V1)
  })

  it('lists subscriptions as a table', async () => {
    const output = await runCliOk(['subscriptions', '--dir', subscriber.dir])

    expect(output).to.match(/^SUBSCRIPTION\s+TAG\s+CURRENT\s+PREVIOUS\s+STATE/)
    expect(output).to.match(/demo\/httpd:stable\s+stable\s+sha256:0ea58ed57cbc\s+sha256:b00a22a43573\s+up to date/)
  })

  it('keeps subscriptions and pins across a restart', async () => {
    await subscriber.stop()

    // Published while the subscriber is down, so it only learns of it by sync after the restart.
    await publish(publisher, 'demo/httpd:stable', BUSYBOX_AMD64)
    subscriber = await startAgent({ dir: subscriber.dir, bootstrap: [addressOf(publisher)] })

    expect(await runCliOk(['subscriptions', '--dir', subscriber.dir])).to.contain('demo/httpd:stable')
    await waitForRef(subscriber, 'demo/httpd:stable', BUSYBOX_AMD64)
    const [view] = await subscriptionViews(subscriber)
    expect(view?.tags[0]?.current).to.equal(BUSYBOX_AMD64)
    expect(view?.tags[0]?.previous).to.equal(V2)
    expect((await readConfig(subscriber)).subscriptions).to.deep.equal(['demo/httpd:stable'])
  })

  it('subscribes to every tag of a repository', async () => {
    const output = await runCliOk(['subscribe', 'demo/tools', '--dir', subscriber.dir])
    expect(output.trim()).to.equal('subscribed to demo/tools')

    await publish(publisher, 'demo/tools:a', V1)
    await publish(publisher, 'demo/tools:b', V2)

    await waitForRef(subscriber, 'demo/tools:a', V1)
    await waitForRef(subscriber, 'demo/tools:b', V2)
    const views = await subscriptionViews(subscriber)
    const tools = views.find(view => view.subscription === 'demo/tools')
    expect(tools?.tags.map(tag => tag.tag).sort()).to.deep.equal(['a', 'b'])
  })

  it('reports a repeated subscribe', async () => {
    const output = await runCliOk(['subscribe', 'demo/tools', '--dir', subscriber.dir])

    expect(output.trim()).to.equal('already subscribed to demo/tools')
    expect((await readConfig(subscriber)).subscriptions).to.deep.equal(['demo/httpd:stable', 'demo/tools'])
  })

  it('stops pulling after unsubscribe', async () => {
    const output = await runCliOk(['unsubscribe', 'demo/tools', '--dir', subscriber.dir])
    expect(output.trim()).to.equal('unsubscribed from demo/tools')

    await publish(publisher, 'demo/tools:c', V1)
    // Once the record is in the subscriber's catalog, a subscribed agent would pull it at once.
    const deadline = Date.now() + 20_000
    while (!await knowsTag(subscriber, 'demo/tools', 'c', V1) && Date.now() < deadline) {
      await new Promise(resolve => setTimeout(resolve, 100))
    }
    expect(await knowsTag(subscriber, 'demo/tools', 'c', V1)).to.equal(true)
    await new Promise(resolve => setTimeout(resolve, 1500))

    expect(await refDigest(subscriber, 'demo/tools:c')).to.equal(undefined)
    expect(await runCliOk(['subscriptions', '--json', '--dir', subscriber.dir])).to.not.contain('demo/tools')
    expect((await readConfig(subscriber)).subscriptions).to.deep.equal(['demo/httpd:stable'])
  })

  it('pulls only the local platform of an index', async function () {
    const { os, architecture } = localPlatform()
    const expected = os === 'linux' && architecture === 'amd64' ? BUSYBOX_AMD64 : os === 'linux' && architecture === 'arm64' ? BUSYBOX_ARM64 : undefined
    if (expected == null) {
      this.skip()
    }
    const other = expected === BUSYBOX_AMD64 ? BUSYBOX_ARM64 : BUSYBOX_AMD64
    await runCliOk(['subscribe', 'library/busybox:1.35', '--dir', subscriber.dir])

    await publish(publisher, 'library/busybox:1.35', BUSYBOX_INDEX)

    // index.json names the platform's manifest, as skopeo copy without --all does, and the pin is the index.
    await waitForRef(subscriber, 'library/busybox:1.35', expected)
    const names = await blobNames(subscriber.dir)
    expect(names).to.include(BUSYBOX_INDEX.slice('sha256:'.length))
    expect(names).to.not.include(other.slice('sha256:'.length))
    const view = (await subscriptionViews(subscriber)).find(entry => entry.subscription === 'library/busybox:1.35')
    expect(view?.tags[0]?.current).to.equal(BUSYBOX_INDEX)
  })

  it('lists config.json subscriptions while no agent runs', async () => {
    const dir = await createDataDir()
    try {
      await runCliOk(['subscribe', 'demo/a:v1', '--dir', dir])
      await runCliOk(['subscribe', 'demo/b', '--dir', dir])
      await runCliOk(['unsubscribe', 'demo/a:v1', '--dir', dir])

      const output = await runCliOk(['subscriptions', '--dir', dir])
      expect(output).to.contain('demo/b')
      expect(output).to.not.contain('demo/a:v1')
      expect(output).to.contain('no agent is running')
    } finally {
      await cleanUp([], [dir])
    }
  })
})
