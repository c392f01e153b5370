import { expect } from 'chai'
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ControlClient, ControlRequestError } from '../../../node/control/client.js'
import { expectRejection } from '../../utils/assert.js'
import { cleanUp, createDataDir, runCli, runCliOk, startAgent, type TestAgent } from '../../utils/agents.js'
import { fixture } from '../../utils/paths.js'
import type { TagView, TrustView } from '../../../node/control/routes/catalog.js'

/** A valid peer ID that no agent in these tests has. */
const STRANGER = '12D3KooWBoFAxisUxhwCwxVCdwwhQ9mvmXYshh1ygPX6c7YrsJKa'

async function waitForPeer (agent: TestAgent, peerId: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    const peers = JSON.parse(await runCliOk(['peers', '--json', '--dir', agent.dir])) as Array<{ peerId: string }>
    if (peers.some(peer => peer.peerId === peerId)) {
      return true
    }
    await new Promise(resolve => setTimeout(resolve, 250))
  }
  return false
}

describe('cli tags, untag and trust', function () {
  this.timeout(60_000)
  let agent: TestAgent

  before(async () => {
    agent = await startAgent()
  })

  after(async () => {
    await cleanUp([agent])
  })

  it('trust add saves config.json keeping other keys', async () => {
    await runCliOk(['subscribe', 'demo/kept:v1', '--dir', agent.dir])

    await runCliOk(['trust', 'add', STRANGER, '--repository', 'demo/*', '--dir', agent.dir])

    const config = JSON.parse(await readFile(join(agent.dir, 'config.json'), 'utf8')) as { trust: TrustView, subscriptions: string[], registry: string }
    expect(config.trust.entries).to.deep.equal([{ peerId: STRANGER, repository: 'demo/*' }])
    expect(config.trust.mode).to.equal('first-use')
    expect(config.subscriptions).to.include('demo/kept:v1')
    expect(config.registry).to.be.a('string')
  })

  it('trust ls lists entries and owners', async () => {
    await runCliOk(['publish', 'solo/httpd:v1', '--from', `${fixture('micro-httpd')}:v1`, '--dir', agent.dir])

    const view = JSON.parse(await runCliOk(['trust', 'ls', '--json', '--dir', agent.dir])) as TrustView
    const text = await runCliOk(['trust', 'ls', '--dir', agent.dir])

    expect(view.entries).to.deep.include({ peerId: STRANGER, repository: 'demo/*' })
    expect(view.owners).to.deep.include({ repository: 'solo/httpd', peerId: agent.info.peerId })
    expect(text).to.contain(`${STRANGER}  demo/*`)
    expect(text).to.contain('solo/httpd')
  })

  it('publish warns when peers would reject it', async () => {
    // The entry added above gives demo/* to another publisher.
    const result = await runCli(['publish', 'demo/warned:v1', '--from', `${fixture('micro-httpd')}:v1`, '--dir', agent.dir])
    const json = JSON.parse(await runCliOk(['publish', 'demo/warned:v2', '--from', `${fixture('micro-httpd')}:v2`, '--json', '--dir', agent.dir])) as { warning?: string }

    expect(result.code).to.equal(0)
    expect(result.stderr).to.match(/^warning: trust entries restrict demo\/warned to other publishers/)
    expect(result.stderr).to.contain(`kilomesh trust add ${agent.info.peerId} --repository demo/warned`)
    expect(json.warning).to.match(/trust entries restrict demo\/warned/)
  })

  it('rollback warns when peers would reject it', async () => {
    await runCli(['publish', 'demo/warned:roll', '--from', `${fixture('micro-httpd')}:v1`, '--dir', agent.dir])
    await runCli(['publish', 'demo/warned:roll', '--from', `${fixture('micro-httpd')}:v2`, '--dir', agent.dir])

    const result = await runCli(['rollback', 'demo/warned:roll', '--dir', agent.dir])

    expect(result.code, result.stderr).to.equal(0)
    expect(result.stdout).to.contain('for the devices that accept this agent\'s records')
    expect(result.stdout).to.not.contain('every subscribed device')
    expect(result.stderr).to.match(/^warning: trust entries restrict demo\/warned to other publishers/)
  })

  it('trust rm removes the entry', async () => {
    await runCliOk(['trust', 'rm', STRANGER, '--dir', agent.dir])

    const view = JSON.parse(await runCliOk(['trust', 'ls', '--json', '--dir', agent.dir])) as TrustView
    const config = JSON.parse(await readFile(join(agent.dir, 'config.json'), 'utf8')) as { trust: TrustView }
    expect(view.entries).to.deep.equal([])
    expect(config.trust.entries).to.deep.equal([])
  })

  const invalid: Array<{ name: string, args: string[], code: number, message: RegExp }> = [
    { name: 'bad peer ID', args: ['trust', 'add', 'not-a-peer'], code: 1, message: /invalid peer ID "not-a-peer": expected a libp2p peer ID/ },
    { name: 'bad pattern', args: ['trust', 'add', STRANGER, '--repository', 'Demo/*'], code: 1, message: /invalid repository pattern "Demo\/\*"/ },
    { name: 'empty pattern', args: ['trust', 'add', STRANGER, '--repository', ''], code: 2, message: /--repository needs a pattern/ },
    { name: 'missing entry', args: ['trust', 'rm', STRANGER, '--repository', 'x/*'], code: 1, message: /no trust entry names .* for repositories "x\/\*"/ },
    { name: 'unknown action', args: ['trust', 'grant', STRANGER], code: 2, message: /unknown action "grant"/ },
    { name: 'add without peer', args: ['trust', 'add'], code: 2, message: /needs the publisher's PEER_ID/ },
    { name: 'untag unknown tag', args: ['untag', 'demo/none:v1'], code: 1, message: /tag demo\/none:v1 is not known to this agent/ },
    { name: 'untag a digest', args: ['untag', `demo/none@sha256:${'a'.repeat(64)}`], code: 1, message: /REPOSITORY:TAG/ },
    { name: 'tags bad repository', args: ['tags', 'Bad/Name'], code: 1, message: /invalid repository name "Bad\/Name"/ }
  ]

  for (const { name, args, code, message } of invalid) {
    it(`rejects ${name}`, async () => {
      const result = await runCli([...args, '--dir', agent.dir])

      expect(result.code).to.equal(code)
      expect(result.stderr).to.match(message)
    })
  }

  it('tags lists current and older versions', async () => {
    await runCliOk(['publish', 'solo/httpd:v1', '--from', `${fixture('micro-httpd')}:v2`, '--dir', agent.dir])

    const current = JSON.parse(await runCliOk(['tags', 'solo/httpd', '--json', '--dir', agent.dir])) as TagView[]
    const full = JSON.parse(await runCliOk(['tags', 'solo/httpd', '--history', '--json', '--dir', agent.dir])) as TagView[]
    const text = await runCliOk(['tags', 'solo/httpd', '--history', '--dir', agent.dir])

    expect(current).to.have.length(1)
    expect(current[0]).to.not.have.property('history')
    expect(full[0]?.history).to.have.length(1)
    expect(full[0]?.current?.hlcWallMs).to.be.above(full[0]?.history[0]?.hlcWallMs ?? Infinity)
    expect(text).to.match(/^\*\s+current\s+sha256:0ea58ed57cbc/m)
    expect(text).to.match(/^\s+older\s+sha256:b00a22a43573/m)
  })

  it('untag deletes and hides the tag', async () => {
    const result = JSON.parse(await runCliOk(['untag', 'solo/httpd:v1', '--json', '--dir', agent.dir])) as { repository: string, tag: string, warning?: string }

    expect(result.repository).to.equal('solo/httpd')
    expect(result.warning).to.equal(undefined)
    expect(JSON.parse(await runCliOk(['tags', 'solo/httpd', '--json', '--dir', agent.dir]))).to.deep.equal([])
    const full = JSON.parse(await runCliOk(['tags', 'solo/httpd', '--history', '--json', '--dir', agent.dir])) as TagView[]
    expect(full[0]?.current?.deleted).to.equal(true)
    const again = await runCli(['untag', 'solo/httpd:v1', '--dir', agent.dir])
    expect(again.stderr).to.contain('is already deleted')
  })

  it('pull of a deleted tag says it was deleted', async () => {
    const result = await runCli(['pull', 'solo/httpd:v1', '--dir', agent.dir])

    expect(result.code).to.equal(1)
    expect(result.stderr).to.contain(`tag solo/httpd:v1 was deleted by ${agent.info.peerId}`)
  })

  it('debug routes answer 404 without test hooks', async () => {
    const client = await ControlClient.connect(agent.dir)

    const error = await expectRejection(client.post('/debug/block', { peers: [STRANGER] }), ControlRequestError, /KILOMESH_TEST_HOOKS=1/)
    expect(error.status).to.equal(404)
  })
})

describe('cli keygen and agent --swarm-key', function () {
  this.timeout(90_000)
  const agents: TestAgent[] = []
  let folder: string

  before(async () => {
    folder = await mkdtemp(join(tmpdir(), 'km-keys-'))
  })

  after(async () => {
    await cleanUp(agents, [folder])
  })

  it('keygen writes a 0600 key file', async () => {
    const path = join(folder, 'mesh.key')

    await runCliOk(['keygen', '--out', path])

    expect((await stat(path)).mode & 0o777).to.equal(0o600)
    expect(await readFile(path, 'utf8')).to.match(/^\/key\/swarm\/psk\/1\.0\.0\/\n\/base16\/\n[0-9a-f]{64}\n$/)
    const again = await runCli(['keygen', '--out', path])
    expect(again.code).to.equal(1)
    expect(again.stderr).to.contain('already exists')
  })

  it('keygen prints a key without --out', async () => {
    const output = await runCliOk(['keygen'])

    expect(output).to.match(/^\/key\/swarm\/psk\/1\.0\.0\/\n\/base16\/\n[0-9a-f]{64}\n$/)
  })

  /** Creates a data directory whose config.json names `swarmKey`. */
  async function dataDirWithKey (swarmKey: string): Promise<string> {
    const dir = await createDataDir()
    const config = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>
    await writeFile(join(dir, 'config.json'), JSON.stringify({ ...config, swarmKey }))
    return dir
  }

  it('agents connect only with the same key', async () => {
    const key = join(folder, 'mesh.key')
    const otherKey = join(folder, 'other.key')
    await runCliOk(['keygen', '--out', otherKey])

    // A relative swarmKey in config.json is read from the data directory.
    const firstDir = await dataDirWithKey('mesh.key')
    await writeFile(join(firstDir, 'mesh.key'), await readFile(key), { mode: 0o600 })
    const first = await startAgent({ dir: firstDir })
    agents.push(first)

    const bootstrap = [first.info.multiaddrs[0] ?? '']
    const member = await startAgent({ dir: await dataDirWithKey(key), bootstrap })
    agents.push(member)
    const outsider = await startAgent({ dir: await dataDirWithKey(otherKey), bootstrap })
    agents.push(outsider)
    const keyless = await startAgent({ bootstrap })
    agents.push(keyless)

    expect(await waitForPeer(first, member.info.peerId, 15_000), 'member connected').to.equal(true)
    expect(await waitForPeer(first, outsider.info.peerId, 3_000), 'outsider connected').to.equal(false)
    expect(await waitForPeer(first, keyless.info.peerId, 1_000), 'agent without a key connected').to.equal(false)
  })

  it('agent rejects an unreadable key', async () => {
    const dir = await createDataDir()
    await writeFile(join(folder, 'bad.key'), 'not a key\n')

    const missing = await runCli(['agent', '--dir', dir, '--listen', '/ip4/127.0.0.1/tcp/0', '--registry', 'off', '--swarm-key', join(folder, 'none.key')], { timeoutMs: 20_000 })
    const malformed = await runCli(['agent', '--dir', dir, '--listen', '/ip4/127.0.0.1/tcp/0', '--registry', 'off', '--swarm-key', join(folder, 'bad.key')], { timeoutMs: 20_000 })
    await rm(dir, { recursive: true, force: true })

    expect(missing.code).to.equal(1)
    expect(missing.stderr).to.contain(`failed to read swarm key ${join(folder, 'none.key')}`)
    expect(malformed.code).to.equal(1)
    expect(malformed.stderr).to.contain('does not start with the line /key/swarm/psk/1.0.0/')
  })

  it('agent rejects a bad clock offset', async () => {
    const dir = await createDataDir()

    const result = await runCli(['agent', '--dir', dir, '--listen', '/ip4/127.0.0.1/tcp/0', '--registry', 'off'], { env: { KILOMESH_CLOCK_OFFSET_MS: 'soon' }, timeoutMs: 20_000 })
    await rm(dir, { recursive: true, force: true })

    expect(result.code).to.equal(1)
    expect(result.stderr).to.contain('KILOMESH_CLOCK_OFFSET_MS="soon" is invalid')
  })
})
