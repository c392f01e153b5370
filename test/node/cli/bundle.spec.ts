import { expect } from 'chai'
import { spawn } from 'node:child_process'
import { access, readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { ControlClient } from '../../../node/control/client.js'
import { createDataDir, type AgentFileContent } from '../../utils/agents.js'
import { expectRejection } from '../../utils/assert.js'
import { REPOSITORY_ROOT } from '../../utils/paths.js'
import type { StatusView } from '../../../node/agent/status.js'
import type { ChildProcess } from 'node:child_process'

const START_TIMEOUT_MS = 20_000

interface PackageManifest {
  version: string
  bin: { kilomesh: string }
}

async function readManifest (): Promise<PackageManifest> {
  return JSON.parse(await readFile(join(REPOSITORY_ROOT, 'package.json'), 'utf8')) as PackageManifest
}

/** Runs the bundled bin to its exit and returns its exit code and output. */
async function runBundle (bin: string, args: string[]): Promise<{ code: number | null, stdout: string, stderr: string }> {
  const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'], timeout: START_TIMEOUT_MS })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const code = await new Promise<number | null>(resolve => child.once('close', resolve))
  return { code, stdout, stderr }
}

/** Waits until agent.json in `dir` names `child`'s pid, and returns its content. */
async function waitForAgentFile (dir: string, child: ChildProcess, output: () => string): Promise<AgentFileContent> {
  const deadline = Date.now() + START_TIMEOUT_MS
  while (Date.now() < deadline && child.exitCode == null) {
    try {
      const parsed = JSON.parse(await readFile(join(dir, 'agent.json'), 'utf8')) as AgentFileContent
      if (parsed.pid === child.pid) {
        return parsed
      }
    } catch {
      // Not written yet.
    }
    await new Promise(resolve => setTimeout(resolve, 25))
  }
  throw new Error(`the bundled agent in ${dir} did not become ready; output:\n${output()}`)
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
    const result = await runBundle(bin, ['--version'])

    expect(result.code, result.stderr).to.equal(0)
    expect(result.stdout.trim()).to.equal(version)
  })

  it('bundle rejects an unknown command', async () => {
    const result = await runBundle(bin, ['no-such-command'])

    expect(result.code).to.equal(2)
    expect(result.stderr).to.contain('unknown command "no-such-command"')
  })

  it('bundled agent starts, responds and stops', async () => {
    const dir = await createDataDir('km-bundle-')
    const child = spawn(process.execPath, [bin, 'agent', '--dir', dir, '--listen', '/ip4/127.0.0.1/tcp/0', '--registry', 'off'], { stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
    child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString() })
    const exited = new Promise<number | null>(resolve => child.once('exit', resolve))

    try {
      const info = await waitForAgentFile(dir, child, () => output)

      // The datastore (classic-level, outside the bundle) and the control
      // server (a lazily loaded chunk) both work when the agent responds.
      const client = await ControlClient.connect(dir)
      const status = await client.get<StatusView>('/status')
      expect(status.peerId).to.equal(info.peerId)

      const cli = await runBundle(bin, ['status', '--json', '--dir', dir])
      expect(cli.code, cli.stderr).to.equal(0)
      expect((JSON.parse(cli.stdout) as StatusView).peerId).to.equal(info.peerId)

      child.kill('SIGTERM')
      expect(await exited, output).to.equal(0)
      await expectRejection(access(join(dir, 'agent.json')), Error, /ENOENT/)
    } finally {
      if (child.exitCode == null && child.signalCode == null) {
        child.kill('SIGKILL')
      }
      await rm(dir, { recursive: true, force: true })
    }
  })
})
