import { expect } from 'chai'
import { access, mkdtemp, readdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { cleanUp, runCli, runCliOk, startAgent, type TestAgent } from '../../utils/agents.js'
import { findRef } from '../../utils/layout.js'
import { fixture } from '../../utils/paths.js'
import { startRoguePeer, type RoguePeer } from '../../utils/rogue-peer.js'

interface ImageDigests { manifest: string, config: string, layer: string, layerSizeBytes: number, totalBytes: number }

async function httpdV1 (): Promise<ImageDigests> {
  const ref = await findRef(fixture('micro-httpd'), 'v1')
  const { readFile } = await import('node:fs/promises')
  const manifest = JSON.parse(await readFile(fixture('micro-httpd', 'blobs', 'sha256', (ref?.digest ?? '').slice(7)), 'utf8')) as { config: { digest: string, size: number }, layers: Array<{ digest: string, size: number }> }
  const layer = manifest.layers[0]
  return {
    manifest: ref?.digest ?? '',
    config: manifest.config.digest,
    layer: layer?.digest ?? '',
    layerSizeBytes: layer?.size ?? 0,
    totalBytes: (ref?.size ?? 0) + manifest.config.size + (layer?.size ?? 0)
  }
}

async function exists (path: string): Promise<boolean> {
  try {
    await access(path)
    return true
  } catch {
    return false
  }
}

async function waitFor (condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await condition()) {
      return
    }
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  throw new Error(`timed out waiting for ${what}`)
}

describe('fetch verification and failover', function () {
  this.timeout(120_000)
  let image: ImageDigests
  let a: TestAgent
  const agents: TestAgent[] = []
  const rogues: RoguePeer[] = []

  before(async () => {
    image = await httpdV1()
    a = await startAgent()
    agents.push(a)
    await runCliOk(['publish', 'demo/httpd:v1', '--from', `${fixture('micro-httpd')}:v1`, '--dir', a.dir])
  })

  after(async () => {
    await Promise.all(rogues.map(async rogue => rogue.stop()))
    await cleanUp(agents)
  })

  it('penalises a peer that sends corrupted bytes and uses another source', async () => {
    const rogue = await startRoguePeer(fixture('micro-httpd'), { corrupt: image.layer })
    rogues.push(rogue)
    const b = await startAgent()
    agents.push(b)
    await runCliOk(['connect', rogue.address, '--dir', b.dir])

    const failed = await runCli(['pull', `demo/httpd@${image.manifest}`, '--dir', b.dir, '--timeout', '20'])

    expect(failed.code).to.equal(1)
    expect(failed.stderr).to.match(/hash to sha256:/)
    expect(await exists(join(b.dir, 'blobs', 'sha256', image.layer.slice(7)))).to.equal(false)
    const status = JSON.parse(await runCliOk(['status', '--json', '--dir', b.dir])) as { penalisedPeers: string[] }
    expect(status.penalisedPeers).to.deep.equal([rogue.node.peerId.toString()])

    await runCliOk(['connect', a.info.multiaddrs[0] ?? '', '--dir', b.dir])
    await runCliOk(['pull', `demo/httpd@${image.manifest}`, '--dir', b.dir, '--timeout', '20'])

    expect(await exists(join(b.dir, 'blobs', 'sha256', image.layer.slice(7)))).to.equal(true)
    expect(rogue.requests.get(image.layer)).to.equal(1)

    // Later tests must not find this peer through the DHT and be served corrupted bytes.
    await rogue.stop()
  })

  it('resumes a stalled transfer from the received offset on another source', async () => {
    const rogue = await startRoguePeer(fixture('micro-httpd'), { stall: image.layer })
    rogues.push(rogue)
    const b = await startAgent()
    agents.push(b)
    await runCliOk(['connect', rogue.address, '--dir', b.dir])

    const pull = runCli(['pull', `demo/httpd@${image.manifest}`, '--dir', b.dir, '--timeout', '60', '--json'])
    await waitFor(() => rogue.requests.get(image.layer) === 1, 'the rogue peer to start the layer')
    await runCliOk(['connect', a.info.multiaddrs[0] ?? '', '--dir', b.dir])
    const result = await pull

    expect(result.code, result.stderr).to.equal(0)
    const pulled = JSON.parse(result.stdout) as { fetchedBytes: number }
    // Resumption means no byte was received twice.
    expect(pulled.fetchedBytes).to.equal(image.totalBytes)
    expect(await exists(join(b.dir, 'blobs', 'sha256', image.layer.slice(7)))).to.equal(true)
    await rogue.stop()
  })

  it('leaves no partial blob after SIGKILL mid-pull, and the next pull completes', async () => {
    const rogue = await startRoguePeer(fixture('micro-httpd'), { stall: image.layer })
    rogues.push(rogue)
    const b = await startAgent()
    await runCliOk(['connect', rogue.address, '--dir', b.dir])

    const pull = runCli(['pull', `demo/httpd@${image.manifest}`, '--dir', b.dir, '--timeout', '60'])
    await waitFor(() => rogue.requests.get(image.layer) === 1, 'the rogue peer to start the layer')
    await waitFor(async () => (await readdir(join(b.dir, 'tmp'))).length > 0, 'a partial file in tmp')
    await b.stop('SIGKILL')
    await pull

    expect(await exists(join(b.dir, 'blobs', 'sha256', image.layer.slice(7)))).to.equal(false)

    const restarted = await startAgent({ dir: b.dir, bootstrap: [a.info.multiaddrs[0] ?? ''] })
    agents.push(restarted)
    const out = await mkdtemp(join(tmpdir(), 'km-out-'))
    await runCliOk(['pull', `demo/httpd@${image.manifest}`, '--to', out, '--dir', b.dir, '--timeout', '30'])

    expect(await exists(join(b.dir, 'blobs', 'sha256', image.layer.slice(7)))).to.equal(true)
    expect(await readdir(join(b.dir, 'tmp'))).to.deep.equal([])
    await cleanUp([], [out])
  })
})
