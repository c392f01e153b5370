import { expect } from 'chai'
import { access, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { ControlClient } from '../../../node/control/client.js'
import { cleanUp, createDataDir, runCli, startAgent } from '../../utils/agents.js'
import { expectRejection } from '../../utils/assert.js'
import { REPOSITORY_ROOT } from '../../utils/paths.js'
import type { StatusView } from '../../../node/agent/status.js'

interface PackageManifest {
  version: string
  bin: { kilomesh: string }
}

async function readManifest (): Promise<PackageManifest> {
  return JSON.parse(await readFile(join(REPOSITORY_ROOT, 'package.json'), 'utf8')) as PackageManifest
}

describe('cli bundle', function () {
  this.timeout(60_000)
  let bin: string
  let version: string

  before(async () => {
    const manifest = await readManifest()
    bin = join(REPOSITORY_ROOT, manifest.bin.kilomesh)
    version = manifest.version
  })

  it('bundle is the bin of package.json', async () => {
    expect(bin).to.match(/dist\/node\/bundle\/kilomesh\.js$/)
    await access(bin)
  })

  it('bundle prints the package version', async () => {
    const result = await runCli(['--version'], { cliPath: bin })

    expect(result.code, result.stderr).to.equal(0)
    expect(result.stdout.trim()).to.equal(version)
  })

  it('bundle rejects an unknown command', async () => {
    const result = await runCli(['no-such-command'], { cliPath: bin })

    expect(result.code).to.equal(2)
    expect(result.stderr).to.contain('unknown command "no-such-command"')
  })

  it('bundled agent starts, responds and stops', async () => {
    const agent = await startAgent({ dir: await createDataDir('km-bundle-'), cliPath: bin })

    try {
      // The datastore (classic-level, outside the bundle) and the control
      // server (a lazily loaded chunk) both work when the agent responds.
      const client = await ControlClient.connect(agent.dir)
      const status = await client.get<StatusView>('/status')
      expect(status.peerId).to.equal(agent.info.peerId)

      const cli = await runCli(['status', '--json', '--dir', agent.dir], { cliPath: bin })
      expect(cli.code, cli.stderr).to.equal(0)
      expect((JSON.parse(cli.stdout) as StatusView).peerId).to.equal(agent.info.peerId)

      expect(await agent.stop('SIGTERM'), agent.logs()).to.equal(0)
      await expectRejection(access(join(agent.dir, 'agent.json')), Error, /ENOENT/)
    } finally {
      await cleanUp([agent])
    }
  })
})
