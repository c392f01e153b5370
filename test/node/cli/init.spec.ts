import { expect } from 'chai'
import { mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runCli, runCliOk } from '../../utils/agents.js'

describe('cli init', () => {
  let parent: string

  beforeEach(async () => {
    parent = await mkdtemp(join(tmpdir(), 'km-init-'))
  })

  afterEach(async () => {
    await rm(parent, { recursive: true, force: true })
  })

  it('creates a layout, a private identity and a config', async () => {
    const dir = join(parent, 'data')

    const result = JSON.parse(await runCliOk(['init', '--dir', dir, '--json'])) as { peerId: string, created: string[] }

    expect(result.peerId).to.match(/^12D3KooW/)
    expect(result.created).to.have.members(['oci-layout', 'index.json', 'identity.key', 'config.json'])
    expect(((await stat(join(dir, 'identity.key'))).mode & 0o777).toString(8)).to.equal('600')
    expect(JSON.parse(await readFile(join(dir, 'oci-layout'), 'utf8'))).to.deep.equal({ imageLayoutVersion: '1.0.0' })
    const config = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as { listen: string[], registry: string }
    expect(config.listen).to.deep.equal(['/ip4/0.0.0.0/tcp/4001', '/ip6/::/tcp/4001'])
    expect(config.registry).to.equal('127.0.0.1:5000')
  })

  it('changes nothing when run twice', async () => {
    const dir = join(parent, 'data')
    const first = JSON.parse(await runCliOk(['init', '--dir', dir, '--json'])) as { peerId: string }
    const files = await readdir(dir)
    const key = await readFile(join(dir, 'identity.key'))
    const config = await readFile(join(dir, 'config.json'))

    const second = JSON.parse(await runCliOk(['init', '--dir', dir, '--json'])) as { peerId: string, created: string[] }

    expect(second.peerId).to.equal(first.peerId)
    expect(second.created).to.deep.equal([])
    expect(await readdir(dir)).to.deep.equal(files)
    expect((await readFile(join(dir, 'identity.key'))).equals(key)).to.equal(true)
    expect((await readFile(join(dir, 'config.json'))).equals(config)).to.equal(true)
  })

  it('uses KILOMESH_DIR when --dir is absent', async () => {
    const dir = join(parent, 'from-env')

    const result = await runCli(['init'], { env: { KILOMESH_DIR: dir } })

    expect(result.code).to.equal(0)
    expect((await stat(join(dir, 'identity.key'))).isFile()).to.equal(true)
  })
})
