import { expect } from 'chai'
import { cp, mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { OCI_INDEX } from '../../../node/image/media-types.js'
import { formatPlatform, localPlatform } from '../../../node/image/platform.js'
import { BlobStore } from '../../../node/store/blob-store.js'
import { OciLayout } from '../../../node/store/layout.js'
import { cleanUp, runCliOk, startAgent, type TestAgent } from '../../utils/agents.js'
import { blobNames, findRef, readIndexJson } from '../../utils/layout.js'
import { fixture } from '../../utils/paths.js'
import { hasSkopeo, skopeo } from '../../utils/skopeo.js'
import type { Descriptor } from '../../../node/image/manifest.js'

/** Tags of the busybox fixture's single-platform images, by platform. */
const BUSYBOX_TAGS: Record<string, string> = { 'linux/amd64': '1.35-amd64', 'linux/arm64': '1.35-arm64' }

/** Stores an image index over `manifests` in the layout at `root` and names it `refName`. */
async function addIndex (root: string, refName: string, manifests: Descriptor[]): Promise<Descriptor> {
  const bytes = new TextEncoder().encode(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests }))
  const store = new BlobStore(root)
  await store.init()
  const digest = await store.put(bytes)

  const descriptor: Descriptor = { mediaType: OCI_INDEX, digest, size: bytes.byteLength }
  await new OciLayout(root).setRef(refName, descriptor)
  return descriptor
}

async function requireRef (layout: string, refName: string): Promise<Descriptor> {
  const ref = await findRef(layout, refName)
  if (ref == null) {
    throw new Error(`layout ${layout} has no ref ${refName}`)
  }
  return { mediaType: ref.mediaType, digest: ref.digest as Descriptor['digest'], size: ref.size }
}

describe('agent pull of a nested image index', function () {
  this.timeout(120_000)
  let a: TestAgent
  let b: TestAgent
  const folders: string[] = []
  let source: string
  const localTag = BUSYBOX_TAGS[formatPlatform(localPlatform())]

  async function outputFolder (): Promise<string> {
    const folder = await mkdtemp(join(tmpdir(), 'km-nested-out-'))
    folders.push(folder)
    return folder
  }

  before(async function () {
    if (localTag == null) {
      // The busybox fixture only has linux/amd64 and linux/arm64 images.
      this.skip()
    }

    // Two nested shapes built from the busybox fixture: an index whose only
    // child is the multi-platform index (no platform on the child), and an
    // index of two single-platform indexes that carry the platforms.
    source = await mkdtemp(join(tmpdir(), 'km-nested-src-'))
    folders.push(source)
    await cp(fixture('busybox'), source, { recursive: true })

    const inner = await requireRef(source, '1.35')
    await addIndex(source, 'wrapped', [inner])

    const amd64 = await requireRef(source, '1.35-amd64')
    const arm64 = await requireRef(source, '1.35-arm64')
    const amd64Index = await addIndex(source, 'amd64-only', [{ ...amd64, platform: { os: 'linux', architecture: 'amd64' } }])
    const arm64Index = await addIndex(source, 'arm64-only', [{ ...arm64, platform: { os: 'linux', architecture: 'arm64' } }])
    await addIndex(source, 'per-platform', [
      { ...amd64Index, platform: { os: 'linux', architecture: 'amd64' } },
      { ...arm64Index, platform: { os: 'linux', architecture: 'arm64' } }
    ])

    a = await startAgent()
    b = await startAgent({ bootstrap: [a.info.multiaddrs[0] ?? ''] })
    await runCliOk(['publish', 'nested/busybox:wrapped', '--from', `${source}:wrapped`, '--dir', a.dir])
    await runCliOk(['publish', 'nested/busybox:per-platform', '--from', `${source}:per-platform`, '--dir', a.dir])
  })

  after(async () => {
    await cleanUp([a, b].filter(agent => agent != null), folders)
  })

  for (const tag of ['wrapped', 'per-platform']) {
    it(`pulls the local platform of a ${tag} index without --platform`, async () => {
      const out = await outputFolder()

      const stdout = await runCliOk(['pull', `nested/busybox:${tag}`, '--to', out, '--dir', b.dir, '--json'])

      const expected = await requireRef(fixture('busybox'), localTag ?? '')
      const result = JSON.parse(stdout) as { digest: string, blobCount: number }
      expect(result.digest).to.equal(expected.digest)
      const index = await readIndexJson(out)
      expect(index.manifests).to.have.length(1)
      expect(index.manifests[0]?.digest).to.equal(expected.digest)
      // The platform's manifest, config and layer.
      expect(await blobNames(out)).to.have.length(3)
    })
  }

  for (const tag of ['wrapped', 'per-platform']) {
    it(`keeps the ${tag} tag on this platform after exporting another`, async () => {
      const other = Object.keys(BUSYBOX_TAGS).find(platform => platform !== formatPlatform(localPlatform())) ?? ''

      await runCliOk(['pull', `nested/busybox:${tag}`, '--dir', b.dir])
      await runCliOk(['pull', `nested/busybox:${tag}`, '--platform', other, '--to', await outputFolder(), '--dir', b.dir])

      const expected = await requireRef(fixture('busybox'), localTag ?? '')
      expect((await findRef(b.dir, `nested/busybox:${tag}`))?.digest).to.equal(expected.digest)
    })
  }

  it('pulls every blob of a nested index with --platform all', async () => {
    const out = await outputFolder()

    await runCliOk(['pull', 'nested/busybox:wrapped', '--to', out, '--platform', 'all', '--dir', b.dir])

    const outer = await requireRef(source, 'wrapped')
    expect((await findRef(out, 'wrapped'))?.digest).to.equal(outer.digest)
    // Outer index, inner index, and two manifests, configs and layers.
    expect(await blobNames(out)).to.have.length(8)
  })

  it('writes a nested pull that skopeo reads', async function () {
    if (!await hasSkopeo()) {
      this.skip()
    }
    const out = await outputFolder()
    const copied = await outputFolder()

    await runCliOk(['pull', 'nested/busybox:per-platform', '--to', out, '--dir', b.dir])
    await skopeo(['copy', `oci:${out}:per-platform`, `oci:${copied}:copied`])

    const expected = await requireRef(fixture('busybox'), localTag ?? '')
    expect((await findRef(copied, 'copied'))?.digest).to.equal(expected.digest)
    const inspected = JSON.parse(await skopeo(['inspect', `oci:${b.dir}:nested/busybox:per-platform`])) as { Digest: string }
    expect(inspected.Digest).to.equal(expected.digest)
  })
})
