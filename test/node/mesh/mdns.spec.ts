import { expect } from 'chai'
import { spawn, type ChildProcess } from 'node:child_process'
import { readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { createDataDir, runCliOk } from '../../utils/agents.js'
import { canCreateNamespaces, createTestNetwork, type TestNetwork } from '../../utils/netns.js'
import { CLI_PATH } from '../../utils/paths.js'

describe('mesh mDNS discovery in network namespaces', function () {
  this.timeout(90_000)
  let network: TestNetwork | undefined
  const processes: ChildProcess[] = []
  const dirs: string[] = []

  before(async function () {
    if (!await canCreateNamespaces()) {
      this.skip()
    }
    network = await createTestNetwork(2)
  })

  after(async () => {
    for (const child of processes) {
      child.kill('SIGTERM')
    }
    await Promise.all(processes.map(async child => child.exitCode != null ? undefined : new Promise(resolve => child.once('exit', resolve))))
    await network?.destroy()
    await Promise.all(dirs.map(async dir => rm(dir, { recursive: true, force: true })))
  })

  async function startInNamespace (namespace: string, address: string, port: number, extra: string[] = []): Promise<{ dir: string, peerId: string }> {
    const dir = await createDataDir('km-mdns-')
    dirs.push(dir)
    const child = spawn('ip', ['netns', 'exec', namespace, process.execPath, CLI_PATH, 'agent', '--dir', dir, '--listen', `/ip4/${address}/tcp/${port}`, '--registry', 'off', ...extra], { stdio: 'ignore' })
    processes.push(child)

    const deadline = Date.now() + 20_000
    while (Date.now() < deadline) {
      try {
        const info = JSON.parse(await readFile(join(dir, 'agent.json'), 'utf8')) as { peerId: string }
        return { dir, peerId: info.peerId }
      } catch {
        await new Promise(resolve => setTimeout(resolve, 50))
      }
    }
    throw new Error(`agent in namespace ${namespace} did not start`)
  }

  async function peersOf (dir: string): Promise<string[]> {
    const peers = JSON.parse(await runCliOk(['peers', '--json', '--dir', dir])) as Array<{ peerId: string }>
    return peers.map(peer => peer.peerId)
  }

  it('connects two agents with no bootstrap list', async () => {
    const [first, second] = network?.hosts ?? []
    if (first == null || second == null) {
      throw new Error('the test network has no hosts')
    }

    const a = await startInNamespace(first.namespace, first.address, 4001)
    const b = await startInNamespace(second.namespace, second.address, 4001)

    const deadline = Date.now() + 30_000
    let peers: string[] = []
    while (Date.now() < deadline && !peers.includes(b.peerId)) {
      await new Promise(resolve => setTimeout(resolve, 250))
      peers = await peersOf(a.dir)
    }
    expect(peers).to.include(b.peerId)
  })

  it('stays alone with --no-mdns', async () => {
    const [, second] = network?.hosts ?? []
    if (second == null) {
      throw new Error('the test network has no hosts')
    }

    // The agents of the first test still announce themselves on this LAN.
    const quiet = await startInNamespace(second.namespace, second.address, 4002, ['--no-mdns'])
    await new Promise(resolve => setTimeout(resolve, 5_000))

    expect(await peersOf(quiet.dir)).to.deep.equal([])
  })
})
