import { UsageError, type Command } from '../command.js'

const SUBCOMMANDS = ['run', 'validate']

export const simCommand: Command = {
  name: 'sim',
  summary: 'run a network simulation scenario of many agents in one process',
  help: `Usage: kilomesh sim run SCENARIO.yaml [--report DIR] [--json] [--keep-data] [--transport memory|tcp]
       kilomesh sim validate SCENARIO.yaml [--json]

"run" starts the scenario's nodes (the real agent code) in this process over
simulated links, applies its timeline of events (publish, partition, heal,
crash, restart, ...), prints the timeline as it goes, and writes
metrics.json and report.html (SVG plots) into the report folder. It exits
with 0 when every expectation is met, 1 when an expectation or an event
fails (the message names it), and 2 when the scenario file is invalid.

"validate" only checks the scenario file and prints its timeline.
Scenarios: simulations/scenarios/*.yaml; fields: docs/simulation.md.

Options:
  --report DIR        folder for metrics.json and report.html (default: a new
                      folder in the system's temporary directory)
  --keep-data         keep the nodes' data directories and print where they are
  --transport KIND    memory (simulated links, the default) or tcp (real
                      loopback TCP, for measuring the simulator's overhead)
  --json              print a JSON summary instead of the timeline
  -h, --help          show this help`,
  options: {
    report: { type: 'string' },
    'keep-data': { type: 'boolean' },
    transport: { type: 'string' }
  },
  positionals: [2, 2],
  async run (values, [subcommand, file]) {
    // Loaded on use: the simulator loads libp2p, which other commands must not.
    const { InvalidScenarioError, loadScenario, runScenario } = await import('../../../simulations/index.js')
    const { describeAction, describeCheck, formatSeconds } = await import('../../../simulations/runner/format.js')
    if (subcommand == null || !SUBCOMMANDS.includes(subcommand)) {
      throw new UsageError(`unknown subcommand ${JSON.stringify(subcommand)}; use "kilomesh sim run SCENARIO.yaml" or "kilomesh sim validate SCENARIO.yaml"`)
    }
    const transport = values.transport
    if (transport != null && transport !== 'memory' && transport !== 'tcp') {
      throw new UsageError(`invalid --transport ${JSON.stringify(transport)}: use memory or tcp`)
    }

    let scenario
    try {
      scenario = await loadScenario(file ?? '')
    } catch (err: any) {
      if (err instanceof InvalidScenarioError) {
        // The same JSON error line that every command prints with --json.
        console.error(values.json === true ? JSON.stringify({ error: { command: 'sim', name: err.name, message: err.message } }) : `kilomesh sim: ${err.message}`)
        return 2
      }
      throw err
    }

    if (subcommand === 'validate') {
      if (values.json === true) {
        console.log(JSON.stringify(scenario, null, 2))
      } else {
        console.log(`${scenario.file}: valid; ${scenario.nodes} nodes (${scenario.maxNodes} after joins), ${scenario.events.length} events, ${scenario.expectations.length} expectations`)
        scenario.events.forEach(event => { console.log(`${formatSeconds(event.atMs)}  ${describeAction(event.action)}`) })
        scenario.expectations.forEach(expectation => { console.log(`  by ${formatSeconds(expectation.byMs).trim()}: ${describeCheck(expectation.check)}`) })
      }
      return 0
    }

    // Ctrl-C stops the run and its nodes instead of leaving data directories behind.
    const controller = new AbortController()
    const onSignal = (signal: NodeJS.Signals): void => { controller.abort(new Error(`received ${signal}`)) }
    process.once('SIGINT', onSignal)
    process.once('SIGTERM', onSignal)
    try {
      const result = await runScenario(scenario, {
        reportDir: values.report,
        keepData: values['keep-data'] === true,
        transport,
        print: values.json === true ? undefined : line => { console.log(line) },
        signal: controller.signal
      })

      if (values.json === true) {
        const { run, expectations } = result.metrics
        console.log(JSON.stringify({ passed: result.passed, failures: result.failures, reportDir: result.reportDir, metricsPath: result.metricsPath, reportPath: result.reportPath, setupMs: run.setupMs, durationMs: run.durationMs, peakRssBytes: run.peakRssBytes, expectations }, null, 2))
      } else {
        console.log(result.passed ? '\nPASSED: every expectation was met' : `\nFAILED:\n${result.failures.map(failure => `  ${failure}`).join('\n')}`)
        console.log(`report: ${result.reportPath}\nmetrics: ${result.metricsPath}`)
        if (values['keep-data'] === true) {
          console.log(`node data directories: ${result.workDir}/nodes`)
        }
      }
      return result.passed ? 0 : 1
    } finally {
      process.removeListener('SIGINT', onSignal)
      process.removeListener('SIGTERM', onSignal)
    }
  }
}
