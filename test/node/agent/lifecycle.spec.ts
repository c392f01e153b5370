import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { expect } from 'chai'
import { access, mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { cleanUp, createDataDir, runCli, runCliOk, startAgent } from '../../utils/agents.js'
import { fixture } from '../../utils/paths.js'

async function exists (path: string): Promise<boolean> {
  try {
    await access(path)
    return true
  } catch {
    return false
  }
}

describe('agent lifecycle', function () {
  this.timeout(60_000)

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`writes agent.json when ready and removes it on ${signal}`, async () => {
      const agent = await startAgent()
      try {
        expect(agent.info.pid).to.equal(agent.process.pid)
        expect(agent.info.multiaddrs[0]).to.match(/^\/ip4\/127\.0\.0\.1\/tcp\/[1-9]\d*\/p2p\/12D3KooW/)
        expect(agent.info.control).to.equal(`unix:${join(agent.dir, 'control.sock')}`)
        expect(agent.info.registry).to.equal(null)

        const code = await agent.stop(signal)

        expect(code).to.equal(0)
        expect(await exists(join(agent.dir, 'agent.json'))).to.equal(false)
        expect(await exists(join(agent.dir, 'control.sock'))).to.equal(false)
      } finally {
        await cleanUp([agent])
      }
    })
  }

  it('starts despite a stale agent.json with a live pid', async () => {
    // After a crash and a reboot, the pid in agent.json may belong to another program.
    const dir = await createDataDir()
    await writeFile(join(dir, 'agent.json'), JSON.stringify({ peerId: 'stale', multiaddrs: [], control: `unix:${join(dir, 'control.sock')}`, registry: null, pid: process.pid }))

    const agent = await startAgent({ dir })
    try {
      expect(agent.info.pid).to.equal(agent.process.pid)
    } finally {
      await cleanUp([agent])
    }
  })

  it('second agent on one directory changes no files', async () => {
    const agent = await startAgent()
    try {
      const partial = join(agent.dir, 'tmp', 'partial-blob-of-the-running-agent')
      await mkdir(join(agent.dir, 'tmp'), { recursive: true })
      await writeFile(partial, 'partial bytes')

      const second = await runCli(['agent', '--dir', agent.dir, '--listen', '/ip4/127.0.0.1/tcp/0', '--registry', 'off', '--no-mdns'])

      expect(second.code).to.equal(1)
      expect(second.stderr).to.match(/another agent already runs on .*datastore .* is locked/)
      expect(await exists(partial)).to.equal(true)
    } finally {
      await cleanUp([agent])
    }
  })

  it('connect tests the address of a connected peer', async () => {
    const a = await startAgent()
    const b = await startAgent({ bootstrap: [a.info.multiaddrs[0] ?? ''] })
    try {
      const wrongPort = `/ip4/127.0.0.1/tcp/1/p2p/${a.info.peerId}`
      const own = b.info.multiaddrs[0] ?? ''

      await runCliOk(['connect', a.info.multiaddrs[0] ?? '', '--dir', b.dir])
      const wrong = await runCli(['connect', wrongPort, '--dir', b.dir])
      const self = await runCli(['connect', own, '--dir', b.dir])

      expect(wrong.code).to.equal(1)
      expect(wrong.stderr).to.contain('nothing listens on that address and port')
      expect(self.code).to.equal(1)
      expect(self.stderr).to.contain('is this agent\'s own address')

      // A's address with a peer ID that is not a's.
      const stranger = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
      const mismatch = await runCli(['connect', (a.info.multiaddrs[0] ?? '').replace(a.info.peerId, stranger), '--dir', b.dir])
      expect(mismatch.code).to.equal(1)
      expect(mismatch.stderr).to.contain('has another peer ID than the one after /p2p/')
    } finally {
      await cleanUp([a, b])
    }
  })

  it('tells a connected agent about a publish by gossip', async () => {
    const a = await startAgent()
    const b = await startAgent({ bootstrap: [a.info.multiaddrs[0] ?? ''] })
    try {
      // Gossipsub needs a heartbeat or two to graft the new peer into its mesh.
      const deadline = Date.now() + 20_000
      let known = false
      let attempt = 0
      while (!known && Date.now() < deadline) {
        await runCliOk(['publish', `demo/gossip:v${++attempt}`, '--from', `${fixture('micro-httpd')}:v1`, '--dir', a.dir])
        await new Promise(resolve => setTimeout(resolve, 500))
        const images = JSON.parse(await runCliOk(['images', '--json', '--dir', b.dir])) as Array<{ repository: string, local: boolean }>
        known = images.some(image => image.repository === 'demo/gossip')
      }

      expect(known).to.equal(true)
    } finally {
      await cleanUp([a, b])
    }
  })
})
