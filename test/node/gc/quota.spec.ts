import { expect } from 'chai'
import { readFile, readdir, stat, utimes, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { cleanUp, createDataDir, runCli, runCliOk, startAgent, type TestAgent } from '../../utils/agents.js'
import { BUSYBOX_AMD64, BUSYBOX_ARM64, V1, V2, addressOf, publish, refDigest, waitFor, waitForRef } from '../subscriptions/helpers.js'
import type { CollectResult } from '../../../node/store/gc.js'

const HOUR_MS = 3600_000

/** Digests of the three blobs of each fixture image: manifest, config and layer. */
const BLOBS: Record<string, string[]> = {
  [V1]: [V1, 'sha256:11cf634045183836747073e3aea959d01fdaf4fd55c8b9c022738e62123c439c', 'sha256:6605c25f659b195ee6cf445c35a56180b3a2f26db15740fb46de7076b7f728b2'],
  [V2]: [V2, 'sha256:b0c72be8dc87fcbf9902b2ec07d60c04cdc243e0cdb3d2d034b19e0267a938d4', 'sha256:7c7c06a71bd052741ef6a57efb0fa47d95fd407ac41444208fafd33dc3097045'],
  [BUSYBOX_AMD64]: [BUSYBOX_AMD64, 'sha256:4b6905a8598001b7d205272de43cb3e68f9451966085ec2e9315b74dc3e28ad5', 'sha256:0bf36be11406bc3d56538a05318bbf7263a4f78c1b67e91a206087d7bfa2ce36'],
  [BUSYBOX_ARM64]: [BUSYBOX_ARM64, 'sha256:572fb59db4ccc3d2ef64d9c7b20f16dc18d0da3723724db210679ac8bb17e683', 'sha256:98e757988850b9b6be1d0f96036929f76caf28d5c783cbae6238f720bc23aff2']
}

function blobPath (agent: TestAgent, digest: string): string {
  return join(agent.dir, 'blobs', 'sha256', digest.slice('sha256:'.length))
}

/** Sets the last use of every blob of an image in an agent's store to `hours` ago. */
async function lastUsed (agent: TestAgent, image: string, hours: number): Promise<void> {
  const when = new Date(Date.now() - hours * HOUR_MS)
  for (const digest of BLOBS[image] ?? []) {
    await utimes(blobPath(agent, digest), when, when)
  }
}

async function holds (agent: TestAgent, image: string): Promise<boolean[]> {
  return Promise.all((BLOBS[image] ?? []).map(async digest => stat(blobPath(agent, digest)).then(() => true, () => false)))
}

async function imageBytes (agent: TestAgent, image: string): Promise<number> {
  const sizes = await Promise.all((BLOBS[image] ?? []).map(async digest => (await stat(blobPath(agent, digest))).size))
  return sizes.reduce((sum, size) => sum + size, 0)
}

async function storedBytes (agent: TestAgent): Promise<number> {
  const folder = join(agent.dir, 'blobs', 'sha256')
  const sizes = await Promise.all((await readdir(folder)).map(async name => (await stat(join(folder, name))).size))
  return sizes.reduce((sum, size) => sum + size, 0)
}

describe('gc storage quota with agents', function () {
  this.timeout(180_000)
  let publisher: TestAgent
  let device: TestAgent

  before(async () => {
    publisher = await startAgent()
    device = await startAgent({ bootstrap: [addressOf(publisher)] })
    await runCliOk(['subscribe', 'demo/httpd:stable', '--dir', device.dir])

    await publish(publisher, 'demo/httpd:stable', V1)
    await waitForRef(device, 'demo/httpd:stable', V1)
    await publish(publisher, 'demo/httpd:stable', V2)
    await waitForRef(device, 'demo/httpd:stable', V2)

    // Two images the device pulls by hand: referenced by index.json, but not pinned.
    await publish(publisher, 'library/busybox:amd64', BUSYBOX_AMD64)
    await publish(publisher, 'library/busybox:arm64', BUSYBOX_ARM64)
    await runCliOk(['pull', 'library/busybox:amd64', '--dir', device.dir])
    await runCliOk(['pull', 'library/busybox:arm64', '--dir', device.dir])
  })

  after(async () => {
    await cleanUp([publisher, device])
  })

  it('reports that no quota is set', async () => {
    const output = await runCliOk(['gc', '--dir', device.dir])

    expect(output).to.contain('no storage quota is set, so nothing was evicted')
    expect(await holds(device, BUSYBOX_ARM64)).to.deep.equal([true, true, true])
    expect((JSON.parse(await runCliOk(['status', '--json', '--dir', device.dir])) as { maxStorageBytes: number | null }).maxStorageBytes).to.equal(null)
  })

  it('spares recently used blobs', async () => {
    const result = JSON.parse(await runCliOk(['gc', '--max-storage', '0', '--json', '--dir', device.dir])) as CollectResult

    expect(result.evicted).to.have.length(0)
    expect(result.recentBlobs).to.equal(6)
    expect(result.pinnedBlobs).to.equal(6)
    expect(result.overQuota).to.equal(true)
  })

  it('lists evictions without removing them in a dry run', async () => {
    await lastUsed(device, BUSYBOX_ARM64, 3)
    await lastUsed(device, BUSYBOX_AMD64, 2)

    const output = await runCliOk(['gc', '--max-storage', '0', '--dry-run', '--dir', device.dir])

    expect(output).to.match(/^would evict 6 blob\(s\), /)
    expect(output).to.contain('would remove from index.json: ')
    expect(await holds(device, BUSYBOX_ARM64)).to.deep.equal([true, true, true])
  })

  it('evicts the least recently used unpinned image first', async () => {
    // The pinned versions are the oldest of all, so only their pins keep them.
    await lastUsed(device, V1, 4)
    await lastUsed(device, V2, 4)
    await lastUsed(device, BUSYBOX_ARM64, 3)
    await lastUsed(device, BUSYBOX_AMD64, 2)
    const quota = (await storedBytes(device)) - (await imageBytes(device, BUSYBOX_ARM64))

    const result = JSON.parse(await runCliOk(['gc', '--max-storage', String(quota), '--json', '--dir', device.dir])) as CollectResult

    expect(result.evicted.map(blob => blob.digest).sort()).to.deep.equal([...BLOBS[BUSYBOX_ARM64] ?? []].sort())
    expect(result.removedRefs).to.deep.equal(['library/busybox:arm64'])
    expect(result.storedBytesAfter).to.equal(quota)
    expect(result.overQuota).to.equal(false)
    expect(await holds(device, BUSYBOX_ARM64)).to.deep.equal([false, false, false])
    expect(await holds(device, BUSYBOX_AMD64)).to.deep.equal([true, true, true])
    expect(await holds(device, V1)).to.deep.equal([true, true, true])
    expect(await holds(device, V2)).to.deep.equal([true, true, true])
    expect(await refDigest(device, 'library/busybox:arm64')).to.equal(undefined)
    expect(await refDigest(device, 'demo/httpd:stable')).to.equal(V2)
  })

  it('keeps the current and previous pinned versions', async () => {
    const output = await runCliOk(['gc', '--max-storage', '0', '--dir', device.dir])

    expect(output).to.match(/^evicted 3 blob\(s\), 1\.0 MiB; the store contains 13\.4 KiB of the 0 B quota/)
    expect(output).to.contain('removed from index.json: library/busybox:amd64')
    expect(output).to.contain('kept 6 pinned blob(s) (13.4 KiB)')
    expect(output).to.contain('still above the quota')
    expect(await holds(device, BUSYBOX_AMD64)).to.deep.equal([false, false, false])
    expect(await holds(device, V1)).to.deep.equal([true, true, true])
    expect(await holds(device, V2)).to.deep.equal([true, true, true])
  })
})

describe('gc quota of a running agent', function () {
  this.timeout(180_000)
  let publisher: TestAgent
  let device: TestAgent

  before(async () => {
    publisher = await startAgent()
    const dir = await createDataDir()
    const config = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>
    await writeFile(join(dir, 'config.json'), JSON.stringify({ ...config, maxStorageBytes: '100kB', subscriptions: ['demo/httpd:stable'] }))
    device = await startAgent({ dir, bootstrap: [addressOf(publisher)] })
  })

  after(async () => {
    await cleanUp([publisher, device])
  })

  it('evicts on its own after a subscribed pull', async () => {
    await publish(publisher, 'library/busybox:amd64', BUSYBOX_AMD64)
    await runCliOk(['pull', 'library/busybox:amd64', '--dir', device.dir])
    await lastUsed(device, BUSYBOX_AMD64, 2)

    // The quota of config.json is checked after each automatic pull.
    await publish(publisher, 'demo/httpd:stable', V1)
    await waitForRef(device, 'demo/httpd:stable', V1)

    // Evicting the 1 MB layer alone brings the store under 100 kB, so the small blobs stay.
    await waitFor(async () => (await holds(device, BUSYBOX_AMD64))[2] === false, 'the busybox layer to be evicted')
    expect(await holds(device, V1)).to.deep.equal([true, true, true])
    await waitFor(async () => await refDigest(device, 'library/busybox:amd64') == null, 'the busybox ref to be removed')
    expect(await storedBytes(device)).to.be.at.most(100_000)
  })

  it('status shows the quota of config.json', async () => {
    const status = JSON.parse(await runCliOk(['status', '--json', '--dir', device.dir])) as { maxStorageBytes: number | null }
    const text = await runCliOk(['status', '--dir', device.dir])

    expect(status.maxStorageBytes).to.equal(100_000)
    expect(text).to.match(/^store {8}\d+ blobs, .* \(quota 97.7 KiB\)$/m)
  })

  it('rejects a bad size unit', async () => {
    const result = await runCli(['gc', '--max-storage', '12XB', '--dir', device.dir])

    expect(result.code).to.equal(1)
    expect(result.stderr).to.match(/invalid --max-storage "12XB": give a number of bytes with an optional unit/)
  })
})
