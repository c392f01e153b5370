/** Writes small scenarios to temporary files and runs them through the simulator's entry point. */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runScenarioFile, type SimulationResult } from '../../../simulations/index.js'
import { fixture } from '../../utils/paths.js'
import type { SimulationMetrics } from '../../../simulations/metrics.js'

/** The images section every test scenario uses, with absolute paths. */
export const IMAGES = `images:
  httpd-v1: ${fixture('micro-httpd')}:v1
  httpd-v2: ${fixture('micro-httpd')}:v2
`

export interface TestRun {
  result: SimulationResult
  /** metrics.json as written to disk. */
  metrics: SimulationMetrics
  /** Timeline lines the run printed. */
  lines: string[]
  folder: string
}

/** Writes `yaml` to a temporary scenario file and runs it; call `cleanUp` with the returned folder. */
export async function runYaml (yaml: string, options: { signal?: AbortSignal, onLine?: (line: string) => void } = {}): Promise<TestRun> {
  const folder = await mkdtemp(join(tmpdir(), 'km-sim-test-'))
  const file = join(folder, 'scenario.yaml')
  await writeFile(file, yaml)
  const lines: string[] = []
  const result = await runScenarioFile(file, { reportDir: join(folder, 'report'), print: line => { lines.push(line); options.onLine?.(line) }, signal: options.signal })
  const metrics = JSON.parse(await readFile(result.metricsPath, 'utf8')) as SimulationMetrics
  return { result, metrics, lines, folder }
}

export async function cleanUp (run: TestRun | undefined): Promise<void> {
  if (run != null) {
    await rm(run.folder, { recursive: true, force: true })
  }
}

/** Writes `yaml` to a scenario file in a new temporary folder and returns its path. */
export async function writeScenario (yaml: string): Promise<{ folder: string, file: string }> {
  const folder = await mkdtemp(join(tmpdir(), 'km-sim-cli-'))
  const file = join(folder, 'scenario.yaml')
  await writeFile(file, yaml)
  return { folder, file }
}
