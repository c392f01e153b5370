/**
 * `npm run demo`: two agents on loopback, each in a temporary data
 * directory. The first publishes the bundled micro-httpd image, and the
 * second pulls it through libp2p and writes it as an OCI image layout, kept
 * in the temporary folder for inspection. Then twelve simulated devices run
 * the split-and-heal scenario, and the demo prints where its HTML report is
 * without opening it. Every step runs the real `kilomesh` CLI, so the output
 * shows what a user would type.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('../../../', import.meta.url))
const CLI = join(ROOT, 'dist', 'node', 'cli', 'bin.js')
const IMAGE = join(ROOT, 'test', 'fixtures', 'micro-httpd')
const SCENARIO = join(ROOT, 'simulations', 'scenarios', 'split-and-heal.yaml')
const READY_TIMEOUT_MS = 20_000

function step (text: string): void {
  console.log(`\n==> ${text}`)
}

async function kilomesh (args: string[]): Promise<string> {
  console.log(`$ kilomesh ${args.join(' ')}`)
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'inherit'] })
  let stdout = ''
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
  const code = await new Promise<number | null>(resolve => child.once('close', resolve))
  process.stdout.write(stdout.replace(/^/gm, '  '))
  if (code !== 0) {
    throw new Error(`kilomesh ${args[0] ?? ''} exited with status ${code}`)
  }
  return stdout
}

/** Runs the CLI with its output going straight to the terminal, for long commands; returns the exit code. */
async function kilomeshLive (args: string[]): Promise<number | null> {
  console.log(`$ kilomesh ${args.join(' ')}`)
  // The scenario names its images relative to the repository root.
  const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] })
  return new Promise<number | null>(resolve => child.once('close', resolve))
}

async function startAgent (dir: string, bootstrap?: string): Promise<{ child: ChildProcess, multiaddr: string }> {
  const args = ['agent', '--dir', dir, '--listen', '/ip4/127.0.0.1/tcp/0', '--registry', 'off', ...(bootstrap != null ? ['--bootstrap', bootstrap] : [])]
  console.log(`$ kilomesh ${args.join(' ')} &`)
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'ignore', 'inherit'] })

  const deadline = Date.now() + READY_TIMEOUT_MS
  while (Date.now() < deadline) {
    try {
      const info = JSON.parse(await readFile(join(dir, 'agent.json'), 'utf8')) as { pid: number, multiaddrs: string[] }
      if (info.pid === child.pid && info.multiaddrs[0] != null) {
        console.log(`  ready: ${info.multiaddrs[0]}`)
        return { child, multiaddr: info.multiaddrs[0] }
      }
    } catch {
      // agent.json is not written yet.
    }
    if (child.exitCode != null) {
      break
    }
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  child.kill('SIGKILL')
  throw new Error(`the agent in ${dir} did not become ready within ${READY_TIMEOUT_MS} ms`)
}

async function main (): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'kilomesh-demo-'))
  const out = await twoDevices(work)
  const report = join(work, 'simulation')

  step('simulate twelve devices split into two islands, each publishing a version, then healed')
  const code = await kilomeshLive(['sim', 'run', SCENARIO, '--report', report])
  if (code !== 0) {
    console.log(`  the scenario failed with exit status ${code}; the report lists the failed expectations and events`)
    process.exitCode = 1
  }

  step(`done: ${out} is an OCI image layout; try "skopeo inspect oci:${out}:v1"`)
  console.log(`  simulation report: ${join(report, 'report.html')} (metrics: ${join(report, 'metrics.json')})`)
  console.log(`  remove ${work} when finished`)
}

/** Publishes on one real agent and pulls on another; returns the folder of the pulled layout. */
async function twoDevices (work: string): Promise<string> {
  const dirA = join(work, 'device-a')
  const dirB = join(work, 'device-b')
  const out = join(work, 'pulled')
  const agents: ChildProcess[] = []

  try {
    step('create two devices, each with its own data directory and identity')
    await kilomesh(['init', '--dir', dirA])
    await kilomesh(['init', '--dir', dirB])

    step('start their agents on loopback; device B bootstraps to device A')
    const a = await startAgent(dirA)
    agents.push(a.child)
    const b = await startAgent(dirB, a.multiaddr)
    agents.push(b.child)

    step('publish the bundled micro-httpd image on device A')
    await kilomesh(['publish', 'demo/httpd:v1', '--from', `${IMAGE}:v1`, '--dir', dirA])

    step('pull it on device B through the mesh, verified blob by blob')
    await kilomesh(['pull', 'demo/httpd:v1', '--to', out, '--dir', dirB])

    step('what device B now holds')
    await kilomesh(['images', '--dir', dirB])
    await kilomesh(['peers', '--dir', dirB])
    return out
  } finally {
    for (const child of agents) {
      child.kill('SIGTERM')
    }
    await Promise.all(agents.map(async child => child.exitCode != null ? undefined : new Promise(resolve => child.once('exit', resolve))))
    // The devices' data directories go; the pulled layout stays for inspection.
    await rm(dirA, { recursive: true, force: true })
    await rm(dirB, { recursive: true, force: true })
  }
}

main().catch(err => {
  console.error(`demo failed: ${err.message as string}`)
  process.exitCode = 1
})
