import { expect } from 'chai'
import { randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { memory } from '@libp2p/memory'
import { noise } from '@libp2p/noise'
import { yamux } from '@libp2p/yamux'
import { createLibp2p, type Libp2p } from 'libp2p'
import { InvalidSwarmKeyError } from '../../../node/net/errors.js'
import { composeProtectors, generateSwarmKey, loadSwarmKey, parseSwarmKey, privateNetworkProtector, writeSwarmKey, type ProtectorFactory } from '../../../node/net/swarm-key.js'
import { expectRejection } from '../../utils/assert.js'
import type { MessageStream } from '@libp2p/interface'

const KEY_LINE = 'a'.repeat(64)

/** A protector that changes nothing and records the order in which protectors ran. */
function recordingProtector (name: string, calls: string[]): ProtectorFactory {
  return () => ({
    async protect (connection: MessageStream): Promise<MessageStream> {
      calls.push(name)
      return connection
    }
  })
}

async function memoryNode (protector: ProtectorFactory | undefined): Promise<Libp2p> {
  return createLibp2p({
    addresses: { listen: [`/memory/kilomesh-pnet-${randomBytes(6).toString('hex')}`] },
    transports: [memory()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionProtector: protector
  })
}

describe('swarm key', () => {
  const invalidKeys: Array<[string, string, RegExp]> = [
    ['empty file', '', /does not start with the line \/key\/swarm\/psk\/1\.0\.0\//],
    ['wrong header', `/key/swarm/psk/2.0.0/\n/base16/\n${KEY_LINE}\n`, /does not start with the line/],
    ['base64 encoding', `/key/swarm/psk/1.0.0/\n/base64/\n${KEY_LINE}\n`, /only \/base16\/ is supported/],
    ['short key', `/key/swarm/psk/1.0.0/\n/base16/\n${'a'.repeat(62)}\n`, /64 hexadecimal digits/],
    ['non-hex key', `/key/swarm/psk/1.0.0/\n/base16/\n${'g'.repeat(64)}\n`, /64 hexadecimal digits/],
    ['extra line', `/key/swarm/psk/1.0.0/\n/base16/\n${KEY_LINE}\nmore\n`, /third and last line/]
  ]

  for (const [name, text, message] of invalidKeys) {
    it(`parseSwarmKey rejects ${name}`, () => {
      expect(() => parseSwarmKey(text, 'test.key')).to.throw(InvalidSwarmKeyError, message)
    })
  }

  it('parseSwarmKey accepts CRLF and upper case', () => {
    const parsed = parseSwarmKey(`/key/swarm/psk/1.0.0/\r\n/base16/\r\n${'AB'.repeat(32)}\r\n`, 'test.key')

    expect(new TextDecoder().decode(parsed)).to.equal(`/key/swarm/psk/1.0.0/\n/base16/\n${'ab'.repeat(32)}`)
  })

  it('generateSwarmKey makes distinct valid keys', () => {
    const first = generateSwarmKey()
    const second = generateSwarmKey()

    expect(first).to.match(/^\/key\/swarm\/psk\/1\.0\.0\/\n\/base16\/\n[0-9a-f]{64}\n$/)
    expect(first).to.not.equal(second)
    expect(() => parseSwarmKey(first, 'generated')).to.not.throw()
  })

  describe('files', () => {
    let folder: string

    beforeEach(async () => {
      folder = await mkdtemp(join(tmpdir(), 'km-swarm-'))
    })

    afterEach(async () => {
      await rm(folder, { recursive: true, force: true })
    })

    it('writeSwarmKey writes mode 0600', async () => {
      const path = join(folder, 'swarm.key')
      const key = generateSwarmKey()

      await writeSwarmKey(path, key)

      expect((await stat(path)).mode & 0o777).to.equal(0o600)
      expect(await readFile(path, 'utf8')).to.equal(key)
    })

    it('writeSwarmKey keeps an existing file', async () => {
      const path = join(folder, 'swarm.key')
      await writeFile(path, 'old')

      await expectRejection(writeSwarmKey(path, generateSwarmKey()), InvalidSwarmKeyError, /already exists.*--force/)
      expect(await readFile(path, 'utf8')).to.equal('old')

      await writeSwarmKey(path, generateSwarmKey(), { overwrite: true })
      expect(await readFile(path, 'utf8')).to.match(/^\/key\/swarm/)
    })

    it('writeSwarmKey into a missing folder names the folder', async () => {
      const path = join(folder, 'missing', 'swarm.key')

      await expectRejection(writeSwarmKey(path, generateSwarmKey()), InvalidSwarmKeyError, /the folder .*missing does not exist; create it/)
    })

    it('loadSwarmKey names a missing file', async () => {
      const path = join(folder, 'missing.key')

      await expectRejection(loadSwarmKey(path), InvalidSwarmKeyError, new RegExp(`failed to read swarm key ${path}`))
    })

    it('loadSwarmKey rejects a folder', async () => {
      await expectRejection(loadSwarmKey(folder), InvalidSwarmKeyError, /is not a file/)
    })
  })

  describe('protectors', () => {
    const nodes: Libp2p[] = []

    afterEach(async () => {
      await Promise.all(nodes.splice(0).map(async node => node.stop()))
    })

    async function start (protector: ProtectorFactory | undefined): Promise<Libp2p> {
      const node = await memoryNode(protector)
      nodes.push(node)
      return node
    }

    it('privateNetworkProtector connects peers with one key', async () => {
      const key = parseSwarmKey(generateSwarmKey(), 'generated')
      const calls: string[] = []
      const dialer = await start(privateNetworkProtector(key, recordingProtector('inner', calls)))
      const listener = await start(privateNetworkProtector(key, recordingProtector('inner', calls)))

      await dialer.dial(listener.getMultiaddrs())

      expect(dialer.getPeers().map(peer => peer.toString())).to.include(listener.peerId.toString())
      expect(calls).to.deep.equal(['inner', 'inner'])
    })

    it('privateNetworkProtector rejects a peer with another key', async () => {
      const dialer = await start(privateNetworkProtector(parseSwarmKey(generateSwarmKey(), 'first')))
      const listener = await start(privateNetworkProtector(parseSwarmKey(generateSwarmKey(), 'second')))

      let failed = false
      try {
        await dialer.dial(listener.getMultiaddrs(), { signal: AbortSignal.timeout(5_000) })
      } catch {
        failed = true
      }

      expect(failed, 'dial between different keys failed').to.equal(true)
      expect(dialer.getPeers()).to.have.length(0)
    })

    it('privateNetworkProtector rejects a peer without a key', async () => {
      const dialer = await start(undefined)
      const listener = await start(privateNetworkProtector(parseSwarmKey(generateSwarmKey(), 'only')))

      let failed = false
      try {
        await dialer.dial(listener.getMultiaddrs(), { signal: AbortSignal.timeout(5_000) })
      } catch {
        failed = true
      }

      expect(failed, 'dial from a node without the key failed').to.equal(true)
      expect(listener.getPeers()).to.have.length(0)
    })

    it('composeProtectors runs protectors in order', async () => {
      const calls: string[] = []
      const composed = composeProtectors(recordingProtector('first', calls), recordingProtector('second', calls))
      const dialer = await start(composed)
      const listener = await start(undefined)

      await dialer.dial(listener.getMultiaddrs())

      expect(calls).to.deep.equal(['first', 'second'])
    })
  })
})
