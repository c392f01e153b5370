/**
 * Simulator benchmark. Scale: the rollout scenario (simulations/scenarios/
 * rollout-100.yaml) at growing node counts, each run in its own `kilomesh
 * sim run` process, to find the largest count that completes within two
 * minutes (setup included) and its peak memory. Overhead: one small
 * rollout with ideal links, over simulated memory links with the fault layer
 * against real loopback TCP without it, in this process.
 */
import { spawn } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parse, stringify } from 'yaml'
import { runScenario } from '../../simulations/runner/run.js'
import { parseScenario } from '../../simulations/scenario/load.js'
import { CLI_PATH, REPOSITORY_ROOT } from '../utils/paths.js'
import { formatMs, formatRatio, summarize } from './utils/stats.js'
import type { Scenario } from '../../simulations/scenario/types.js'

const SCENARIO = join(REPOSITORY_ROOT, 'simulations', 'scenarios', 'rollout-100.yaml')

/** Node counts tried in order; the sweep stops at the first that misses the limit, or when the budget below is spent. */
const SCALE_NODE_COUNTS = [50, 100, 150, 200, 250, 300, 400, 500]

/** The sweep starts no new size after this long, so the whole module stays well within the bench runner's 15-minute limit. */
const SCALE_BUDGET_MS = 8 * 60_000

/** Node counts tried with the agent's defaults (DHT on), which cost far more per node. */
const DEFAULT_AGENT_NODE_COUNTS = [20, 40]

/** A run counts when setup plus the rollout take at most this long. */
const SCALE_LIMIT_MS = 120_000

/** A child run is killed after this long, well past the limit, so a stuck run cannot stall the benchmark. */
const CHILD_TIMEOUT_MS = 240_000

const OVERHEAD_NODES = 20
const OVERHEAD_ROUNDS = 3

interface ScaleRun {
  nodes: number
  dht: boolean
  passed: boolean
  setupMs: number
  /** Time from the timeline's start until the expectation was met. */
  rolloutMs?: number
  peakRssBytes: number
  error?: string
}

/** Writes the rollout scenario with another node count (and the agent's defaults when `dht`) and returns its path. */
async function scenarioFile (folder: string, nodes: number, dht: boolean): Promise<string> {
  const document = parse(await readFile(SCENARIO, 'utf8'))
  document.name = `rollout-${nodes}${dht ? '-dht' : ''}`
  document.nodes = nodes
  document.images = { 'httpd-v1': join(REPOSITORY_ROOT, 'test', 'fixtures', 'micro-httpd:v1') }
  // The deadline leaves the two-minute limit to setup plus rollout, judged below.
  document.expect = [{ by: `${SCALE_LIMIT_MS / 1000}s`, all: { ref: 'demo/httpd:stable', image: 'httpd-v1', pulled: true } }]
  if (dht) {
    delete document.agent
  }
  const file = join(folder, `${document.name as string}.yaml`)
  await writeFile(file, stringify(document))
  return file
}

/** Runs one scenario in a `kilomesh sim run --json` child process and reads its summary. */
async function runChild (file: string, nodes: number, dht: boolean, reportDir: string): Promise<ScaleRun> {
  const child = spawn(process.execPath, [CLI_PATH, 'sim', 'run', file, '--json', '--report', reportDir], { stdio: ['ignore', 'pipe', 'pipe'], timeout: CHILD_TIMEOUT_MS })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const code = await new Promise<number | null>(resolve => child.once('close', resolve))

  try {
    const summary = JSON.parse(stdout)
    const met = summary.expectations[0]?.status === 'met' ? summary.expectations[0].decidedAtMs as number : undefined
    return { nodes, dht, passed: summary.passed === true, setupMs: summary.setupMs, rolloutMs: met, peakRssBytes: summary.peakRssBytes, error: summary.failures[0] }
  } catch {
    return { nodes, dht, passed: false, setupMs: 0, peakRssBytes: 0, error: `exit ${code}: ${stderr.split('\n').filter(line => line.trim() !== '').slice(-1)[0] ?? 'no output'}` }
  }
}

function seconds (ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`
}

function withinLimit (run: ScaleRun): boolean {
  return run.passed && run.rolloutMs != null && run.setupMs + run.rolloutMs <= SCALE_LIMIT_MS
}

function scaleRow (run: ScaleRun): string {
  const total = run.rolloutMs == null ? '—' : seconds(run.setupMs + run.rolloutMs)
  const note = run.error == null ? '' : run.error.slice(0, 120).replace(/\|/g, '\\|')
  return `| ${run.nodes} | ${run.dht ? 'on' : 'off'} | ${seconds(run.setupMs)} | ${run.rolloutMs == null ? 'not completed' : seconds(run.rolloutMs)} | ${total} | ${(run.peakRssBytes / 1024 / 1024).toFixed(0)} MiB | ${withinLimit(run) ? 'yes' : 'no'} | ${note} |`
}

interface OverheadRounds {
  setupMs: number[]
  /** From the publish until every node's catalog has the tag. */
  allLearnedMs: number[]
  /** From the publish until the median node holds the image. */
  medianPulledMs: number[]
  /** From the publish until the last node holds the image. */
  allPulledMs: number[]
  failures: string[]
}

function median (values: number[]): number {
  return summarize(values).median
}

/** Runs the overhead scenario OVERHEAD_ROUNDS times over one transport; failed rounds are counted, not measured. */
async function measureOverhead (scenario: Scenario, transport: 'memory' | 'tcp'): Promise<OverheadRounds> {
  const rounds: OverheadRounds = { setupMs: [], allLearnedMs: [], medianPulledMs: [], allPulledMs: [], failures: [] }
  for (let round = 0; round < OVERHEAD_ROUNDS; round++) {
    const result = await runScenario(scenario, { transport, faultLayer: transport === 'memory' })
    await rm(result.reportDir, { recursive: true, force: true })
    const publish = result.metrics.events.find(event => event.text.startsWith('publish'))
    const holdings = result.metrics.nodes.map(node => node.firstHoldings[0])
    const learned = holdings.map(holding => holding?.learnedAtMs)
    const pulled = holdings.map(holding => holding?.pulledAtMs)
    if (!result.passed || publish == null || learned.includes(undefined) || pulled.includes(undefined)) {
      rounds.failures.push(result.failures[0] ?? 'no publish event')
      continue
    }

    const since = (ms: number | undefined): number => (ms ?? 0) - publish.appliedAtMs
    rounds.setupMs.push(result.metrics.run.setupMs)
    rounds.allLearnedMs.push(Math.max(...learned.map(since)))
    rounds.medianPulledMs.push(median(pulled.map(since)))
    rounds.allPulledMs.push(Math.max(...pulled.map(since)))
  }
  return rounds
}

function overheadRow (measure: string, memory: number[], tcp: number[]): string {
  if (memory.length === 0 || tcp.length === 0) {
    return `| ${measure} | ${memory.length === 0 ? 'no round passed' : formatMs(median(memory))} | ${tcp.length === 0 ? 'no round passed' : formatMs(median(tcp))} | — |`
  }
  return `| ${measure} | ${formatMs(median(memory))} | ${formatMs(median(tcp))} | ${formatRatio(median(memory) / median(tcp))} |`
}

export async function bench (): Promise<string> {
  const folder = await mkdtemp(join(tmpdir(), 'km-bench-sim-'))
  try {
    const runs: ScaleRun[] = []
    const sweepStartMs = performance.now()
    for (const nodes of SCALE_NODE_COUNTS) {
      if (performance.now() - sweepStartMs > SCALE_BUDGET_MS) {
        break
      }
      const run = await runChild(await scenarioFile(folder, nodes, false), nodes, false, join(folder, `report-${nodes}`))
      runs.push(run)
      if (!withinLimit(run)) {
        break
      }
    }
    for (const nodes of DEFAULT_AGENT_NODE_COUNTS) {
      const run = await runChild(await scenarioFile(folder, nodes, true), nodes, true, join(folder, `report-${nodes}-dht`))
      runs.push(run)
      if (!withinLimit(run)) {
        break
      }
    }

    const largest = runs.filter(run => !run.dht && withinLimit(run)).at(-1)
    const sweepPassed = runs.filter(run => !run.dht).every(withinLimit)
    const overheadYaml = `name: overhead\nseed: 5\nnodes: ${OVERHEAD_NODES}\ntopology: { kind: random, degree: 3 }\nagent: { dht: false }\nimages: { httpd-v1: ${join(REPOSITORY_ROOT, 'test', 'fixtures', 'micro-httpd')}:v1 }\nevents:\n  - { at: 0s, subscribe: { nodes: all, ref: demo/httpd:stable } }\n  - { at: 1s, publish: { node: 0, image: httpd-v1, ref: demo/httpd:stable } }\nexpect:\n  - { by: 60s, all: { ref: demo/httpd:stable, image: httpd-v1 } }\n`
    const overheadScenario = await parseScenario(overheadYaml, { file: 'overhead.yaml', baseDirs: [REPOSITORY_ROOT] })
    const memory = await measureOverhead(overheadScenario, 'memory')
    const tcp = await measureOverhead(overheadScenario, 'tcp')
    const failedRounds = [...memory.failures.map(failure => `simulated links: ${failure}`), ...tcp.failures.map(failure => `loopback TCP: ${failure}`)]

    return `## Simulator

Scale: the rollout scenario (\`simulations/scenarios/rollout-100.yaml\`: one
publish of micro-httpd v1 to every node of a random mesh of degree 4, links
of 10 ms ± 2 ms at 50 Mbit/s) at growing node counts, each in its own
\`kilomesh sim run\` process, stopping at the first count that misses the
limit. A run counts when setup (starting the nodes in batches of 10 and
connecting the mesh) plus the rollout take at most ${SCALE_LIMIT_MS / 1000} s.
Memory is the process's peak resident set size, sampled every 250 ms.

| nodes | DHT | setup | rollout complete | total | peak memory | within 2 min | failure |
|---|---|---|---|---|---|---|---|
${runs.map(scaleRow).join('\n')}

Largest node count within 2 minutes (DHT off): **${largest?.nodes ?? 'none'}**${largest == null ? '' : `, peak memory ${(largest.peakRssBytes / 1024 / 1024).toFixed(0)} MiB`}. Target: 250.${sweepPassed ? ' Every size tried passed before the sweep ran out of sizes or time, so the limit is higher.' : ''}
The rows with the DHT on run the agent's defaults; with the DHT, nodes
connect to most other nodes, which costs far more per node.

Overhead: ${OVERHEAD_NODES} nodes, a random mesh of degree 3, ideal links, DHT off, one
publish to all; median of ${OVERHEAD_ROUNDS} runs each. The last node's time
depends on the agent's retry timing more than on the links. Simulated links are
\`@libp2p/memory\` with the fault layer and byte counting; the baseline is
the same run over loopback TCP without the fault layer.

| measure | simulated links | loopback TCP | ratio |
|---|---|---|---|
${overheadRow('setup (start and connect)', memory.setupMs, tcp.setupMs)}
${overheadRow('publish until every node has the tag', memory.allLearnedMs, tcp.allLearnedMs)}
${overheadRow('publish until the median node holds the image', memory.medianPulledMs, tcp.medianPulledMs)}
${overheadRow('publish until every node holds the image', memory.allPulledMs, tcp.allPulledMs)}
${failedRounds.length === 0 ? '' : `\nRounds that failed and are not in the medians: ${failedRounds.map(failure => failure.slice(0, 160)).join('; ')}\n`}
Every node runs in one process on a shared 2-core machine, so figures vary
between runs.
`
  } finally {
    await rm(folder, { recursive: true, force: true })
  }
}
