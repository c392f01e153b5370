/**
 * Runs a scenario from start to report: imports its images, starts the
 * fleet in batches on the simulated network, drives the timeline, stops
 * every node, then writes metrics.json and report.html. `kilomesh sim run`,
 * the tests, the demo and the benchmark all come through `runScenarioFile`.
 */
import { randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { logger } from '@libp2p/logger'
import { METRICS_FILE, REPORT_FILE, TIMING_NOTE } from '../constants.js'
import { SimNetwork } from '../network/network.js'
import { SeededRandom } from '../random.js'
import { renderReport } from '../report/html.js'
import { loadScenario } from '../scenario/load.js'
import { buildEdges } from '../topology.js'
import { Driver } from './driver.js'
import { Fleet } from './fleet.js'
import { formatLink, formatSeconds } from './format.js'
import { HoldingTracker } from './holdings.js'
import { prepareImages } from './images.js'
import { Recorder } from './recorder.js'
import { Timeline } from './timeline.js'
import { catchUncaught } from './uncaught.js'
import type { Series, SimulationMetrics } from '../metrics.js'
import type { Scenario } from '../scenario/types.js'
import type { AbortOptions } from '@libp2p/interface'

const log = logger('kilomesh:sim')

export interface RunOptions extends AbortOptions {
  /** Folder for metrics.json and report.html; a new folder in the system's temporary directory when omitted. */
  reportDir?: string
  /** Receives each timeline line as it happens; nothing is printed when omitted. */
  print?: (line: string) => void
  /** Keep the nodes' data directories (their path is printed) instead of deleting them. */
  keepData?: boolean
  /** Replaces the scenario's transport, for comparing memory links with loopback TCP. */
  transport?: Scenario['transport']
  /**
   * Wrap connections in the fault layer (delay, bandwidth, cuts, wire byte
   * counts). Only overhead measurements turn it off; cuts then have no
   * effect and wire bytes read 0. @default true
   */
  faultLayer?: boolean
}

export interface SimulationResult {
  passed: boolean
  /** One sentence per failed expectation or event. */
  failures: string[]
  reportDir: string
  metricsPath: string
  reportPath: string
  /** Folder that held the nodes' data directories; deleted unless `keepData` was set. */
  workDir: string
  metrics: SimulationMetrics
}

/** Loads a scenario file and runs it. */
export async function runScenarioFile (path: string, options: RunOptions = {}): Promise<SimulationResult> {
  return runScenario(await loadScenario(path), options)
}

/** Tags whose holdings the run tracks: every tag it publishes, pulls, subscribes to by name, or expects. */
function watchedRefs (scenario: Scenario): string[] {
  const refs = new Set<string>()
  for (const event of scenario.events) {
    const action = event.action
    if (action.kind === 'publish' || action.kind === 'pull' || ((action.kind === 'subscribe' || action.kind === 'unsubscribe') && action.ref.includes(':'))) {
      refs.add(action.ref)
    }
    if (action.kind === 'join') {
      action.subscribe.filter(ref => ref.includes(':')).forEach(ref => refs.add(ref))
    }
  }
  for (const { check } of scenario.expectations) {
    refs.add(check.ref)
  }
  return [...refs]
}

/** Lines of the holdings plot: each expected tag and image, then each published one. */
function seriesOf (scenario: Scenario): Series[] {
  const series = new Map<string, Series>()
  const add = (ref: string, image: string): void => {
    const key = `${ref} = ${image}`
    series.set(key, { key, ref, image })
  }
  for (const { check } of scenario.expectations) {
    if (check.kind !== 'converged') {
      add(check.ref, check.image)
    }
  }
  for (const event of scenario.events) {
    if (event.action.kind === 'publish') {
      add(event.action.ref, event.action.image)
    }
  }
  return [...series.values()]
}

export async function runScenario (input: Scenario, options: RunOptions = {}): Promise<SimulationResult> {
  const scenario: Scenario = { ...input, transport: options.transport ?? input.transport }
  const print = options.print ?? (() => {})
  const startedAt = new Date()
  const workDir = await mkdtemp(join(tmpdir(), `kilomesh-sim-${scenario.name}-`))
  const reportDir = options.reportDir != null ? resolve(options.reportDir) : await mkdtemp(join(tmpdir(), `kilomesh-sim-report-${scenario.name}-`))
  await mkdir(reportDir, { recursive: true })
  let fleet: Fleet | undefined
  const uncaught: string[] = []
  let stopCatching = (): void => {}

  try {
    const images = await prepareImages(scenario.images, workDir, options)
    const network = new SimNetwork(scenario.link, scenario.links, scenario.seed)
    const timeline = new Timeline(performance.now(), print, images)
    stopCatching = catchUncaught(text => {
      uncaught.push(text)
      timeline.add('error', text)
    })
    const holdings = new HoldingTracker(watchedRefs(scenario))

    fleet = new Fleet({
      scenario,
      network,
      root: join(workDir, 'nodes'),
      runId: `sim-${randomBytes(4).toString('hex')}`,
      topologyRandom: SeededRandom.fork(scenario.seed, 'topology'),
      choiceRandom: SeededRandom.fork(scenario.seed, 'choices'),
      onStarted: node => { holdings.attach(node) },
      faultLayer: options.faultLayer !== false
    })
    const recorder = new Recorder(fleet, network, holdings, images, seriesOf(scenario))
    holdings.addListener(change => {
      timeline.holding(change)
      recorder.holding(change, timeline.since(change.atMs))
    })

    const linkCount = buildEdges(scenario.topology, scenario.nodes, SeededRandom.fork(scenario.seed, 'topology')).length
    timeline.add('setup', `scenario ${scenario.name}: ${scenario.nodes} nodes over ${scenario.transport} links, topology ${scenario.topology.kind} (${linkCount} links), ${formatLink(scenario.link)}, seed ${scenario.seed}`)
    const setupStartMs = performance.now()
    await fleet.startInitial(options)
    const missing = await fleet.waitForLinks(scenario.run.setupTimeoutMs, options)
    const setupMs = performance.now() - setupStartMs
    timeline.add('setup', `${scenario.nodes} nodes started and ${linkCount - missing.length} of ${linkCount} links connected in ${(setupMs / 1000).toFixed(2)}s${missing.length > 0 ? `; not connected: ${missing.slice(0, 10).join(', ')}${missing.length > 10 ? ', ...' : ''}` : ''}`)

    timeline.restart(performance.now())
    const driver = new Driver({ scenario, fleet, network, holdings, timeline, recorder, images })
    // An interrupted run still writes its report, so what happened up to
    // the interruption can be read.
    let interrupted: string | undefined
    try {
      await driver.run(options)
    } catch (err) {
      if (options.signal?.aborted !== true) {
        throw err
      }
      interrupted = `the run was interrupted at ${formatSeconds(timeline.now()).trim()} (${String(options.signal.reason?.message ?? options.signal.reason)})`
      timeline.add('error', interrupted)
    }
    recorder.stop()
    const durationMs = timeline.now()
    driver.summarise()

    await fleet.shutdown(scenario.run.stopTimeoutMs)
    const failures = [...driver.failures, ...uncaught, ...(interrupted == null ? [] : [interrupted])]
    const metrics: SimulationMetrics = {
      scenario: { name: scenario.name, description: scenario.description, file: scenario.file, seed: scenario.seed, nodes: scenario.nodes, maxNodes: scenario.maxNodes, transport: scenario.transport, topology: scenario.topology, link: scenario.link },
      run: { startedAt: startedAt.toISOString(), setupMs: Math.round(setupMs), durationMs: Math.round(durationMs), linksMissingAtStart: missing, passed: failures.length === 0, failures, peakRssBytes: recorder.peakRssBytes, timingNote: TIMING_NOTE },
      expectations: driver.expectations.map(state => ({ index: state.expectation.index, text: state.text, byMs: state.expectation.byMs, status: state.status, decidedAtMs: state.decidedAtMs, reason: state.reason })),
      events: driver.events,
      nodes: recorder.nodeRecords(),
      series: recorder.series,
      samples: recorder.samples,
      timeline: timeline.entries
    }

    const metricsPath = join(reportDir, METRICS_FILE)
    const reportPath = join(reportDir, REPORT_FILE)
    await writeFile(metricsPath, `${JSON.stringify(metrics, null, 2)}\n`)
    await writeFile(reportPath, renderReport(metrics))
    log('run of %s finished: %s', scenario.name, metrics.run.passed ? 'passed' : 'failed')

    return { passed: metrics.run.passed, failures, reportDir, metricsPath, reportPath, workDir, metrics }
  } finally {
    // Reached with running nodes only when setup failed or the run was aborted.
    await fleet?.shutdown(scenario.run.stopTimeoutMs)
    stopCatching()
    if (options.keepData !== true) {
      await rm(workDir, { recursive: true, force: true })
    }
  }
}
