import { expect } from 'chai'
import { createHash } from 'node:crypto'
import { mkdtemp, open, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { publishImage } from '../../../node/agent/publish.js'
import { pullImage } from '../../../node/agent/pull.js'
import { fixture } from '../../utils/paths.js'
import { addressOf, startLocalAgent, stopLocalAgents, waitUntil } from '../../utils/in-process.js'
import type { Agent } from '../../../node/agent/agent.js'

/** The micro-httpd v1 layer. */
const LAYER = 'sha256:6605c25f659b195ee6cf445c35a56180b3a2f26db15740fb46de7076b7f728b2'

describe('agent pull of an image whose local copy is corrupt', function () {
  this.timeout(60_000)
  let agents: Agent[] = []
  let out: string | undefined

  afterEach(async () => {
    await stopLocalAgents(agents)
    agents = []
    if (out != null) {
      await rm(out, { recursive: true, force: true })
    }
  })

  it('pull fetches a corrupt local blob again from a peer', async () => {
    const publisher = await startLocalAgent({ dht: false })
    const device = await startLocalAgent({ dht: false, bootstrap: [addressOf(publisher)] })
    agents = [publisher, device]
    await waitUntil(() => device.node.getPeers().length > 0, 'the device to connect')
    await publishImage(publisher.context, 'demo/httpd:v1', `${fixture('micro-httpd')}:v1`)
    await pullImage(device.context, 'demo/httpd:v1')

    const handle = await open(device.context.store.pathOf(LAYER), 'r+')
    await handle.write(Buffer.from('corrupt'), 0, 7, 100)
    await handle.close()

    out = await mkdtemp(join(tmpdir(), 'km-corrupt-out-'))
    await pullImage(device.context, 'demo/httpd:v1', { to: out })

    const stored = await readFile(device.context.store.pathOf(LAYER))
    expect(`sha256:${createHash('sha256').update(stored).digest('hex')}`).to.equal(LAYER)
    const exported = await readFile(join(out, 'blobs', 'sha256', LAYER.slice('sha256:'.length)))
    expect(exported.equals(stored)).to.equal(true)
  })
})
