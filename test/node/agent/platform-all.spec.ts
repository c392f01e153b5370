import { expect } from 'chai'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { OCI_INDEX, OCI_MANIFEST } from '../../../node/image/media-types.js'
import { formatPlatform, localPlatform } from '../../../node/image/platform.js'
import { cleanUp, runCliOk, startAgent, type TestAgent } from '../../utils/agents.js'
import { blobNames, findRef } from '../../utils/layout.js'
import { fixture } from '../../utils/paths.js'

/** Tags of the busybox fixture's single-platform images, by platform. */
const BUSYBOX_TAGS: Record<string, string> = { 'linux/amd64': '1.35-amd64', 'linux/arm64': '1.35-arm64' }

describe('agent pull with --platform all', function () {
  this.timeout(120_000)
  let a: TestAgent
  let b: TestAgent
  const folders: string[] = []
  const localTag = BUSYBOX_TAGS[formatPlatform(localPlatform())]
  let indexDigest: string | undefined
  let localDigest: string | undefined

  async function outputFolder (): Promise<string> {
    const folder = await mkdtemp(join(tmpdir(), 'km-all-out-'))
    folders.push(folder)
    return folder
  }

  before(async function () {
    if (localTag == null) {
      // The busybox fixture only has linux/amd64 and linux/arm64 images.
      this.skip()
    }

    indexDigest = (await findRef(fixture('busybox'), '1.35'))?.digest
    localDigest = (await findRef(fixture('busybox'), localTag))?.digest
    a = await startAgent()
    b = await startAgent({ bootstrap: [a.info.multiaddrs[0] ?? ''] })
    await runCliOk(['publish', 'library/busybox:1.35', '--from', `${fixture('busybox')}:1.35`, '--dir', a.dir])
  })

  after(async () => {
    await cleanUp([a, b].filter(agent => agent != null), folders)
  })

  it('moves the tag from one platform to the index', async () => {
    // A pull without --platform names this machine's manifest.
    await runCliOk(['pull', 'library/busybox:1.35', '--dir', b.dir])
    expect((await findRef(b.dir, 'library/busybox:1.35'))?.digest).to.equal(localDigest)
    const out = await outputFolder()

    const result = JSON.parse(await runCliOk(['pull', 'library/busybox:1.35', '--platform', 'all', '--to', out, '--dir', b.dir, '--json'])) as { digest: string, mediaType: string }

    expect(result.digest).to.equal(indexDigest)
    expect(result.mediaType).to.equal(OCI_INDEX)
    const agentRef = await findRef(b.dir, 'library/busybox:1.35')
    expect(agentRef?.digest).to.equal(indexDigest)
    expect(agentRef?.mediaType).to.equal(OCI_INDEX)
    const exportedRef = await findRef(out, '1.35')
    expect(exportedRef?.digest).to.equal(indexDigest)
    expect(exportedRef?.mediaType).to.equal(OCI_INDEX)
    // index + 2 manifests + 2 configs + 2 layers
    expect(await blobNames(out)).to.have.length(7)
  })

  it('prints that the tag names every platform', async () => {
    const out = await outputFolder()

    const stdout = await runCliOk(['pull', 'library/busybox:1.35', '--platform', 'all', '--to', out, '--dir', b.dir])

    expect(stdout).to.contain(`pulled library/busybox:1.35 -> ${indexDigest ?? ''}`)
    expect(stdout).to.match(/image index of 2 platforms: linux\/amd64, linux\/arm64/)
  })

  it('takes the local platform again without --platform', async () => {
    const out = await outputFolder()

    const result = JSON.parse(await runCliOk(['pull', 'library/busybox:1.35', '--to', out, '--dir', b.dir, '--json'])) as { digest: string, mediaType: string }

    expect(result.digest).to.equal(localDigest)
    expect(result.mediaType).to.equal(OCI_MANIFEST)
    expect((await findRef(out, '1.35'))?.digest).to.equal(localDigest)
    // The agent stores every platform, so its tag keeps naming the index.
    expect((await findRef(b.dir, 'library/busybox:1.35'))?.digest).to.equal(indexDigest)
  })
})
