/**
 * The agent as a real process: time from spawn to agent.json, resident
 * memory when idle with connected peers, and the wall time of
 * `kilomesh status`, each beside a bare Node process doing the least the
 * same measure allows.
 */
import { readFileSync } from 'node:fs'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { initDataDir } from '../../../node/config/init.js'
import { dataDirPaths } from '../../../node/config/paths.js'
import { ControlClient } from '../../../node/control/client.js'
import { CLI_PATH, REPOSITORY_ROOT } from '../../utils/paths.js'
import { countByPackage, isLibp2pPackage, listLoadedModules } from './module-trace.js'
import { readRssBytes, runNodeToExit, spawnNode, spawnUntilFile, stopProcess, type StartedProcess } from './processes.js'
import { runRounds, type RoundOptions } from './rounds.js'
import { formatMegabytes, formatMs, quantile, summarize } from './stats.js'
import type { StatusView } from '../../../node/agent/status.js'
import type { BenchRow } from './table.js'
import type { ChildProcess } from 'node:child_process'

const MAX_START_MS = 400
const MAX_IDLE_RSS_BYTES = 80e6
const MAX_STATUS_MS = 150

/** Time one agent has to start, and five peers to connect to it. */
const START_TIMEOUT_MS = 30_000

/** Time one short-lived command has to exit. */
const COMMAND_TIMEOUT_MS = 30_000

/** Pause after the peers connect, so that start-up allocations are collected before sampling memory. */
const SETTLE_MS = 5_000
const RSS_SAMPLES = 10
const RSS_SAMPLE_INTERVAL_MS = 1_000

export interface ProcessBenchOptions {
  start: RoundOptions
  status: RoundOptions
  peerCount: number
}

export interface ProcessBenchResult {
  rows: BenchRow[]
  notes: string[]
}

/** Returns the path of package.json's `kilomesh` bin, the esbuild bundle that `npm run build` writes. */
function binPath (): string {
  const manifest = JSON.parse(readFileSync(join(REPOSITORY_ROOT, 'package.json'), 'utf8')) as { bin: { kilomesh: string } }
  return join(REPOSITORY_ROOT, manifest.bin.kilomesh)
}

/** The bundle's entry of node/agent/agent.js, which shares its chunks with the bin. */
const BUNDLED_AGENT_PATH = join(REPOSITORY_ROOT, 'dist', 'node', 'bundle', 'agent.js')

function agentArgs (dir: string, bootstrap: string[] = []): string[] {
  return [binPath(), 'agent', '--dir', dir, '--listen', '/ip4/127.0.0.1/tcp/0', '--registry', 'off', ...bootstrap.flatMap(address => ['--bootstrap', address])]
}

function writtenByChild (content: string, child: ChildProcess): boolean {
  try {
    return (JSON.parse(content) as { pid?: number }).pid === child.pid
  } catch {
    return false
  }
}

async function startAgentProcess (dir: string, bootstrap: string[] = []): Promise<StartedProcess> {
  return spawnUntilFile(agentArgs(dir, bootstrap), dataDirPaths(dir).agentFile, writtenByChild, START_TIMEOUT_MS)
}

async function sleep (ms: number): Promise<void> {
  await new Promise(resolve => setTimeout(resolve, ms))
}

/** Builds a `node -e` script that loads the bundled agent's code (after the polyfill) and runs nothing. With `idle`, the process stays alive. */
function loadAgentModulesScript (idle: boolean): string {
  const polyfillModule = pathToFileURL(join(REPOSITORY_ROOT, 'dist', 'node', 'polyfill.js')).href
  const agentModule = pathToFileURL(BUNDLED_AGENT_PATH).href
  return `await import(${JSON.stringify(polyfillModule)}); await import(${JSON.stringify(agentModule)})${idle ? '; setInterval(() => {}, 60_000)' : ''}`
}

/** Times spawn to agent.json, against a bare Node process that writes a file the same way and is watched the same way. */
async function measureStart (dir: string, scratch: string, options: RoundOptions): Promise<{ agent: number[], floor: number[], modules: number[], nodeExit: number[] }> {
  const floorFile = join(scratch, 'floor.json')
  const floorScript = `import { renameSync, writeFileSync } from 'node:fs'
writeFileSync(${JSON.stringify(`${floorFile}.tmp`)}, JSON.stringify({ pid: process.pid }))
renameSync(${JSON.stringify(`${floorFile}.tmp`)}, ${JSON.stringify(floorFile)})
setInterval(() => {}, 60_000)`
  const loadScript = loadAgentModulesScript(false)

  let agent: StartedProcess | undefined
  let floor: StartedProcess | undefined
  const samples = await runRounds({
    agent: {
      run: async () => { agent = await startAgentProcess(dir) },
      cleanup: async () => {
        if (agent != null) {
          await stopProcess(agent)
        }
      }
    },
    floor: {
      run: async () => { floor = await spawnUntilFile(['--input-type=module', '-e', floorScript], floorFile, writtenByChild, START_TIMEOUT_MS) },
      cleanup: async () => {
        if (floor != null) {
          await stopProcess(floor)
        }
        await rm(floorFile, { force: true })
      }
    },
    modules: { run: async () => { await runNodeToExit(['--input-type=module', '-e', loadScript], COMMAND_TIMEOUT_MS) } },
    nodeExit: { run: async () => { await runNodeToExit(['-e', ''], COMMAND_TIMEOUT_MS) } }
  }, options)
  return { agent: samples.agent ?? [], floor: samples.floor ?? [], modules: samples.modules ?? [], nodeExit: samples.nodeExit ?? [] }
}

/** Waits until the agent of `dir` reports `count` connected peers. */
async function waitForPeers (dir: string, count: number): Promise<void> {
  const client = await ControlClient.connect(dir)
  const deadline = Date.now() + START_TIMEOUT_MS
  let connected = 0
  while (Date.now() < deadline) {
    connected = (await client.get<StatusView>('/status')).connectedPeers
    if (connected >= count) {
      return
    }
    await sleep(100)
  }
  throw new Error(`the agent in ${dir} had ${connected} of ${count} peers connected after ${START_TIMEOUT_MS} ms`)
}

/** Samples the resident memory of `pids` together, RSS_SAMPLES times. */
async function sampleRss (pids: number[]): Promise<number[][]> {
  const samples: number[][] = pids.map(() => [])
  for (let i = 0; i < RSS_SAMPLES; i++) {
    for (const [index, pid] of pids.entries()) {
      samples[index]?.push(await readRssBytes(pid))
    }
    await sleep(RSS_SAMPLE_INTERVAL_MS)
  }
  return samples
}

/** Runs the process benchmarks in fresh data directories under the system's temporary folder. */
export async function measureProcesses (options: ProcessBenchOptions): Promise<ProcessBenchResult> {
  const scratch = await mkdtemp(join(tmpdir(), 'km-bench-processes-'))
  const running: StartedProcess[] = []

  try {
    const dir = join(scratch, 'agent')
    await initDataDir(dir)
    const start = await measureStart(dir, scratch, options.start)

    // The agent whose memory and status are measured, and its peers.
    const measured = await startAgentProcess(dir)
    running.push(measured)
    const { multiaddrs } = JSON.parse(await readFile(dataDirPaths(dir).agentFile, 'utf8')) as { multiaddrs: string[] }
    const peerDirs = Array.from({ length: options.peerCount }, (_unused, i) => join(scratch, `peer-${i + 1}`))
    await Promise.all(peerDirs.map(async peerDir => { await initDataDir(peerDir) }))
    running.push(...await Promise.all(peerDirs.map(async peerDir => startAgentProcess(peerDir, multiaddrs.slice(0, 1)))))
    const idleNode = spawnNode(['-e', 'setInterval(() => {}, 60_000)'])
    running.push(idleNode)
    const idleModules = spawnNode(['--input-type=module', '-e', loadAgentModulesScript(true)])
    running.push(idleModules)

    await waitForPeers(dir, options.peerCount)
    await sleep(SETTLE_MS)
    const [agentRss = [], idleRss = [], modulesRss = []] = await sampleRss([measured.child.pid, idleNode.child.pid, idleModules.child.pid].map(pid => pid ?? -1))

    const status = await runRounds({
      status: { run: async () => { await runNodeToExit([binPath(), 'status', '--dir', dir], COMMAND_TIMEOUT_MS) } },
      nodeExit: { run: async () => { await runNodeToExit(['-e', ''], COMMAND_TIMEOUT_MS) } }
    }, options.status)
    // The bundle hides which package a module came from, so the unbundled
    // CLI is traced. The bundle keeps the same lazy imports as chunks.
    const statusModules = await listLoadedModules([CLI_PATH, 'status', '--dir', dir], COMMAND_TIMEOUT_MS)

    return report(options, start, { agentRss, idleRss, modulesRss }, { status: status.status ?? [], nodeExit: status.nodeExit ?? [] }, statusModules)
  } finally {
    await Promise.all(running.map(stopProcess))
    await rm(scratch, { recursive: true, force: true })
  }
}

function report (
  options: ProcessBenchOptions,
  start: { agent: number[], floor: number[], modules: number[], nodeExit: number[] },
  memory: { agentRss: number[], idleRss: number[], modulesRss: number[] },
  status: { status: number[], nodeExit: number[] },
  statusModules: string[]
): ProcessBenchResult {
  const agentStart = summarize(start.agent)
  const floorStart = summarize(start.floor)
  const modules = summarize(start.modules)
  const nodeExit = summarize(start.nodeExit)
  const agentRss = quantile(memory.agentRss, 0.5)
  const idleRss = quantile(memory.idleRss, 0.5)
  const modulesRss = quantile(memory.modulesRss, 0.5)
  const statusTime = summarize(status.status)
  const statusFloor = summarize(status.nodeExit)
  const libp2pPackages = [...countByPackage(statusModules, isLibp2pPackage)].sort(([a], [b]) => a.localeCompare(b))
  const libp2pModuleCount = libp2pPackages.reduce((sum, [, count]) => sum + count, 0)

  const rows: BenchRow[] = [
    { measure: 'Agent start, spawn to agent.json, median', kilomesh: formatMs(agentStart.median), baseline: formatMs(floorStart.median), ratio: agentStart.median / floorStart.median, target: `< ${MAX_START_MS} ms`, met: agentStart.median < MAX_START_MS },
    { measure: 'Agent start, p90', kilomesh: formatMs(agentStart.p90), baseline: formatMs(floorStart.p90), ratio: agentStart.p90 / floorStart.p90 },
    { measure: 'Loading the agent\'s modules, spawn to exit, median', kilomesh: formatMs(modules.median), baseline: formatMs(nodeExit.median), ratio: modules.median / nodeExit.median },
    { measure: `Idle agent RSS, ${options.peerCount} peers connected`, kilomesh: formatMegabytes(agentRss), baseline: formatMegabytes(idleRss), ratio: agentRss / idleRss, target: `< ${MAX_IDLE_RSS_BYTES / 1e6} MB`, met: agentRss < MAX_IDLE_RSS_BYTES },
    { measure: 'RSS of a process that only loaded the agent\'s modules', kilomesh: formatMegabytes(modulesRss), baseline: formatMegabytes(idleRss), ratio: modulesRss / idleRss },
    { measure: '`kilomesh status`, spawn to exit, median', kilomesh: formatMs(statusTime.median), baseline: formatMs(statusFloor.median), ratio: statusTime.median / statusFloor.median, target: `< ${MAX_STATUS_MS} ms`, met: statusTime.median < MAX_STATUS_MS },
    { measure: '`kilomesh status`, p90', kilomesh: formatMs(statusTime.p90), baseline: formatMs(statusFloor.p90), ratio: statusTime.p90 / statusFloor.p90 }
  ]

  const notes = [
    `Agent start: \`kilomesh agent --listen /ip4/127.0.0.1/tcp/0 --registry off\`, run through package.json's bin (the esbuild bundle in dist/node/bundle/), timed from \`spawn\` until agent.json names the child's pid. The data directory was made by \`initDataDir\` (what \`kilomesh init\` runs) and used by the warm-up start(s) first. The benchmark watches the folder with inotify, so it sees the rename as it happens. ${options.start.rounds} starts follow ${options.start.warmupRounds} warm-up start(s), and each is stopped with SIGTERM before the next. Baseline: a bare \`node\` process that writes and renames a small JSON file, then idles until stopped, watched the same way.`,
    'Loading the agent\'s modules: a `node` process that imports the polyfill and the bundle\'s entry of node/agent/agent.js, then exits, against `node -e ""`. It shows how much of the start goes to loading code before anything runs.',
    `Memory: VmRSS from /proc/PID/status of the agent while ${options.peerCount} other agent processes are connected to it. Sampling starts ${SETTLE_MS / 1000} s after the last one connected, and the figure is the median of ${RSS_SAMPLES} samples ${RSS_SAMPLE_INTERVAL_MS / 1000} s apart (lowest ${formatMegabytes(Math.min(...memory.agentRss))}, highest ${formatMegabytes(Math.max(...memory.agentRss))}). Baseline: an idle \`node -e "setInterval(...)"\` sampled at the same moments. The next row is a process that imported the bundle's entry of node/agent/agent.js and started nothing, sampled at the same moments, so it shows what loading the code alone takes. MB here is 10^6 bytes.`,
    `\`kilomesh status\` against that agent: ${options.status.rounds} runs after ${options.status.warmupRounds} warm-up run(s), against \`node -e ""\`. Unbundled (dist/node/cli/bin.js), it loads ${statusModules.length} ES modules, ${libp2pModuleCount} of them from libp2p packages${libp2pPackages.length > 0 ? `: ${libp2pPackages.map(([name, count]) => `${name} ${count}`).join(', ')}` : ''}.`
  ]
  return { rows, notes }
}
