import { expect } from 'chai'
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises'
import { createServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { cleanUp, runCli, runCommand, startAgent, type TestAgent } from '../../utils/agents.js'
import { CLI_PATH, fixture } from '../../utils/paths.js'

describe('cli invalid input', function () {
  this.timeout(60_000)
  let agent: TestAgent
  let scratch: string

  before(async () => {
    agent = await startAgent()
    scratch = await mkdtemp(join(tmpdir(), 'km-bad-'))
    await mkdir(join(scratch, 'empty'))
    await writeFile(join(scratch, 'junk.tar'), 'this is not a tar archive')
  })

  after(async () => {
    await cleanUp([agent], [scratch])
  })

  const cases: Array<{ name: string, args: () => string[], code: number, message: RegExp }> = [
    { name: 'uppercase repository', args: () => ['publish', 'Demo/httpd:v1', '--from', fixture('micro-httpd')], code: 1, message: /invalid repository name "Demo\/httpd"/ },
    { name: 'publish without tag', args: () => ['publish', 'demo/httpd', '--from', fixture('micro-httpd')], code: 1, message: /missing tag/ },
    { name: 'publish to a digest', args: () => ['publish', `demo/httpd@sha256:${'a'.repeat(64)}`, '--from', fixture('micro-httpd')], code: 1, message: /REPOSITORY:TAG/ },
    { name: 'publish without --from', args: () => ['publish', 'demo/httpd:v1'], code: 2, message: /missing --from/ },
    { name: 'traversal in a repository', args: () => ['pull', '../../etc/passwd:v1'], code: 1, message: /invalid repository name/ },
    { name: 'malformed digest', args: () => ['pull', 'demo/httpd@sha256:XYZ'], code: 1, message: /invalid digest "sha256:XYZ"/ },
    { name: 'digest with traversal', args: () => ['pull', 'demo/httpd@sha256:../../../etc/passwd'], code: 1, message: /invalid digest/ },
    { name: 'missing source', args: () => ['publish', 'demo/httpd:v1', '--from', join(scratch, 'nothing-here')], code: 1, message: /nothing-here/ },
    { name: 'folder that is no layout', args: () => ['publish', 'demo/httpd:v1', '--from', join(scratch, 'empty')], code: 1, message: /empty/ },
    { name: 'file that is no archive', args: () => ['publish', 'demo/httpd:v1', '--from', join(scratch, 'junk.tar')], code: 1, message: /junk\.tar/ },
    { name: 'unknown tag in a layout', args: () => ['publish', 'demo/httpd:v1', '--from', `${fixture('micro-httpd')}:v9`], code: 1, message: /v9/ },
    { name: 'ambiguous layout', args: () => ['publish', 'demo/httpd:v1', '--from', fixture('micro-httpd')], code: 1, message: /v1.*v2|v2.*v1/ },
    { name: 'bad platform', args: () => ['pull', 'demo/httpd:v1', '--platform', 'linux'], code: 1, message: /linux/ },
    { name: 'bad timeout', args: () => ['pull', 'demo/httpd:v1', '--timeout', '0'], code: 2, message: /invalid --timeout "0"/ },
    { name: 'unknown flag', args: () => ['status', '--colour'], code: 2, message: /colour/ },
    { name: 'extra argument', args: () => ['status', 'now'], code: 2, message: /takes 0 argument/ },
    { name: 'unknown command', args: () => ['pusblish'], code: 2, message: /unknown command "pusblish"/ }
  ]

  for (const testCase of cases) {
    it(`rejects ${testCase.name}`, async () => {
      const result = await runCli([...testCase.args(), '--dir', agent.dir])

      expect(result.code, result.stderr).to.equal(testCase.code)
      expect(result.stderr).to.match(testCase.message)
    })
  }

  it('prints errors as JSON with --json', async () => {
    const failed = await runCli(['pull', 'demo/none:v1', '--json', '--dir', agent.dir])
    const unparsable = await runCli(['pull', '--json', '--dir', agent.dir])

    expect(failed.code).to.equal(1)
    expect(failed.stdout).to.equal('')
    const error = (JSON.parse(failed.stderr) as { error: { command: string, name: string, message: string } }).error
    expect(error.command).to.equal('pull')
    expect(error.name).to.equal('TagNotFoundError')
    expect(error.message).to.contain('demo/none:v1')
    expect(unparsable.code).to.equal(2)
    expect((JSON.parse(unparsable.stderr) as { error: { name: string } }).error.name).to.equal('UsageError')
  })

  it('rejects an empty --dir', async () => {
    const result = await runCli(['status', '--dir', ''])

    expect(result.code).to.equal(2)
    expect(result.stderr).to.match(/--dir is empty; give the data directory/)
  })

  it('rejects a bad bootstrap address at agent start', async () => {
    const result = await runCli(['agent', '--dir', agent.dir, '--bootstrap', '/ip4/127.0.0.1/tcp/1'])

    expect(result.code).to.equal(1)
    expect(result.stderr).to.match(/does not end in \/p2p\/PEER_ID/)
  })

  it('rejects a read-only data directory', async function () {
    const dir = await mkdtemp(join(tmpdir(), 'km-readonly-'))
    try {
      await runCli(['init', '--dir', dir])
      // A read-only bind mount in a user and mount namespace of its own, which
      // also stops root, who would write through a mode of 0555.
      const script = `mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && exec "$2" "$3" agent --dir "$1" --listen /ip4/127.0.0.1/tcp/0 --registry off --no-mdns`
      const result = await runCommand('unshare', ['-rm', 'sh', '-c', script, 'sh', dir, process.execPath, CLI_PATH])
      if (result.code !== 1 && /unshare|mount/.test(result.stderr)) {
        this.skip()
      }

      expect(result.code).to.equal(1)
      expect(result.stderr).to.match(/data directory \S+ is not writable \(EROFS\)/)
      expect(result.stderr).to.not.match(/remove the folder/)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('rejects a second agent on the same data directory', async () => {
    const result = await runCli(['agent', '--dir', agent.dir, '--listen', '/ip4/127.0.0.1/tcp/0', '--registry', 'off'])

    expect(result.code).to.equal(1)
    expect(result.stderr).to.match(/already runs/)
  })

  it('rejects listen without a TCP address', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'km-listen-'))
    try {
      await runCli(['init', '--dir', dir])
      const result = await runCli(['agent', '--dir', dir, '--listen', '/ip4/127.0.0.1/udp/0/quic-v1', '--listen', '/ip4/127.0.0.1/tcp/0/ws', '--registry', 'off'])

      expect(result.code).to.equal(1)
      expect(result.stderr).to.contain('listen address 1 "/ip4/127.0.0.1/udp/0/quic-v1" is not a TCP address: the agent listens on TCP only')
      expect(result.stderr).to.contain('listen address 2 "/ip4/127.0.0.1/tcp/0/ws" is not a TCP address')
      expect(result.stderr).to.not.match(/port is in use/)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('names the reason a listen port failed', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'km-listen-'))
    const holder = createServer()
    await new Promise<void>(resolve => holder.listen(0, '127.0.0.1', resolve))
    const port = (holder.address() as AddressInfo).port
    try {
      await runCli(['init', '--dir', dir])
      const result = await runCli(['agent', '--dir', dir, '--listen', `/ip4/127.0.0.1/tcp/${port}`, '--registry', 'off'])

      expect(result.code).to.equal(1)
      expect(result.stderr).to.contain(`could not listen on any of /ip4/127.0.0.1/tcp/${port} (/ip4/127.0.0.1/tcp/${port}: the port is in use, maybe by another agent)`)
    } finally {
      holder.close()
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('rejects a bad registry address', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'km-reg-'))
    try {
      await runCli(['init', '--dir', dir])
      const result = await runCli(['agent', '--dir', dir, '--listen', '/ip4/127.0.0.1/tcp/0', '--registry', 'localhost'])

      expect(result.code).to.equal(1)
      expect(result.stderr).to.match(/registry address "localhost" is invalid/)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
