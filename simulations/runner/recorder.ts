/**
 * Collects what metrics.json reports while the run goes on: samples on
 * every tick, traffic totals before each event, and each node's first
 * holding times. At the end it assembles the node records.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks'
import { imageLabel, type ImageInfo } from './images.js'
import type { Fleet } from './fleet.js'
import type { HoldingChange, HoldingTracker } from './holdings.js'
import type { FirstHolding, NodeRecord, Sample, Series, Totals } from '../metrics.js'
import type { SimNetwork } from '../network/network.js'
import type { ProtocolCounters } from '../network/traffic.js'

export class Recorder {
  readonly samples: Sample[] = []
  peakRssBytes = 0
  private readonly firsts = new Map<number, Map<string, FirstHolding>>()
  private readonly loopDelay: IntervalHistogram = monitorEventLoopDelay({ resolution: 10 })

  constructor (
    private readonly fleet: Fleet,
    private readonly network: SimNetwork,
    private readonly holdings: HoldingTracker,
    private readonly images: Map<string, ImageInfo>,
    readonly series: Series[]
  ) {
    this.loopDelay.enable()
  }

  /** Stops measuring the event-loop delay. */
  stop (): void {
    this.loopDelay.disable()
  }

  /** Current totals over the whole fleet. */
  totals (): Totals {
    let sentBytes = 0
    let wireSentBytes = 0
    let connections = 0
    for (const node of this.fleet.nodes) {
      sentBytes += node.traffic.totals().sentBytes
      wireSentBytes += this.network.wireCounters(node.index).sentBytes
      connections += node.agent?.node.getConnections().length ?? 0
    }
    return { running: this.fleet.running().length, sentBytes, wireSentBytes, connections }
  }

  /** Per-protocol counters summed over every node, sorted by protocol. */
  protocolTotals (): Record<string, ProtocolCounters> {
    const totals = new Map<string, ProtocolCounters>()
    for (const node of this.fleet.nodes) {
      for (const [protocol, counters] of node.traffic.byProtocol) {
        const sum = totals.get(protocol) ?? { sentBytes: 0, receivedBytes: 0, streams: 0, writes: 0 }
        sum.sentBytes += counters.sentBytes
        sum.receivedBytes += counters.receivedBytes
        sum.streams += counters.streams
        sum.writes += counters.writes
        totals.set(protocol, sum)
      }
    }
    return Object.fromEntries([...totals].sort((a, b) => a[0].localeCompare(b[0])))
  }

  /** Takes one sample for the plots; `atMs` is the time after the timeline's start. */
  sample (atMs: number): void {
    const running = this.fleet.running()
    const holdings: Sample['holdings'] = {}
    for (const series of this.series) {
      const digest = this.images.get(series.image)?.digest
      let learned = 0
      let pulled = 0
      for (const node of running) {
        const holding = this.holdings.holding(node.index, series.ref)
        if (digest != null && holding.digest === digest) {
          learned++
          if (holding.pulled) {
            pulled++
          }
        }
      }
      holdings[series.key] = { learned, pulled }
    }

    const rssBytes = process.memoryUsage().rss
    this.peakRssBytes = Math.max(this.peakRssBytes, rssBytes)
    // The histogram holds nanoseconds; it is reset so each sample covers the time since the last one.
    const loopDelayMs = Math.round(this.loopDelay.max / 1e6)
    this.loopDelay.reset()
    this.samples.push({ atMs: Math.round(atMs), running: running.length, holdings, totals: this.totals(), rssBytes, loopDelayMs })
  }

  /** Counts running nodes whose state for `ref` matches `digest`, for the timeline's "N of M" note. */
  countHolding (ref: string, digest: string, kind: HoldingChange['kind']): string {
    const running = this.fleet.running()
    const count = running.filter(node => {
      const holding = this.holdings.holding(node.index, ref)
      return holding.digest === digest && (kind === 'learned' || holding.pulled)
    }).length
    return `${count} of ${running.length} running`
  }

  /** Records a node's first time learning or pulling an image for a tag. */
  holding (change: HoldingChange, atMs: number): void {
    if (!change.first) {
      return
    }
    const byKey = this.firsts.get(change.node) ?? new Map<string, FirstHolding>()
    this.firsts.set(change.node, byKey)
    const key = `${change.ref} ${change.digest}`
    const first = byKey.get(key) ?? { ref: change.ref, image: imageLabel(this.images, change.digest), digest: change.digest }
    byKey.set(key, first)
    if (change.kind === 'learned') {
      first.learnedAtMs ??= Math.round(atMs)
    } else {
      first.pulledAtMs ??= Math.round(atMs)
    }
  }

  /** Builds the per-node records of metrics.json. */
  nodeRecords (): NodeRecord[] {
    return this.fleet.nodes.map(node => {
      const byProtocol: Record<string, ProtocolCounters> = {}
      for (const [protocol, counters] of [...node.traffic.byProtocol].sort((a, b) => a[0].localeCompare(b[0]))) {
        byProtocol[protocol] = { ...counters }
      }
      const totals = node.traffic.totals()
      const wire = this.network.wireCounters(node.index)
      return {
        index: node.index,
        name: node.name,
        peerId: node.peerId,
        status: node.status,
        starts: node.starts,
        crashes: node.crashes,
        startDurationsMs: node.startDurationsMs.map(ms => Math.round(ms * 10) / 10),
        keeps: [...node.keeps],
        sentBytes: totals.sentBytes,
        receivedBytes: totals.receivedBytes,
        wireSentBytes: wire.sentBytes,
        wireReceivedBytes: wire.receivedBytes,
        byProtocol,
        connections: { ...node.traffic.connections },
        agent: node.agentStats(),
        firstHoldings: [...(this.firsts.get(node.index)?.values() ?? [])]
      }
    })
  }
}
