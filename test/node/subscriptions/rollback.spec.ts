import { expect } from 'chai'
import { cleanUp, runCli, runCliOk, startAgent, type TestAgent } from '../../utils/agents.js'
import { BUSYBOX_AMD64, V1, V2, addressOf, publish, readConfig, refDigest, subscriptionViews, waitFor, waitForRef } from './helpers.js'
import type { RollbackResult } from '../../../node/agent/rollback.js'

const TAG = 'demo/httpd:stable'

describe('rollback of a subscribed tag', function () {
  this.timeout(180_000)
  let publisher: TestAgent
  let fleet: TestAgent
  let device: TestAgent

  before(async () => {
    publisher = await startAgent()
    fleet = await startAgent({ bootstrap: [addressOf(publisher)] })
    device = await startAgent({ bootstrap: [addressOf(publisher)] })
    for (const agent of [fleet, device]) {
      await runCliOk(['subscribe', TAG, '--dir', agent.dir])
    }

    await publish(publisher, TAG, V1)
    await waitForRef(fleet, TAG, V1)
    await waitForRef(device, TAG, V1)
    await publish(publisher, TAG, V2)
    await waitForRef(fleet, TAG, V2)
    await waitForRef(device, TAG, V2)
  })

  after(async () => {
    await cleanUp([publisher, fleet, device])
  })

  it('holds one device on the previous version with --local', async () => {
    const result = JSON.parse(await runCliOk(['rollback', TAG, '--local', '--json', '--dir', device.dir])) as RollbackResult

    expect(result.scope).to.equal('local')
    expect(result.from).to.equal(V2)
    expect(result.to).to.equal(V1)
    expect(await refDigest(device, TAG)).to.equal(V1)
    expect(await refDigest(fleet, TAG)).to.equal(V2)

    const holds = (await readConfig(device)).holds as Array<{ reference: string, digest: string, rolledBackFrom: { digest: string } }>
    expect(holds).to.have.length(1)
    expect(holds[0]?.reference).to.equal(TAG)
    expect(holds[0]?.digest).to.equal(V1)
    expect(holds[0]?.rolledBackFrom.digest).to.equal(V2)

    const [view] = await subscriptionViews(device)
    expect(view?.tags[0]?.heldAt).to.equal(V1)
    expect(view?.tags[0]?.current).to.equal(V1)
    expect(view?.tags[0]?.previous).to.equal(V2)
    expect(view?.tags[0]?.latest).to.equal(V2)
  })

  it('keeps the hold across a restart', async () => {
    await device.stop()
    device = await startAgent({ dir: device.dir, bootstrap: [addressOf(publisher)] })

    // Without the hold, the agent would pull V2 at start: its blobs are local, so that takes well under a second.
    await new Promise(resolve => setTimeout(resolve, 2000))
    expect(await refDigest(device, TAG)).to.equal(V1)
    const [view] = await subscriptionViews(device)
    expect(view?.tags[0]?.heldAt).to.equal(V1)
    expect(view?.tags[0]?.pull.state).to.equal('idle')
  })

  it('ends the hold when a newer version is published', async () => {
    await publish(publisher, TAG, BUSYBOX_AMD64)

    await waitForRef(device, TAG, BUSYBOX_AMD64)
    await waitForRef(fleet, TAG, BUSYBOX_AMD64)
    await waitFor(async () => (await readConfig(device)).holds == null, 'the hold to be removed from config.json')
    const [view] = await subscriptionViews(device)
    expect(view?.tags[0]?.heldAt).to.equal(undefined)
  })

  it('moves every subscribed agent back without --local', async () => {
    const result = JSON.parse(await runCliOk(['rollback', TAG, '--json', '--dir', publisher.dir])) as RollbackResult

    expect(result.scope).to.equal('fleet')
    expect(result.from).to.equal(BUSYBOX_AMD64)
    expect(result.to).to.equal(V2)
    expect(result.announcedTo).to.be.at.least(1)
    await waitForRef(fleet, TAG, V2)
    await waitForRef(device, TAG, V2)
    const [view] = await subscriptionViews(fleet)
    expect(view?.tags[0]?.latest).to.equal(V2)
    expect(view?.tags[0]?.previous).to.equal(BUSYBOX_AMD64)
  })

  it('prints a fleet rollback as text', async () => {
    // Rolling back again goes forward to the version rolled back from.
    const output = await runCliOk(['rollback', TAG, '--dir', publisher.dir])

    expect(output).to.contain(`rolled ${TAG} back to ${BUSYBOX_AMD64} for every subscribed device`)
    expect(output).to.contain(`from ${V2}`)
    await waitForRef(fleet, TAG, BUSYBOX_AMD64)
  })

  it('releases a local hold with --release', async () => {
    await waitForRef(device, TAG, BUSYBOX_AMD64)
    await runCliOk(['rollback', TAG, '--local', '--dir', device.dir])
    expect(await refDigest(device, TAG)).to.equal(V2)

    const output = await runCliOk(['rollback', TAG, '--release', '--dir', device.dir])

    expect(output.trim()).to.equal(`released the local rollback of ${TAG}`)
    await waitForRef(device, TAG, BUSYBOX_AMD64)
    expect((await readConfig(device)).holds).to.equal(undefined)
    const again = await runCliOk(['rollback', TAG, '--release', '--dir', device.dir])
    expect(again.trim()).to.equal(`${TAG} was not held by a local rollback`)
  })

  it('rejects a tag with one version', async () => {
    await publish(publisher, 'demo/single:v1', V1)

    const result = await runCli(['rollback', 'demo/single:v1', '--dir', publisher.dir])

    expect(result.code).to.equal(1)
    expect(result.stderr).to.match(/demo\/single:v1 has no previous version to roll back to/)
  })

  it('rejects an unknown tag', async () => {
    const result = await runCli(['rollback', 'demo/never:v1', '--local', '--dir', device.dir])

    expect(result.code).to.equal(1)
    expect(result.stderr).to.match(/tag demo\/never:v1 is not known/)
  })
})
