import { expect } from 'chai'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { cleanUp, runCli, runCliOk, startAgent, type TestAgent } from '../../utils/agents.js'
import { blobNames, findRef, readBlob, readIndexJson } from '../../utils/layout.js'
import { fixture } from '../../utils/paths.js'
import { hasSkopeo, skopeo } from '../../utils/skopeo.js'

describe('agent publish and pull across two agents', function () {
  this.timeout(120_000)
  let a: TestAgent
  let b: TestAgent
  const folders: string[] = []

  before(async () => {
    a = await startAgent()
    b = await startAgent({ bootstrap: [a.info.multiaddrs[0] ?? ''] })
  })

  after(async () => {
    await cleanUp([a, b], folders)
  })

  async function outputFolder (): Promise<string> {
    const folder = await mkdtemp(join(tmpdir(), 'km-out-'))
    folders.push(folder)
    return folder
  }

  async function expectSameBlobs (pulled: string, source: string, names: string[]): Promise<void> {
    for (const name of names) {
      const copy = await readBlob(pulled, name)
      const original = await readBlob(source, name)
      expect(copy.equals(original), `blob ${name}`).to.equal(true)
    }
  }

  it('pulls micro-httpd:v1 byte-identical to the source', async () => {
    await runCliOk(['publish', 'demo/httpd:v1', '--from', `${fixture('micro-httpd')}:v1`, '--dir', a.dir])
    const out = await outputFolder()

    const stdout = await runCliOk(['pull', 'demo/httpd:v1', '--to', out, '--dir', b.dir, '--json'])
    const result = JSON.parse(stdout) as { digest: string, fetchedBlobs: number }

    const sourceRef = await findRef(fixture('micro-httpd'), 'v1')
    expect(result.digest).to.equal(sourceRef?.digest)
    expect(result.fetchedBlobs).to.equal(3)
    const pulledRef = await findRef(out, 'v1')
    expect(pulledRef?.digest).to.equal(sourceRef?.digest)
    const names = await blobNames(out)
    expect(names).to.have.length(3)
    await expectSameBlobs(out, fixture('micro-httpd'), names)
    expect(await readFile(join(out, 'oci-layout'), 'utf8')).to.contain('"imageLayoutVersion"')
  })

  it('pulls every platform of busybox:1.35 with --platform all', async () => {
    await runCliOk(['publish', 'library/busybox:1.35', '--from', `${fixture('busybox')}:1.35`, '--dir', a.dir])
    const out = await outputFolder()

    await runCliOk(['pull', 'library/busybox:1.35', '--to', out, '--platform', 'all', '--dir', b.dir])

    const sourceRef = await findRef(fixture('busybox'), '1.35')
    const pulledRef = await findRef(out, '1.35')
    expect(pulledRef?.digest).to.equal(sourceRef?.digest)
    expect(pulledRef?.mediaType).to.equal('application/vnd.oci.image.index.v1+json')
    const names = await blobNames(out)
    // index + 2 manifests + 2 configs + 2 layers
    expect(names).to.have.length(7)
    await expectSameBlobs(out, fixture('busybox'), names)
  })

  it('pulls one platform of an index as a single manifest', async () => {
    const out = await outputFolder()

    await runCliOk(['pull', 'library/busybox:1.35', '--to', out, '--platform', 'linux/arm64', '--dir', b.dir])

    const index = await readIndexJson(out)
    expect(index.manifests).to.have.length(1)
    const armRef = await findRef(fixture('busybox'), '1.35-arm64')
    expect(index.manifests[0]?.digest).to.equal(armRef?.digest)
    expect(await blobNames(out)).to.have.length(3)
  })

  it('keeps the whole index after a one-platform pull', async () => {
    // The publisher holds every platform; exporting one must not narrow its own tag.
    const indexRef = await findRef(fixture('busybox'), '1.35')
    const out = await outputFolder()

    await runCliOk(['pull', 'library/busybox:1.35', '--to', out, '--platform', 'linux/arm64', '--dir', a.dir])

    expect((await findRef(a.dir, 'library/busybox:1.35'))?.digest).to.equal(indexRef?.digest)
  })

  it('rejects another platform for a single image', async () => {
    const out = await outputFolder()

    const result = await runCli(['pull', 'demo/httpd:v1', '--to', out, '--platform', 'windows/amd64', '--dir', b.dir])

    expect(result.code).to.equal(1)
    expect(result.stderr).to.contain('demo/httpd:v1 is an image for linux/amd64, not windows/amd64')
  })

  it('pulls by digest', async () => {
    const sourceRef = await findRef(fixture('micro-httpd'), 'v1')
    const out = await outputFolder()

    await runCliOk(['pull', `demo/httpd@${sourceRef?.digest ?? ''}`, '--to', out, '--dir', b.dir])

    expect((await readIndexJson(out)).manifests[0]?.digest).to.equal(sourceRef?.digest)
  })

  it('lists the pulled tags in images and the peer in peers', async () => {
    const images = JSON.parse(await runCliOk(['images', '--json', '--dir', b.dir])) as Array<{ repository: string, tag: string, local: boolean }>
    const httpd = images.find(image => image.repository === 'demo/httpd' && image.tag === 'v1')
    expect(httpd?.local).to.equal(true)

    const peers = JSON.parse(await runCliOk(['peers', '--json', '--dir', b.dir])) as Array<{ peerId: string }>
    expect(peers.map(peer => peer.peerId)).to.include(a.info.peerId)

    const status = JSON.parse(await runCliOk(['status', '--json', '--dir', b.dir])) as { peerId: string, connectedPeers: number }
    expect(status.peerId).to.equal(b.info.peerId)
    expect(status.connectedPeers).to.be.at.least(1)
  })

  it('leaves a data directory skopeo reads as an OCI layout', async function () {
    if (!await hasSkopeo()) {
      this.skip()
    }
    const out = await outputFolder()

    await skopeo(['copy', `oci:${b.dir}:demo/httpd:v1`, `oci:${out}:copied`])

    const sourceRef = await findRef(fixture('micro-httpd'), 'v1')
    expect((await findRef(out, 'copied'))?.digest).to.equal(sourceRef?.digest)
    const inspected = JSON.parse(await skopeo(['inspect', `oci:${b.dir}:demo/httpd:v1`])) as { Digest: string }
    expect(inspected.Digest).to.equal(sourceRef?.digest)
  })

  it('pulls a tag published a moment ago without waiting for gossip', async () => {
    // A third agent joins after the publish, so it never saw the gossip message.
    const c = await startAgent({ bootstrap: [a.info.multiaddrs[0] ?? ''] })
    try {
      const out = await outputFolder()
      await runCliOk(['pull', 'demo/httpd:v1', '--to', out, '--dir', c.dir, '--timeout', '30'])
      expect(await blobNames(out)).to.have.length(3)
    } finally {
      await cleanUp([c])
    }
  })

  it('pull --wait takes a tag published during the wait', async () => {
    const out = await outputFolder()

    // The tag and its blobs exist nowhere when the pull starts.
    const pull = runCli(['pull', 'demo/later:v2', '--to', out, '--dir', b.dir, '--wait', '30', '--json'])
    await new Promise(resolve => setTimeout(resolve, 2_000))
    await runCliOk(['publish', 'demo/later:v2', '--from', `${fixture('micro-httpd')}:v2`, '--dir', a.dir])
    const result = await pull

    expect(result.code, result.stderr).to.equal(0)
    const pulled = JSON.parse(result.stdout) as { digest: string, fetchedBlobs: number }
    expect(pulled.digest).to.equal((await findRef(fixture('micro-httpd'), 'v2'))?.digest)
    expect(pulled.fetchedBlobs).to.be.greaterThan(0)
    expect(await blobNames(out)).to.have.length(3)
  })

  it('pull --wait above the timeout is a usage error', async () => {
    const result = await runCli(['pull', 'demo/httpd:v1', '--dir', b.dir, '--timeout', '10', '--wait', '20'])

    expect(result.code).to.equal(2)
    expect(result.stderr).to.match(/invalid --wait "20": give a number of seconds from 0 up to the --timeout \(10\)/)
  })

  it('rejects an unknown tag with a clear message', async () => {
    const result = await runCli(['pull', 'demo/missing:v9', '--to', await outputFolder(), '--dir', b.dir])

    expect(result.code).to.equal(1)
    expect(result.stderr).to.match(/tag demo\/missing:v9 is not known/)
  })
})

describe('cli without a running agent', () => {
  it('says that no agent runs and how to start one', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'km-none-'))
    try {
      await runCliOk(['init', '--dir', dir])
      const result = await runCli(['status', '--dir', dir])

      expect(result.code).to.equal(1)
      expect(result.stderr).to.contain('no agent is running')
      expect(result.stderr).to.contain(`kilomesh agent --dir ${dir}`)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
