/**
 * Agent benchmarks: pulling a micro-image from a connected agent, moving a
 * 1 MB layer, and the agent as a process (start time, idle memory, CLI
 * latency), each side by side with a baseline measured in the same run.
 */
import { startAgentPair, type AgentPair } from './utils/agent-pair.js'
import { measureProcesses } from './utils/process-bench.js'
import { measurePull } from './utils/pull-bench.js'
import { missedTargets, renderTable, type BenchRow } from './utils/table.js'
import { measureThroughput } from './utils/throughput-bench.js'

interface Part {
  title: string
  rows: BenchRow[]
  notes: string[]
  error?: Error
}

/** Runs one part; a failure becomes the part's content, so the other parts still report. */
async function runPart (title: string, measure: () => Promise<{ rows: BenchRow[], notes: string[] }>): Promise<Part> {
  try {
    return { title, ...await measure() }
  } catch (err: any) {
    return { title, rows: [], notes: [], error: err instanceof Error ? err : new Error(String(err)) }
  }
}

function renderPart (part: Part): string {
  const lines = [`### ${part.title}`, '']
  if (part.error != null) {
    lines.push('This part failed, so it has no figures:', '', '```', part.error.stack ?? part.error.message, '```')
    return lines.join('\n')
  }

  lines.push(renderTable(part.rows), '')
  lines.push(...part.notes.map(note => `- ${note}`))
  return lines.join('\n')
}

function renderSummary (parts: Part[]): string {
  const rows = parts.flatMap(part => part.rows)
  const targets = rows.filter(row => row.met != null)
  const missed = missedTargets(rows)
  const failed = parts.filter(part => part.error != null)

  let summary = `${targets.length - missed.length} of ${targets.length} targets met.`
  if (missed.length > 0) {
    summary += ` Missed: ${missed.map(row => `${row.measure}: ${row.kilomesh}, target ${row.target ?? 'unstated'}`).join('; ')}.`
  }
  if (failed.length > 0) {
    summary += ` Failed to run: ${failed.map(part => part.title).join(', ')}.`
  }
  return summary
}

/** Measures the agent and returns the Markdown section for docs/benchmarks.md. */
export async function bench (): Promise<string> {
  const parts: Part[] = []

  const pullTitle = 'Pulling micro-httpd:v1 from a connected agent'
  const layerTitle = 'Moving the 1 MB busybox layer'
  let pair: AgentPair | undefined
  try {
    pair = await startAgentPair()
  } catch (err: any) {
    // Without the pair neither transfer part can run.
    parts.push({ title: pullTitle, rows: [], notes: [], error: err }, { title: layerTitle, rows: [], notes: [], error: err })
  }

  if (pair != null) {
    const started = pair
    try {
      parts.push(await runPart(pullTitle, async () => measurePull(started, { rounds: 50, warmupRounds: 5 })))
      parts.push(await runPart(layerTitle, async () => measureThroughput(started, { rounds: 30, warmupRounds: 3 })))
    } finally {
      await started.close().catch((err: Error) => { console.error(`stopping the benchmark's agents failed: ${err.message}`) })
    }
  }

  parts.push(await runPart('The agent as a process', async () => measureProcesses({
    start: { rounds: 10, warmupRounds: 1 },
    status: { rounds: 20, warmupRounds: 2 },
    peerCount: 5
  })))

  return [
    '## Agent',
    '',
    'Transfers run between two agents in the benchmark\'s own process, connected over loopback TCP (noise, yamux); the HTTP floor\'s server and client share that process too. Each ratio is kilomesh\'s figure over the baseline\'s.',
    '',
    renderSummary(parts),
    '',
    parts.map(renderPart).join('\n\n')
  ].join('\n')
}
