/**
 * Runs real `kilomesh` processes for tests: the CLI as a child process, and
 * agents on loopback with free ports, each in its own temporary data directory.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CLI_PATH } from './paths.js'

export interface CliResult {
  code: number | null
  stdout: string
  stderr: string
}

/** Runs the CLI (or the script at `cliPath`, such as the bundle) to completion; never throws on a non-zero exit. */
export async function runCli (args: string[], options: { env?: NodeJS.ProcessEnv, timeoutMs?: number, cliPath?: string } = {}): Promise<CliResult> {
  return runCommand(process.execPath, [options.cliPath ?? CLI_PATH, ...args], options)
}

/**
 * Runs a program to completion; never throws on a non-zero exit. A program
 * that cannot start gives a null code and the reason in stderr.
 */
export async function runCommand (command: string, args: string[], options: { env?: NodeJS.ProcessEnv, timeoutMs?: number } = {}): Promise<CliResult> {
  const child = spawn(command, args, {
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: options.timeoutMs ?? 60_000
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const code = await new Promise<number | null>(resolve => {
    child.once('close', resolve)
    child.once('error', (err) => {
      stderr += `${command}: ${err.message}`
      resolve(null)
    })
  })
  return { code, stdout, stderr }
}

/** Runs the CLI and throws with its output when it exits non-zero. */
export async function runCliOk (args: string[]): Promise<string> {
  const result = await runCli(args)
  if (result.code !== 0) {
    throw new Error(`kilomesh ${args.join(' ')} exited ${result.code}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`)
  }
  return result.stdout
}

export interface AgentFileContent {
  peerId: string
  multiaddrs: string[]
  control: string
  registry: string | null
  pid: number
}

/** A running agent process. */
export interface TestAgent {
  dir: string
  process: ChildProcess
  info: AgentFileContent
  /** Everything the agent printed on stderr so far, for failure messages. */
  logs: () => string
  /** Sends a signal and waits for the process to exit. */
  stop: (signal?: NodeJS.Signals) => Promise<number | null>
}

/** Creates an initialised data directory in the system's temporary folder. */
export async function createDataDir (prefix = 'km-test-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  await runCliOk(['init', '--dir', dir])
  return dir
}

/** Agent processes still running; killed when the test process exits, so a failed hook leaves none behind. */
const runningAgents = new Set<ChildProcess>()
process.once('exit', () => {
  for (const child of runningAgents) {
    child.kill('SIGKILL')
  }
})

async function sleep (ms: number): Promise<void> {
  await new Promise(resolve => setTimeout(resolve, ms))
}

/** Starts `kilomesh agent` on loopback with a free port and waits for agent.json. */
export async function startAgent (options: { dir?: string, bootstrap?: string[], registry?: string, env?: NodeJS.ProcessEnv, timeoutMs?: number, cliPath?: string } = {}): Promise<TestAgent> {
  const dir = options.dir ?? await createDataDir()
  const args = [options.cliPath ?? CLI_PATH, 'agent', '--dir', dir, '--listen', '/ip4/127.0.0.1/tcp/0', '--registry', options.registry ?? 'off']
  for (const address of options.bootstrap ?? []) {
    args.push('--bootstrap', address)
  }

  const child = spawn(process.execPath, args, { env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString() })
  runningAgents.add(child)
  const exited = new Promise<number | null>(resolve => child.once('exit', resolve))
  child.once('exit', () => { runningAgents.delete(child) })

  const deadline = Date.now() + (options.timeoutMs ?? 20_000)
  let info: AgentFileContent | undefined
  while (Date.now() < deadline && child.exitCode == null) {
    try {
      const parsed = JSON.parse(await readFile(join(dir, 'agent.json'), 'utf8')) as AgentFileContent
      if (parsed.pid === child.pid) {
        info = parsed
        break
      }
    } catch {
      // Not written yet.
    }
    await sleep(25)
  }

  if (info == null) {
    child.kill('SIGKILL')
    throw new Error(`agent in ${dir} did not become ready; output:\n${output}`)
  }

  return {
    dir,
    process: child,
    info,
    logs: () => output,
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode == null && child.signalCode == null) {
        child.kill(signal)
      }
      return exited
    }
  }
}

/** Stops agents and removes their data directories. */
export async function cleanUp (agents: TestAgent[], extraFolders: string[] = []): Promise<void> {
  await Promise.all(agents.map(async agent => agent.stop('SIGTERM')))
  await Promise.all([...agents.map(agent => agent.dir), ...extraFolders].map(async folder => rm(folder, { recursive: true, force: true })))
}
