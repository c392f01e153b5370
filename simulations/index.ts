/**
 * @packageDocumentation
 *
 * The kilomesh network simulator: runs many complete agents in one process
 * over simulated links, drives a scripted timeline of faults, checks
 * expectations and writes metrics.json and report.html.
 *
 * @example
 *
 * ```TypeScript
 * import '../node/polyfill.js'
 * import { runScenarioFile } from './index.js'
 *
 * const result = await runScenarioFile('simulations/scenarios/split-and-heal.yaml', { print: console.log })
 * console.log(result.passed, result.reportPath)
 * ```
 */
export { runScenario, runScenarioFile, type RunOptions, type SimulationResult } from './runner/run.js'
export { loadScenario, parseScenario } from './scenario/load.js'
export { InvalidScenarioError, SimulationSetupError, EventFailedError, LinkDownError } from './errors.js'
export type { Scenario } from './scenario/types.js'
export type { SimulationMetrics } from './metrics.js'
