/**
 * Renders report.html from the run's metrics. It shows the verdict, the
 * share of nodes holding each expected tag over time with the events
 * marked, traffic over time and bytes per node, then tables of
 * expectations, events and nodes, and the full timeline. The file is
 * self-contained, with inline SVG and no scripts.
 */
import { byteTicks, formatBytesShort, escapeXml, lineChart, PALETTE, stackedBars, type LineSeries } from './svg.js'
import type { SimulationMetrics } from '../metrics.js'

/** Shortest time between two samples that the traffic plot turns into a rate. */
const MIN_RATE_WINDOW_MS = 100

/** Protocols shown as their own segment in the bytes-per-node plot; the rest are summed as "other". */
const MAX_PROTOCOL_SEGMENTS = 8

function seconds (ms: number | undefined): string {
  return ms == null ? '' : `${(ms / 1000).toFixed(2)} s`
}

function table (headers: string[], rows: string[][]): string {
  const head = headers.map(header => `<th>${escapeXml(header)}</th>`).join('')
  const body = rows.map(row => `<tr>${row.map(cell => `<td>${escapeXml(cell)}</td>`).join('')}</tr>`).join('\n')
  return `<table><thead><tr>${head}</tr></thead><tbody>\n${body}\n</tbody></table>`
}

function holdingsPlot (metrics: SimulationMetrics): string {
  const series: LineSeries[] = []
  metrics.series.forEach((item, i) => {
    const color = PALETTE[i % PALETTE.length] ?? '#000'
    const share = (count: number, running: number): number => running === 0 ? 0 : count / running * 100
    series.push({ label: `${item.key}: holds all blobs`, color, points: metrics.samples.map(sample => ({ x: sample.atMs / 1000, y: share(sample.holdings[item.key]?.pulled ?? 0, sample.running) })) })
    series.push({ label: `${item.key}: tag resolves to it`, color, dashed: true, points: metrics.samples.map(sample => ({ x: sample.atMs / 1000, y: share(sample.holdings[item.key]?.learned ?? 0, sample.running) })) })
  })

  return lineChart({
    height: 360,
    xMax: Math.max(1, metrics.run.durationMs / 1000),
    yMax: 100,
    xLabel: 'time since the timeline started (s)',
    yLabel: 'share of running nodes (%)',
    formatX: value => `${value}`,
    formatY: value => `${value}%`,
    series,
    markers: metrics.events.map(event => ({ x: event.appliedAtMs / 1000, label: `#${event.index} ${event.text}` }))
  })
}

function trafficPlot (metrics: SimulationMetrics): string {
  const points: Array<{ x: number, y: number }> = []
  for (let i = 1; i < metrics.samples.length; i++) {
    const previous = metrics.samples[i - 1]
    const current = metrics.samples[i]
    // The last sample may follow the one before by a few milliseconds, which would read as a false drop to zero.
    if (previous == null || current == null || current.atMs - previous.atMs < MIN_RATE_WINDOW_MS) {
      continue
    }
    const bytesPerSecond = (current.totals.sentBytes - previous.totals.sentBytes) / ((current.atMs - previous.atMs) / 1000)
    points.push({ x: current.atMs / 1000, y: Math.max(0, bytesPerSecond) })
  }

  return lineChart({
    height: 260,
    xMax: Math.max(1, metrics.run.durationMs / 1000),
    yMax: Math.max(1, ...points.map(point => point.y)),
    xLabel: 'time since the timeline started (s)',
    yLabel: 'payload sent, all nodes',
    formatX: value => `${value}`,
    formatY: value => `${formatBytesShort(value)}/s`,
    yTicks: byteTicks,
    series: [{ label: 'payload bytes sent per second, all nodes and protocols', color: PALETTE[0] ?? '#000', points }],
    markers: metrics.events.map(event => ({ x: event.appliedAtMs / 1000, label: `#${event.index} ${event.text}` }))
  })
}

function loopDelayPlot (metrics: SimulationMetrics): string {
  const points = metrics.samples.map(sample => ({ x: sample.atMs / 1000, y: sample.loopDelayMs }))
  return lineChart({
    height: 200,
    xMax: Math.max(1, metrics.run.durationMs / 1000),
    yMax: Math.max(10, ...points.map(point => point.y)),
    xLabel: 'time since the timeline started (s)',
    yLabel: 'event-loop delay',
    formatX: value => `${value}`,
    formatY: value => `${value} ms`,
    series: [{ label: 'longest event-loop delay since the previous sample', color: PALETTE[1] ?? '#000', points }],
    markers: metrics.events.map(event => ({ x: event.appliedAtMs / 1000, label: `#${event.index} ${event.text}` }))
  })
}

function bytesPlot (metrics: SimulationMetrics, direction: 'sentBytes' | 'receivedBytes'): string {
  const totals = new Map<string, number>()
  for (const node of metrics.nodes) {
    for (const [protocol, counters] of Object.entries(node.byProtocol)) {
      totals.set(protocol, (totals.get(protocol) ?? 0) + counters[direction])
    }
  }
  const ranked = [...totals].sort((a, b) => b[1] - a[1]).map(([protocol]) => protocol)
  const shown = ranked.slice(0, MAX_PROTOCOL_SEGMENTS)
  const segments = ranked.length > shown.length ? [...shown, 'other'] : shown

  return stackedBars({
    height: 300,
    yLabel: direction === 'sentBytes' ? 'payload bytes sent' : 'payload bytes received',
    formatY: formatBytesShort,
    yTicks: byteTicks,
    segments,
    bars: metrics.nodes.map(node => {
      const values = shown.map(protocol => node.byProtocol[protocol]?.[direction] ?? 0)
      if (segments.length > shown.length) {
        values.push(Object.entries(node.byProtocol).filter(([protocol]) => !shown.includes(protocol)).reduce((sum, [, counters]) => sum + counters[direction], 0))
      }
      return { label: `${node.index}`, values }
    })
  })
}

export function renderReport (metrics: SimulationMetrics): string {
  const { scenario, run } = metrics
  const verdict = run.passed
    ? '<p class="pass">PASSED: every expectation was met and every event applied.</p>'
    : `<div class="fail"><p>FAILED:</p><ul>${run.failures.map(failure => `<li>${escapeXml(failure)}</li>`).join('')}</ul></div>`

  const expectations = table(['#', 'expectation', 'deadline', 'result', 'decided at', 'reason'], metrics.expectations.map(item => [
    `${item.index}`, item.text, seconds(item.byMs), item.status, seconds(item.decidedAtMs), item.reason ?? ''
  ]))
  const events = table(['#', 'source', 'scheduled', 'applied', 'took', 'what happened', 'payload sent before'], metrics.events.map(event => [
    `${event.index}`, event.source, seconds(event.scheduledAtMs), seconds(event.appliedAtMs), `${event.durationMs} ms`, event.error == null ? event.text : `FAILED: ${event.error}`, formatBytesShort(event.totalsBefore.sentBytes)
  ]))
  const nodes = table(['node', 'status', 'starts', 'crashes', 'sent', 'received', 'on the wire (sent)', 'connections opened', 'first pulled'], metrics.nodes.map(node => [
    `${node.index}`, node.status, `${node.starts}`, `${node.crashes}`, formatBytesShort(node.sentBytes), formatBytesShort(node.receivedBytes), formatBytesShort(node.wireSentBytes), `${node.connections.opened}`,
    node.firstHoldings.filter(first => first.pulledAtMs != null).map(first => `${first.ref} = ${first.image} at ${seconds(first.pulledAtMs)}`).join('; ')
  ]))
  const timeline = metrics.timeline.map(entry => `<li class="${entry.kind}"><code>${seconds(entry.atMs)}</code> ${escapeXml(entry.text)}</li>`).join('\n')

  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>kilomesh simulation: ${escapeXml(scenario.name)}</title>
<style>
body { font-family: sans-serif; margin: 2em; max-width: 1000px; color: #222; }
table { border-collapse: collapse; font-size: 13px; margin-bottom: 1.5em; }
th, td { border: 1px solid #ddd; padding: 3px 6px; text-align: left; vertical-align: top; }
.pass { color: #1a7f37; font-weight: bold; }
.fail { color: #b42318; font-weight: bold; }
.legend { font-size: 12px; margin: 4px 0 20px 84px; }
.legend-item { display: inline-block; margin-right: 14px; }
ul.timeline { list-style: none; padding: 0; font-size: 13px; }
ul.timeline li.error, ul.timeline li.expectation { font-weight: bold; }
</style>
</head>
<body>
<h1>${escapeXml(scenario.name)}</h1>
${scenario.description === '' ? '' : `<p>${escapeXml(scenario.description)}</p>`}
<p>${scenario.nodes} nodes (${scenario.maxNodes} after joins), ${escapeXml(scenario.transport)} links, topology ${escapeXml(scenario.topology.kind)}, seed ${scenario.seed}.
Started ${escapeXml(run.startedAt)}; setup took ${seconds(run.setupMs)}, the timeline ${seconds(run.durationMs)}; peak memory of the process ${formatBytesShort(run.peakRssBytes)}.</p>
${verdict}
<p><em>${escapeXml(run.timingNote)}</em></p>
<h2>Share of nodes holding each tag</h2>
<p>Solid: the node holds every blob of the image. Dashed: its catalog resolves the tag to the image. Dotted verticals: events, numbered as in the events table.</p>
${holdingsPlot(metrics)}
<h2>Traffic over time</h2>
${trafficPlot(metrics)}
<h2>Event-loop delay</h2>
<p>Every node shares one event loop. While it is delayed, events start late and transfers slow down, so read times in this report against this plot.</p>
${loopDelayPlot(metrics)}
<h2>Bytes sent per node</h2>
${bytesPlot(metrics, 'sentBytes')}
<h2>Bytes received per node</h2>
${bytesPlot(metrics, 'receivedBytes')}
<h2>Expectations</h2>
${expectations}
<h2>Events</h2>
${events}
<h2>Nodes</h2>
${nodes}
<h2>Timeline</h2>
<ul class="timeline">
${timeline}
</ul>
</body>
</html>
`
}
